"""openptc's code tool in a real smolagents ``ToolCallingAgent``, driven by a model class that
returns scripted messages through smolagents' ``Model.generate`` (its extension point for
models): the agent offers ``execute_code`` with the stubs in its description, the model's call
runs the audit program in openptc's sandbox on the tool's own loop thread (calling the expense
tools on the host), and the model answers with ``final_answer`` from the observation."""

from __future__ import annotations

import threading

import pytest
from smolagents import ToolCallingAgent

from fakes.framework_models import SmolagentsAuditor
from openptc.integrations.smolagents import SmolagentsCodeTool
from openptc.sandbox.base import SandboxError
from openptc.scenarios import expense

LAST_LINE = "4 of 24 engineering members exceeded their Q3 travel budget"


def test_a_tool_calling_agent_runs_the_audit_in_openptc() -> None:
    model = SmolagentsAuditor(expense.REFERENCE_PROGRAM)
    with SmolagentsCodeTool(expense.make_tools()) as execute_code:
        agent = ToolCallingAgent(tools=[execute_code], model=model, verbosity_level=0)
        answer = agent.run(expense.QUESTION)
        execution = execute_code.code_tool.last_execution

    offered = {tool.name: tool for tool in model.offered[0]}
    assert set(offered) == {"execute_code", "final_answer"}
    assert (
        "async def get_expenses(employee_id: str, quarter: " in offered["execute_code"].description
    )
    assert isinstance(answer, str) and answer.splitlines()[-1] == LAST_LINE
    assert expense.is_correct(answer)
    assert execution is not None and len(execution.tool_calls) == 49
    assert execution.isolation.level in ("bubblewrap", "process")


def _loop_threads() -> int:
    return sum(t.name == "openptc-code-tool" for t in threading.enumerate())


def test_variables_persist_and_closing_stops_the_loop_thread() -> None:
    before = _loop_threads()
    with SmolagentsCodeTool(expense.make_tools()) as execute_code:
        assert _loop_threads() == before + 1
        execute_code(code='members = await get_team_members(department="engineering")')
        assert execute_code(code="print(len(members))") == "24"
    assert _loop_threads() == before
    execute_code.close()  # twice is fine
    with pytest.raises(SandboxError, match="closed"):
        execute_code(code="print(1)")
