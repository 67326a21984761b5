"""The expense audit with a direct-mode brain that batches its calls, as most strong models do.

The reference audit's classic agent makes one call per turn (50 model calls): the published
PTC examples count it that way, and many agents still work so. Models that issue parallel tool
calls need three turns instead, and re-read far less context; this variant shows PTC against
that stronger baseline, so the report gives the range rather than the flattering end alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios import expense
from openptc.scenarios.brains import (
    EXPENSE_AUDIT,
    EXPENSE_AUDIT_TOOLS,
    overspenders,
    ptc_brain,
)
from openptc.scenarios.turns import Results, calls, offers_code_tool


def batched_direct_brain(request: ModelRequest) -> Turn:
    """The team (1 turn), every member's expenses and budget (1 parallel turn), the answer."""
    results = Results(request)
    if (failed := results.failed()) is not None:
        return f"I could not complete the audit; a tool call failed:\n{failed}"
    teams = results.of("get_team_members", "department")
    if "engineering" not in teams:
        return calls(request, [("get_team_members", {"department": "engineering"})])
    members: list[dict[str, Any]] = teams["engineering"]
    expenses = results.of("get_expenses", "employee_id")
    budgets = results.of("get_custom_budget", "user_id")
    if not expenses:
        wanted = [("get_expenses", {"employee_id": m["id"], "quarter": "Q3"}) for m in members]
        wanted += [("get_custom_budget", {"user_id": m["id"]}) for m in members]
        return calls(request, wanted)
    return expense.format_answer(overspenders(members, expenses, budgets))


def _policy(request: ModelRequest) -> Turn:
    return ptc_brain(request) if offers_code_tool(request) else batched_direct_brain(request)


expense_audit_parallel_brain = Brain(_policy, "the expense audit", EXPENSE_AUDIT_TOOLS)
"""The brain of ``scripted:expense-audit-parallel``."""

EXPENSE_AUDIT_PARALLEL = dataclasses.replace(
    EXPENSE_AUDIT,
    name="expense-audit-parallel",
    title="Expense audit, parallel calls",
    stresses="the same audit against a classic agent that batches its 48 lookups in one turn",
    brain=expense_audit_parallel_brain,
)
