"""Scripted brains for conditional follow-ups: track a parcel only when its order says so.

They know only what a model would: the question and the tool descriptions (today's date, the
10-day tracking rule, the refund policy). Everything else comes from the tool results in the
conversation, so a broken sandbox, bridge or tool shows up as a wrong answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios.turns import Results, call, calls, offers_code_tool, program_turn

TOOL_NAMES = ("list_open_tickets", "get_order", "get_tracking")
_TODAY = dt.date(2025, 6, 30)  # from the tool descriptions, as are the two limits
_TRACK_AFTER, _UNSHIPPED_AFTER = 10, 14

PROGRAM = """\
import asyncio
import datetime as dt
import json

TODAY = dt.date(2025, 6, 30)
tickets = json.loads(await list_open_tickets())
orders = await asyncio.gather(*[get_order({"order_id": t["order_id"]}) for t in tickets])


def age(day):
    return (TODAY - dt.date.fromisoformat(day)).days


to_track = [
    (t, o)
    for t, o in zip(tickets, orders)
    if o["status"] == "shipped" and age(o["shipped_on"]) > 10
]
tracks = await asyncio.gather(
    *[
        get_tracking({"carrier": o["carrier"], "tracking_number": o["tracking_number"]})
        for _, o in to_track
    ]
)
refunds = {
    t["ticket_id"]: f"carrier reports {tr['status']}"
    for (t, _), tr in zip(to_track, tracks)
    if tr["status"] in ("lost", "returned_to_sender")
}
refunds.update(
    (t["ticket_id"], f"never shipped, ordered {age(o['placed_on'])} days ago")
    for t, o in zip(tickets, orders)
    if o["status"] == "processing" and age(o["placed_on"]) > 14
)
for ticket_id in sorted(refunds):
    print(f"{ticket_id}: {refunds[ticket_id]}")
print(f"{len(refunds)} of {len(tickets)} open shipping tickets need a refund")
print(f"(tracking looked up for {len(to_track)} orders)")
"""
"""Gather every order, decide in a comprehension which parcels to track, gather only those."""


def _age(day: str) -> int:
    return (_TODAY - dt.date.fromisoformat(day)).days


def _may_track(order: dict[str, Any]) -> bool:
    return order["status"] == "shipped" and _age(order["shipped_on"]) > _TRACK_AFTER


def _direct(request: ModelRequest) -> Turn:
    """Tickets (turn 1), every order at once (turn 2), the allowed lookups at once (turn 3)."""
    r = Results(request)
    if (failed := r.failed()) is not None:
        return f"I could not finish the review; a tool call failed:\n{failed}"
    listed = r.of("list_open_tickets")
    if not listed:
        return call(request, "list_open_tickets")
    tickets: list[dict[str, Any]] = next(iter(listed.values()))
    orders = r.of("get_order", "order_id")
    if not orders:
        return calls(request, [("get_order", {"order_id": t["order_id"]}) for t in tickets])
    to_track = [o for o in orders.values() if _may_track(o)]
    if to_track and not r.called("get_tracking"):
        wanted = [(o["carrier"], o["tracking_number"]) for o in to_track]
        return calls(
            request,
            [("get_tracking", {"carrier": c, "tracking_number": n}) for c, n in wanted],
        )
    tracking = r.of("get_tracking", "tracking_number")
    reasons: list[str] = []
    for t in tickets:
        o = orders[t["order_id"]]
        status = tracking.get(str(o["tracking_number"]), {}).get("status")
        if _may_track(o) and status in ("lost", "returned_to_sender"):
            why = "lost by the carrier" if status == "lost" else "returned to sender"
            reasons.append(f"- {t['ticket_id']} (order {o['order_id']}): parcel {why}")
        elif o["status"] == "processing" and _age(o["placed_on"]) > _UNSHIPPED_AFTER:
            age = _age(o["placed_on"])
            reasons.append(f"- {t['ticket_id']} (order {o['order_id']}): not shipped, {age} days")
    if not reasons:
        return f"None of the {len(tickets)} open shipping tickets needs a refund."
    return (
        f"{len(reasons)} of the {len(tickets)} open shipping tickets need a refund:\n"
        + "\n".join(reasons)
    )


def _conditional(request: ModelRequest) -> Turn:
    """Write the program when offered the code tool (ptc, hybrid); else call tools by turns."""
    if not offers_code_tool(request):
        return _direct(request)
    return program_turn(
        request, PROGRAM, "the review", lambda printed: f"These tickets need a refund:\n{printed}"
    )


conditional_brain = Brain(_conditional, "the conditional follow-ups", TOOL_NAMES)
"""The brain of ``scripted:conditional``."""
