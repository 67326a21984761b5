"""``CodeTool``, the public code tool the framework adapters stand on: the description a model
reads, programs run in one sandbox session that keeps its variables, only code-callable tools,
and a lost session said in words while the sandbox itself failing raises."""

from __future__ import annotations

import asyncio

import pytest

from fakes.dying_sandbox import DyingSandbox
from openptc import CodeTool, LocalSandbox, Toolbox, tool
from openptc.code_tool import REOPENED_NOTICE, SessionLost
from openptc.prompts import CODE_TOOL_SCHEMA
from openptc.sandbox.base import SandboxError
from openptc.scenarios import expense

LAST_LINE = "4 of 24 engineering members exceeded their Q3 travel budget"


@tool(callers=("direct",))
async def approve_refund(order_id: str) -> str:
    """Approve a refund: only the model itself may call this, never a program."""
    return f"refunded {order_id}"


async def test_runs_the_audit_in_the_sandbox_and_returns_what_it_printed() -> None:
    async with CodeTool(expense.make_tools()) as code:
        assert code.name == "execute_code"
        assert code.input_schema == CODE_TOOL_SCHEMA
        assert "async def get_expenses(employee_id: str, quarter: " in code.description
        assert "Top-level `await` works" in code.description
        text = await code.run(expense.REFERENCE_PROGRAM)
        execution = code.last_execution
    assert text.splitlines()[-1] == LAST_LINE
    assert execution is not None and execution.ok
    assert len(execution.tool_calls) == 1 + 24 + 24
    assert {c.tool for c in execution.tool_calls} == {
        "get_team_members",
        "get_expenses",
        "get_custom_budget",
    }
    for overspend in expense.expected_overspenders():
        assert overspend.name in text


async def test_variables_persist_between_programs_of_one_code_tool() -> None:
    async with CodeTool(expense.make_tools()) as code:
        first = await code.run('members = await get_team_members(department="engineering")')
        second = await code.run("print(len(members), members[0]['id'])")
    assert first == "(the program printed nothing; use print() to return results)"
    assert second.split()[0] == "24"
    assert second.split()[1] == expense.default_data().team("engineering")[0].id


async def test_a_failing_program_comes_back_as_text_the_model_can_act_on() -> None:
    async with CodeTool(expense.make_tools()) as code:
        text = await code.run('await get_expenses(employee_id="E1000", quarter="Q9")\n')
        assert await code.run("   \n") == await code.run(None)
        assert await code.run(None) == (
            'execute_code needs {"code": "<a Python program>"}, and the program was missing '
            "or empty."
        )
    assert text.startswith("[error]")
    assert "ToolArgumentError" in text and "quarter" in text
    assert "[tool calls that ran before the error] get_expenses#1:error" in text


async def test_only_code_callable_tools_are_shown_and_callable() -> None:
    tools = Toolbox([*expense.make_tools(), approve_refund])
    async with CodeTool(tools) as code:
        assert "approve_refund" not in code.description
        assert "async def get_team_members(" in code.description
        text = await code.run('print(await approve_refund(order_id="o1"))')
    assert "NameError" in text and "approve_refund" in text


async def test_a_borrowed_sandbox_stays_open_and_an_idle_session_is_replaced() -> None:
    async with LocalSandbox(pool_size=0, idle_timeout_s=0.3) as sandbox:
        async with CodeTool(expense.make_tools(), sandbox) as code:
            await code.run("x = 41")
            assert await code.run("print(x + 1)") == "42"
            await asyncio.sleep(0.8)  # the sandbox reaps the idle session
            text = await code.run("print('x' in globals())")
        assert text.splitlines() == ["False", f"[note] {REOPENED_NOTICE}"]
        session = await sandbox.open_session()  # the code tool did not close the sandbox
        assert (await session.execute("print(1)")).stdout == "1\n"


async def test_a_cancelled_program_ends_its_session_and_the_next_one_is_told() -> None:
    async with CodeTool(expense.make_tools()) as code:
        await code.run("x = 1")
        running = asyncio.create_task(code.run("import time\ntime.sleep(30)"))
        await asyncio.sleep(0.5)
        running.cancel()  # as a framework's tool timeout does
        with pytest.raises(asyncio.CancelledError):
            await running
        text = await asyncio.wait_for(code.run("print('x' in globals())"), 10)
    assert text.splitlines() == ["False", f"[note] {REOPENED_NOTICE}"]


async def test_a_session_lost_under_a_program_is_told_and_replaced() -> None:
    sandbox = DyingSandbox()
    async with CodeTool([], sandbox) as code:
        text = await code.run("print(1)")
        with pytest.raises(SessionLost, match="went away"):
            await code.execute("print(2)")
    assert text == (
        "[error] The sandbox session was lost (the sandbox server went away). The next program "
        "runs in a fresh session: variables, imports and files from earlier programs are gone, "
        "and tool calls this program made before the loss may have run. Run the program again "
        "if needed."
    )
    assert len(sandbox.opened) == 2 and all(s.closed for s in sandbox.opened)


async def test_a_closed_sandbox_raises_instead_of_answering() -> None:
    async with LocalSandbox(pool_size=0) as sandbox, CodeTool([], sandbox) as code:
        assert await code.run("print(1)") == "1"
        await sandbox.aclose()
        with pytest.raises(SandboxError, match="closed") as raised:
            await code.run("print(1)")
    assert not isinstance(raised.value, SessionLost)


async def test_a_program_before_start_or_after_close_is_refused() -> None:
    code = CodeTool(expense.make_tools())
    with pytest.raises(SandboxError, match="not started"):
        await code.run("print(1)")
    async with code:
        assert await code.run("print(1)") == "1"
    with pytest.raises(SandboxError, match="closed"):
        await code.run("print(1)")
