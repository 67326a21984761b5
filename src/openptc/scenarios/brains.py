"""Scripted "brains" for the expense audit: policies for ``ScriptedModel`` that read what they were
given (tool results in the conversation) and decide the next turn, as a model would.

They let the demo and the tests run the whole agent loop offline. Their answers are derived from
the tool results they receive, never hard-coded, so a broken sandbox, bridge or tool shows up as
a wrong answer. They are written for the audit's tools and say so (``Brain``): a model string
``scripted:expense-audit`` offered anyone else's tools refuses rather than invent calls.
"""

from __future__ import annotations

import json
from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.prompts import CODE_TOOL_NAME
from openptc.scenarios import expense
from openptc.scenarios.base import Scenario, Verdict
from openptc.scenarios.turns import (
    SERVICE_CODE_TOOL,
    offers_code_tool,
    results_by_id,
    tool_uses,
)
from openptc.scenarios.turns import call as _call


def ptc_brain(request: ModelRequest) -> Turn:
    """Turn 1: run the reference program. Turn 2: relay what the program printed.

    Behind the Anthropic-compatible proxy the code tool is ``code_execution`` and tools return
    text, so the program is the one written for the hosted service.
    """
    last = request.messages[-1]
    if not last.results:
        if any(spec.name == SERVICE_CODE_TOOL for spec in request.tools):
            return _call(request, SERVICE_CODE_TOOL, code=expense.SERVICE_STYLE_PROGRAM)
        return _call(request, CODE_TOOL_NAME, code=expense.REFERENCE_PROGRAM)
    result = last.results[-1]
    if result.is_error:
        return f"I could not complete the audit; the program failed:\n{result.content}"
    return f"Here is what the audit program found:\n{result.content.strip()}"


def direct_brain(request: ModelRequest) -> Turn:
    """A cautious classic agent: one tool call per turn, then the answer from the JSON results.

    Calls ``get_team_members("engineering")``, then ``get_expenses`` for each member, then
    ``get_custom_budget`` for each member, and finally applies the budget rule the tools
    describe (approved travel items against the quarterly budget).
    """
    calls = list(tool_uses(request.messages))
    results = results_by_id(request.messages)
    failed = [results[c.id] for c in calls if c.id in results and results[c.id].is_error]
    if failed:
        return f"I could not complete the audit; a tool call failed:\n{failed[-1].content}"

    def outputs(name: str) -> dict[str, Any]:
        """Parsed results of one tool, keyed by the id of the employee they are about."""
        found: dict[str, Any] = {}
        for c in calls:
            if c.name == name and c.id in results:
                key = str(c.input.get("employee_id", c.input.get("user_id", "")))
                found[key] = json.loads(results[c.id].content)
        return found

    teams = outputs("get_team_members")
    if not teams:
        return _call(request, "get_team_members", department="engineering")
    members: list[dict[str, Any]] = next(iter(teams.values()))
    expenses = outputs("get_expenses")
    for m in members:
        if m["id"] not in expenses:
            return _call(request, "get_expenses", employee_id=m["id"], quarter="Q3")
    budgets = outputs("get_custom_budget")
    for m in members:
        if m["id"] not in budgets:
            return _call(request, "get_custom_budget", user_id=m["id"])
    return expense.format_answer(overspenders(members, expenses, budgets))


def overspenders(
    members: list[dict[str, Any]], expenses: dict[str, Any], budgets: dict[str, Any]
) -> list[expense.Overspend]:
    """The budget rule the tools describe, applied to their parsed results (by employee id):
    approved travel items against the quarterly travel budget."""
    over: list[expense.Overspend] = []
    for m in members:
        spent = round(
            sum(
                e["amount"]
                for e in expenses[m["id"]]
                if e["category"] == "travel" and e["status"] == "approved"
            ),
            2,
        )
        limit = float(budgets[m["id"]]["travel_budget_usd"])
        if spent > limit:
            over.append(expense.Overspend(m["name"], m["id"], spent, limit))
    return over


def _expense_audit(request: ModelRequest) -> Turn:
    """Write a program when offered the code tool (ptc, hybrid); else call tools one by one."""
    if offers_code_tool(request):
        return ptc_brain(request)
    return direct_brain(request)


EXPENSE_AUDIT_TOOLS = ("get_team_members", "get_expenses", "get_custom_budget")

expense_audit_brain = Brain(_expense_audit, "the expense audit", EXPENSE_AUDIT_TOOLS)
"""The brain of ``scripted:expense-audit`` (an ``openptc.scripted`` entry point)."""


def _check(answer: str) -> Verdict:
    """Right when the answer claims exactly the engineers who exceeded; a name mentioned only to
    rule it out ("X would be over only if pending items counted") is not a claim."""
    expected = {o.name for o in expense.expected_overspenders()}
    named, ruled_out = expense.parse_names(answer)
    if named == expected:
        return Verdict.right()
    missing, extra = sorted(expected - named), sorted(named - expected)
    reason = f"missing {missing or 'none'}; wrongly named {extra or 'none'}"
    if denied := sorted(set(missing) & ruled_out):
        reason += f"; {', '.join(denied)} named only as not over budget"
    return Verdict.wrong(reason)


EXPENSE_AUDIT = Scenario(
    name="expense-audit",
    title="Expense audit",
    stresses="fan-out: 49 calls and ~1,900 line items, of which the answer needs a few lines",
    question=expense.QUESTION,
    make_tools=lambda latency: expense.make_tools(latency=latency),
    check=_check,
    brain=expense_audit_brain,
)
