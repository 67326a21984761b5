"""Conditional follow-ups: the traps, the checker, and both brains tracking only allowed parcels."""

from __future__ import annotations

from typing import Any, Literal

from openptc.agent import Agent
from openptc.models.scripted import ScriptedModel
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.base import ToolCall
from openptc.scenarios.branching import (
    SCENARIO,
    TODAY,
    TrackingLog,
    calls_rule,
    make_tools,
    may_track,
    refunds,
    tables,
    trackable,
)
from openptc.tools import Toolbox

T = tables()
ORDERS = {t.ticket_id: T.orders[t.order_id] for t in T.tickets}
DUE = refunds()


def _age(ticket_id: str, shipped: bool) -> int:
    o = ORDERS[ticket_id]
    day = o.shipped_on if shipped else o.placed_on
    assert day is not None
    return (TODAY - day).days


def _tickets(status: str, *, tracking: str | None = None) -> list[str]:
    """Tickets whose order has `status` (and whose parcel's tracking says `tracking`)."""
    found = []
    for ticket_id, o in ORDERS.items():
        parcel = T.tracking.get(o.tracking_number or "")
        if o.status == status and (tracking is None or (parcel and parcel.status == tracking)):
            found.append(ticket_id)
    return found


def test_the_tickets_hold_every_trap() -> None:
    assert len(T.tickets) == len(T.orders) == 40
    shipped = _tickets("shipped")
    assert any(_age(t, True) == 10 for t in shipped)  # not to be tracked yet
    assert any(_age(t, True) == 11 and t in DUE for t in shipped)  # tracked, and lost
    recent = [t for t in _tickets("shipped", tracking="delayed") if not may_track(ORDERS[t])]
    assert len(recent) >= 5  # their tracking would say "delayed": never to be looked up
    assert any(_age(t, False) == 14 for t in _tickets("processing"))  # not late yet
    assert all(_age(t, False) > 14 for t in _tickets("cancelled"))  # late, but refunded
    assert _tickets("delivered")
    assert _tickets("shipped", tracking="delivered")  # the order lags behind the carrier
    assert 8 <= len(DUE) <= 12 and 10 <= len(trackable()) <= 16


def test_the_right_answer_passes_in_two_phrasings() -> None:
    listed = "\n".join(f"- {t}: {why}" for t, why in sorted(DUE.items()))
    assert SCENARIO.check(f"{len(DUE)} tickets need a refund:\n{listed}").correct
    *head, last = sorted(DUE)
    prose = f"Refunds are due on tickets {', '.join(head)} and {last}; no other ticket needs one."
    assert SCENARIO.check(prose).correct


def test_ticket_ids_are_read_in_their_usual_forms() -> None:
    numbers = [t[2:] for t in sorted(DUE)]
    *head, last = numbers
    for text in (
        "Refunds: " + ", ".join(f"#{n}" for n in numbers) + ".",
        f"Refunds are due on tickets {', '.join(head)} and {last}.",
        "\n".join(f"- Ticket {n}: the parcel was lost or never shipped" for n in numbers),
    ):
        assert SCENARIO.check(text).correct, (text, SCENARIO.check(text).reason)


def test_tickets_named_only_as_needing_no_refund_are_not_claimed() -> None:
    listed = ", ".join(sorted(DUE))
    other = next(t for t in ORDERS if t not in DUE)
    for text in (
        f"Refund: {listed}. {other} does not need a refund.",
        f"These need a refund: {listed}; {other} doesn't.",
        f"Refund: {listed}.\n\nNo refund needed:\n- {other} (delivered)",
    ):
        assert SCENARIO.check(text).correct, (text, SCENARIO.check(text).reason)
    verdict = SCENARIO.check(f"None of {listed} need a refund.")
    assert not verdict.correct and "named only as needing no refund" in verdict.reason


def test_the_calls_rule_allows_only_the_lookups_the_rule_allows() -> None:
    allowed = [o for o in T.orders.values() if may_track(o)]
    parcels = [o for o in T.orders.values() if o.tracking_number]

    def lookups(orders: list[Any]) -> list[ToolCall]:
        return [
            ("get_tracking", {"carrier": o.carrier, "tracking_number": o.tracking_number})
            for o in orders
        ]

    assert calls_rule([("list_open_tickets", {}), *lookups(allowed)]).correct
    verdict = calls_rule(lookups(parcels))
    assert not verdict.correct
    assert verdict.reason.startswith("get_tracking called for orders the rule does not allow: ")
    early = next(o for o in parcels if o.status == "shipped" and not may_track(o))
    assert early.order_id in verdict.reason and "shipped" in verdict.reason
    assert SCENARIO.calls_rule is calls_rule


def _named(ids: set[str]) -> str:
    return "Refund: " + ", ".join(sorted(ids)) if ids else "No ticket needs a refund."


def test_near_misses_fail() -> None:
    due = set(DUE)
    day_14 = next(t for t in _tickets("processing") if _age(t, False) == 14)
    by_tracking = {t for t, why in DUE.items() if why.startswith("tracking")}
    wrong = [
        due - {sorted(due)[0]},  # one missing
        due | {_tickets("cancelled")[0]},  # a cancelled order, already refunded
        due | {day_14},  # 14 days is not more than 14
        due | {_tickets("shipped", tracking="delivered")[0]},  # the carrier delivered it
        due | {_tickets("delivered")[0]},
        by_tracking,  # forgot the never-shipped orders
        due - by_tracking,  # forgot to track
        set(),
    ]
    for ids in wrong:
        verdict = SCENARIO.check(_named(ids))
        assert not verdict.correct and verdict.reason, ids


async def test_the_log_records_a_lookup_the_rule_forbids() -> None:
    log = TrackingLog()
    tools = {fn.__name__: fn for fn in make_tools(log=log)}
    recent = ORDERS[next(t for t in _tickets("shipped") if not may_track(ORDERS[t]))]
    parcel = await tools["get_tracking"](recent.carrier, recent.tracking_number)
    assert parcel.status == "delayed"
    assert log.orders == [recent.order_id] and recent.order_id not in trackable()


async def _run(mode: Literal["ptc", "direct"], log: TrackingLog) -> Any:
    model = ScriptedModel(SCENARIO.brain, name=f"scripted:{SCENARIO.name}")
    toolbox = Toolbox(make_tools(log=log))
    async with LocalSandbox(pool_size=0) as sandbox:
        agent = Agent(model, toolbox, sandbox, mode=mode, max_turns=SCENARIO.direct_max_turns)
        return await agent.run(SCENARIO.question)


async def test_the_program_tracks_only_the_parcels_the_rule_allows() -> None:
    log = TrackingLog()
    result = await _run("ptc", log)
    assert SCENARIO.check(result.answer).correct, result.answer
    assert result.usage.model_calls == 2 and len(result.programs) == 1
    tools = [c.tool for e in result.executions for c in e.tool_calls]
    assert tools.count("get_order") == len(T.tickets)
    assert tools.count("get_tracking") == len(trackable())
    assert sorted(log.orders) == sorted(trackable())
    calls = [(c.tool, c.arguments) for e in result.executions for c in e.tool_calls]
    assert calls_rule(calls).correct


async def test_direct_mode_tracks_only_the_parcels_the_rule_allows() -> None:
    log = TrackingLog()
    result = await _run("direct", log)
    assert SCENARIO.check(result.answer).correct, result.answer
    assert result.usage.model_calls == 4  # tickets, orders, tracking, answer
    assert result.usage.tool_calls == 1 + len(T.tickets) + len(trackable())
    assert sorted(log.orders) == sorted(trackable())
    calls = [(u.name, u.input) for m in result.transcript for u in m.tool_uses]
    assert len(calls) == result.usage.tool_calls and calls_rule(calls).correct
