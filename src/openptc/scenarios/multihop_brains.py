"""Scripted brains for the multi-hop lookup: one program, or search, fetch and compare by turns.

They know only what a model would: the question and the tool descriptions (the pump, the transit
rule, "in stock" means on_hand > 0). Everything else comes from the tool results in the
conversation, so a broken sandbox, bridge or tool shows up as a wrong answer.
"""

from __future__ import annotations

from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios.turns import Results, call, calls, offers_code_tool, program_turn

TOOL_NAMES = ("search_parts", "get_part", "get_supplier")
_PUMP = "P-200"  # from the question
_HOME, _NEAR, _FAR = "north-america", 2, 6  # from get_supplier's description

PROGRAM = """\
import asyncio

hits = await search_parts(query="seal kit")
parts = await asyncio.gather(*(get_part(part_id=h["part_id"]) for h in hits))
candidates = [
    p for p in parts
    if "P-200" in p["compatible_models"] and any(s["on_hand"] > 0 for s in p["stock"])
]
supplier_ids = sorted({p["supplier_id"] for p in candidates})
suppliers = dict(
    zip(supplier_ids, await asyncio.gather(*(get_supplier(supplier_id=s) for s in supplier_ids)))
)


def arrival(part):
    s = suppliers[part["supplier_id"]]
    return s["lead_time_days"] + (2 if s["shipping_region"] == "north-america" else 6)


key = lambda p: (arrival(p), p["unit_price_usd"])
best = min(candidates, key=key)
s = suppliers[best["supplier_id"]]
print(
    f"Soonest: {best['part_id']} ({best['title']}) from {s['name']} ({s['supplier_id']}), "
    f"arrives in {arrival(best)} days, ${best['unit_price_usd']:.2f}"
)
rest = [p for p in candidates if p is not best]
if rest:
    runner = min(rest, key=key)
    name = suppliers[runner["supplier_id"]]["name"]
    print(f"Runner-up: {runner['part_id']} from {name}, {arrival(runner)} days")
print(f"{len(candidates)} of {len(hits)} seal kits found are compatible with P-200 and in stock")
"""
"""Search, gather every part, filter, gather the candidates' suppliers, then ``min`` by
(arrival, price)."""


def _arrival(supplier: dict[str, Any]) -> int:
    """Days until a kit from this supplier reaches the plant: lead time plus transit."""
    transit = _NEAR if supplier["shipping_region"] == _HOME else _FAR
    return int(supplier["lead_time_days"]) + transit


def _direct(request: ModelRequest) -> Turn:
    """Search (turn 1), every hit's record (turn 2), the candidates' suppliers (turn 3), answer."""
    r = Results(request)
    if (failed := r.failed()) is not None:
        return f"I could not finish the lookup; a tool call failed:\n{failed}"
    searches = r.of("search_parts")
    if not searches:
        return call(request, "search_parts", query="seal kit")
    hits: list[dict[str, Any]] = next(iter(searches.values()))
    parts = r.of("get_part", "part_id")
    if not parts:
        return calls(request, [("get_part", {"part_id": h["part_id"]}) for h in hits])
    candidates = [
        p
        for p in parts.values()
        if _PUMP in p["compatible_models"] and any(s["on_hand"] > 0 for s in p["stock"])
    ]
    if not candidates:
        return (
            f"None of the {len(hits)} seal kits found is both compatible with {_PUMP} and in stock."
        )
    suppliers = r.of("get_supplier", "supplier_id")
    wanted = sorted({p["supplier_id"] for p in candidates} - set(suppliers))
    if wanted:
        return calls(request, [("get_supplier", {"supplier_id": s}) for s in wanted])

    def key(p: dict[str, Any]) -> tuple[int, float]:
        return _arrival(suppliers[p["supplier_id"]]), float(p["unit_price_usd"])

    best, *others = sorted(candidates, key=key)
    s = suppliers[best["supplier_id"]]
    transit = _arrival(s) - s["lead_time_days"]
    answer = (
        f"Order {best['part_id']} ({best['title']}) from {s['name']} ({s['supplier_id']}): it can "
        f"arrive in {_arrival(s)} days ({s['lead_time_days']} days lead time + {transit} "
        f"days transit from {s['shipping_region']}), at ${best['unit_price_usd']:.2f}. "
        f"{len(candidates)} of the {len(hits)} seal kits found fit the {_PUMP} and are in stock."
    )
    if others:
        o, by = others[0], suppliers[others[0]["supplier_id"]]
        answer += (
            f" Runner-up: {o['part_id']} from {by['name']}, {_arrival(by)} days, "
            f"${o['unit_price_usd']:.2f}."
        )
    return answer


def _multi_hop(request: ModelRequest) -> Turn:
    """Write the program when offered the code tool (ptc, hybrid); else call tools by turns."""
    if not offers_code_tool(request):
        return _direct(request)
    return program_turn(
        request, PROGRAM, "the lookup", lambda printed: f"Here is what the lookup found:\n{printed}"
    )


multi_hop_brain = Brain(_multi_hop, "the multi-hop lookup", TOOL_NAMES)
"""The brain of ``scripted:multi-hop``."""
