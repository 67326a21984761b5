"""Scripted brains for "Personal data stays out": the churn report in both modes.

PTC: one program that reads every record inside the sandbox and prints ten aggregates, then an
answer from what it printed. Direct: the five regions' customer lists in one parallel turn, the
orders of every customer who churned in Q2 2025 in a second, then the answer. Both derive every
number from the tool results they were given; the direct brain reads the regions from the tool's
schema, as a model reads the enum it is offered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios.turns import Results, calls, offers_code_tool, program_turn

TOOL_NAMES = ("list_customers", "get_orders")
Q2 = ("2025-04-01", "2025-06-30")

PROGRAM = """\
import asyncio
from collections import defaultdict

regions = ["north", "south", "east", "west", "central"]
lists = await asyncio.gather(*(list_customers(region=r) for r in regions))
churned = [
    c
    for customers in lists
    for c in customers
    if c["churned_on"] and "2025-04-01" <= c["churned_on"] <= "2025-06-30"
]
histories = await asyncio.gather(*(get_orders(customer_id=c["customer_id"]) for c in churned))

ltv = defaultdict(list)
for customer, orders in zip(churned, histories):
    value = sum(o["amount"] for o in orders if o["status"] == "completed")
    ltv[customer["region"]].append(value)

for region in regions:
    values = ltv[region]
    average = sum(values) / len(values) if values else 0.0
    print(f"{region}: {len(values)} churned, average lifetime value ${average:,.2f}")
"""
"""Keyword arguments, a nested generator and ISO dates compared as strings: only aggregates are
printed, so no name, email or address ever leaves the sandbox."""


def _ptc(request: ModelRequest) -> Turn:
    return program_turn(request, PROGRAM, "the churn report", _report)


def _report(printed: str) -> str:
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    return "Customers who churned in Q2 2025, by region:\n" + "\n".join(f"- {x}" for x in lines)


def _regions(request: ModelRequest) -> list[str]:
    """The regions ``list_customers`` accepts, from the enum of its input schema."""
    spec = next(s for s in request.tools if s.name == "list_customers")
    return list(spec.input_schema["properties"]["region"]["enum"])


def _direct(request: ModelRequest) -> Turn:
    results = Results(request)
    if (failure := results.failed()) is not None:
        return f"I could not compute the churn report; a tool call failed:\n{failure}"
    regions = _regions(request)
    lists = results.of("list_customers", "region")
    if not lists:
        return calls(request, [("list_customers", {"region": r}) for r in regions])
    churned: list[dict[str, Any]] = [
        c
        for region in regions
        for c in lists[region]
        if c["churned_on"] is not None and Q2[0] <= c["churned_on"] <= Q2[1]
    ]
    orders = results.of("get_orders", "customer_id")
    wanted = [c["customer_id"] for c in churned if c["customer_id"] not in orders]
    if wanted:
        return calls(request, [("get_orders", {"customer_id": i}) for i in wanted])
    cents: dict[str, list[int]] = defaultdict(list)
    for c in churned:
        history = orders[c["customer_id"]]
        value = sum(round(o["amount"] * 100) for o in history if o["status"] == "completed")
        cents[c["region"]].append(value)
    lines = []
    for region in regions:
        values = cents[region]
        average = sum(values) / len(values) / 100 if values else 0.0
        lines.append(
            f"- {region.title()}: {len(values)} customers churned; their average lifetime "
            f"value was ${average:,.2f}."
        )
    total = sum(len(v) for v in cents.values())
    return (
        f"In Q2 2025, {total} customers churned across {len(regions)} regions "
        "(lifetime value counts completed orders only, not refunded ones):\n" + "\n".join(lines)
    )


def _policy(request: ModelRequest) -> Turn:
    return _ptc(request) if offers_code_tool(request) else _direct(request)


privacy_brain = Brain(_policy, "the personal-data churn report", TOOL_NAMES)
"""The brain of ``scripted:privacy``."""
