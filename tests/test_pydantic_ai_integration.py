"""openptc's code tool in a real pydantic-ai agent, driven by pydantic-ai's own ``FunctionModel``:
the model reads the stubs in the tool's description, writes the audit program, the program runs
in openptc's sandbox calling the expense tools on the host, and the model answers from what the
program printed. A second program of the run reuses the first one's variables."""

from __future__ import annotations

from pydantic_ai import Agent

from fakes.framework_models import PydanticAiAuditor, tool_returns
from openptc import CodeTool
from openptc.integrations.pydantic_ai import pydantic_ai_tool
from openptc.scenarios import expense


async def test_a_pydantic_ai_agent_runs_the_audit_in_openptc() -> None:
    auditor = PydanticAiAuditor(expense.REFERENCE_PROGRAM)
    async with CodeTool(expense.make_tools()) as code:
        agent = Agent(auditor.model(), tools=[pydantic_ai_tool(code)])
        result = await agent.run(expense.QUESTION)
        execution = code.last_execution

    (offered,) = auditor.seen[0].function_tools
    assert offered.name == "execute_code"
    assert offered.description is not None
    assert "async def get_expenses(employee_id: str, quarter: " in offered.description
    assert offered.parameters_json_schema["required"] == ["code"]
    assert execution is not None and len(execution.tool_calls) == 49
    assert execution.isolation.level in ("bubblewrap", "process")
    assert result.output.splitlines()[-1] == (
        "4 of 24 engineering members exceeded their Q3 travel budget"
    )
    assert expense.is_correct(result.output)


async def test_programs_of_one_run_share_the_session() -> None:
    fetch = 'members = await get_team_members(department="engineering")\nprint(len(members))'
    reuse = "print(sorted(m['id'] for m in members)[0])"
    auditor = PydanticAiAuditor(fetch, reuse)
    async with CodeTool(expense.make_tools()) as code:
        agent = Agent(auditor.model(), tools=[pydantic_ai_tool(code)])
        result = await agent.run("How many engineers, and who comes first?")

    first, second = (str(part.content) for part in tool_returns(result.all_messages()))
    assert first == "24"
    assert second == min(m.id for m in expense.default_data().team("engineering"))
