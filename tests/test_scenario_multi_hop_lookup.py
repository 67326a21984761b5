"""The multi-hop lookup: its traps, its checker, and both brains end to end through the agent."""

from __future__ import annotations

from typing import Any, Literal

from openptc.agent import Agent
from openptc.models.scripted import ScriptedModel
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.multihop import (
    PUMP,
    SCENARIO,
    Part,
    arrival_days,
    in_stock,
    ranked,
    search,
    tables,
)
from openptc.tools import Toolbox

T = tables()
BEST, SECOND = ranked()[0], ranked()[1]
WINNER = T.suppliers[BEST.supplier_id]


def _answer(part: Part, supplier_name: str | None = None) -> str:
    name = supplier_name or T.suppliers[part.supplier_id].name
    return f"Order {part.part_id} ({part.title}) from {name}; it arrives in a few days."


def _fastest(parts: list[Part]) -> Part:
    return min(parts, key=lambda p: arrival_days(T, p))


def test_the_catalogue_holds_every_trap() -> None:
    kits = [T.parts[h.part_id] for h in search(T, "seal kit")]
    assert 15 <= len(kits) <= 25
    best_days = arrival_days(T, BEST)
    out_of_stock = [k for k in kits if PUMP in k.compatible_models and not in_stock(k)]
    assert arrival_days(T, _fastest(out_of_stock)) < best_days
    assert any(s.on_order for s in _fastest(out_of_stock).stock)
    near_miss = [
        k for k in kits if PUMP not in k.compatible_models and "P-200X" in k.compatible_models
    ]
    assert arrival_days(T, _fastest([k for k in near_miss if in_stock(k)])) < best_days
    quickest = min(ranked(), key=lambda p: T.suppliers[p.supplier_id].lead_time_days)
    assert T.suppliers[quickest.supplier_id].lead_time_days < WINNER.lead_time_days
    assert arrival_days(T, quickest) > best_days  # shortest lead time, but from overseas
    assert arrival_days(T, SECOND) == best_days and SECOND.unit_price_usd > BEST.unit_price_usd
    assert any(arrival_days(T, p) == best_days + 1 for p in ranked())


def test_the_right_answer_passes_in_two_phrasings() -> None:
    assert SCENARIO.check(_answer(BEST)).correct
    other = SECOND
    words = (
        f"The soonest is the {BEST.title.upper()}, sold by {WINNER.supplier_id}: "
        f"{arrival_days(T, BEST)} days. {other.title} ({other.part_id}) also takes "
        f"{arrival_days(T, other)} days but costs more."
    )
    assert SCENARIO.check(words).correct, SCENARIO.check(words).reason


def test_kits_named_but_not_picked_do_not_count() -> None:
    """A faster kit ruled out, or the runner-up's supplier, named before the pick."""
    not_for_p200 = _fastest([k for k in T.kits if PUMP not in k.compatible_models and in_stock(k)])
    runner_up = T.suppliers[SECOND.supplier_id]
    right = [
        f"{not_for_p200.part_id} would arrive sooner but only fits P-200X… "
        f"Best: {BEST.part_id} from {WINNER.name}.",
        f"{runner_up.name} can also deliver in {arrival_days(T, SECOND)} days, but its kit costs "
        f"more. Best: {BEST.part_id} from {WINNER.name}.",
        f"{BEST.part_id} ({BEST.title}) from {WINNER.name}, arriving in "
        f"{arrival_days(T, BEST)} days.",
        f"I recommend {BEST.part_id}.\nSupplier: {WINNER.name} ({WINNER.supplier_id})",
        f"{BEST.part_id} from {WINNER.name} arrives soonest; {SECOND.part_id} from "
        f"{runner_up.name} arrives the same day but costs more. The second best is "
        f"{SECOND.part_id}.",
    ]
    for answer in right:
        verdict = SCENARIO.check(answer)
        assert verdict.correct, (answer, verdict.reason)
    both = f"Order {SECOND.part_id} from {runner_up.name} or {BEST.part_id} from {WINNER.name}."
    assert "more than one kit" in SCENARIO.check(both).reason


def test_near_misses_fail() -> None:
    one_day_slower = next(p for p in ranked() if arrival_days(T, p) == arrival_days(T, BEST) + 1)
    not_in_stock = _fastest([k for k in T.kits if PUMP in k.compatible_models and not in_stock(k)])
    not_for_p200 = _fastest([k for k in T.kits if PUMP not in k.compatible_models and in_stock(k)])
    quickest_lead = min(ranked(), key=lambda p: T.suppliers[p.supplier_id].lead_time_days)
    cheapest = min(ranked(), key=lambda p: p.unit_price_usd)
    wrong = [
        _answer(SECOND),  # same day, but dearer: the tie rule
        _answer(one_day_slower),
        _answer(not_in_stock),
        _answer(not_for_p200),
        _answer(quickest_lead),
        _answer(cheapest),
        _answer(BEST, T.suppliers[SECOND.supplier_id].name),  # the right kit, the wrong supplier
        f"Order {BEST.part_id} ({BEST.title}); it arrives in a few days.",  # no supplier
        f"{_answer(SECOND)} Or {_answer(BEST)}",  # the runner-up presented first
        "No compatible seal kit is in stock.",
    ]
    for answer in wrong:
        verdict = SCENARIO.check(answer)
        assert not verdict.correct and verdict.reason, answer


async def _run(mode: Literal["ptc", "direct"]) -> Any:
    model = ScriptedModel(SCENARIO.brain, name=f"scripted:{SCENARIO.name}")
    toolbox = Toolbox(SCENARIO.make_tools(0.0))
    async with LocalSandbox(pool_size=0) as sandbox:
        agent = Agent(model, toolbox, sandbox, mode=mode, max_turns=SCENARIO.direct_max_turns)
        return await agent.run(SCENARIO.question)


def _expected_tool_calls() -> int:
    hits = search(T, "seal kit")
    candidates = {
        T.parts[h.part_id].supplier_id
        for h in hits
        if PUMP in T.parts[h.part_id].compatible_models and in_stock(T.parts[h.part_id])
    }
    return 1 + len(hits) + len(candidates)


async def test_the_program_searches_fetches_and_compares_in_one_run() -> None:
    result = await _run("ptc")
    assert SCENARIO.check(result.answer).correct, result.answer
    assert result.usage.model_calls == 2
    assert len(result.programs) == 1
    tools = [c.tool for e in result.executions for c in e.tool_calls]
    assert len(tools) == result.usage.tool_calls == _expected_tool_calls()
    assert tools.count("search_parts") == 1


async def test_direct_mode_takes_one_turn_per_hop() -> None:
    result = await _run("direct")
    assert SCENARIO.check(result.answer).correct, result.answer
    assert result.usage.model_calls == 4  # search, parts, suppliers, answer
    assert result.usage.tool_calls == _expected_tool_calls()
    assert not result.programs
