"""The agent loop end to end: scripted brains, real tools, the real local sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fakes.dying_sandbox import DyingSandbox
from openptc.agent import Agent, RunResult
from openptc.code_tool import REOPENED_NOTICE
from openptc.events import ExecutionFinished
from openptc.models import (
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ScriptedModel,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Turn,
    count_request_tokens,
)
from openptc.prompts import CODE_TOOL_NAME
from openptc.sandbox.base import Limits
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import brains, expense
from openptc.tools import Toolbox, tool

BUGGY_PROGRAM = expense.REFERENCE_PROGRAM.replace('e["amount"]', 'e["amt"]')


def _results(result: RunResult) -> list[ToolResultBlock]:
    return [r for m in result.transcript for r in m.results]


def _code(code: str, n: int = 1) -> list[ToolUseBlock]:
    return [ToolUseBlock(f"toolu_{n}", CODE_TOOL_NAME, {"code": code})]


def _relay(request: ModelRequest) -> str:
    """Answer with whatever the last tool result said."""
    return request.messages[-1].results[-1].content


async def test_expense_audit_ptc_vs_direct(sandbox: LocalSandbox) -> None:
    tools = expense.make_tools()
    ptc = await Agent(
        ScriptedModel(brains.expense_audit_brain), tools, sandbox=sandbox, mode="ptc"
    ).run(expense.QUESTION)
    direct = await Agent(
        ScriptedModel(brains.expense_audit_brain), tools, mode="direct", max_turns=80
    ).run(expense.QUESTION)

    expected = expense.expected_overspenders(expense.default_data())
    for result in (ptc, direct):
        assert result.stop == "answered"
        assert expense.is_correct(result.answer), result.answer
        for over in expected:  # the exact amounts, computed from the tables, not the tools
            assert f"{over.spent_usd:,.2f}" in result.answer
            assert f"{over.budget_usd:,.2f}" in result.answer
        assert result.usage.tokens_counted == "tiktoken"
        assert "scripted" in result.model_label
        assert result.usage.tool_calls == 1 + 2 * len(expense.default_data().team("engineering"))

    assert ptc.mode == "ptc" and direct.mode == "direct"
    assert ptc.usage.model_calls == 2
    assert direct.usage.model_calls >= 21
    assert ptc.usage.input_tokens <= 0.10 * direct.usage.input_tokens
    assert ptc.programs == (expense.REFERENCE_PROGRAM,)
    assert [e.ok for e in ptc.executions] == [True]
    assert ptc.usage.executions == 1 and ptc.usage.program_errors == 0
    assert direct.programs == () and direct.usage.executions == 0
    # The PTC answer is what the program printed, relayed by the brain.
    assert ptc.executions[0].stdout.strip() in ptc.answer


async def test_ptc_model_sees_only_the_code_tool_with_stubs(sandbox: LocalSandbox) -> None:
    model = ScriptedModel(brains.expense_audit_brain)
    await Agent(model, expense.make_tools(), sandbox=sandbox).run(expense.QUESTION)

    first = model.requests[0]
    assert [s.name for s in first.tools] == [CODE_TOOL_NAME]
    description = first.tools[0].description
    for name in ("get_team_members", "get_expenses", "get_custom_budget"):
        assert f"async def {name}(" in description
    assert first.messages == (Message.user(expense.QUESTION),)


async def test_direct_mode_offers_plain_tool_specs() -> None:
    model = ScriptedModel(brains.expense_audit_brain)
    agent = Agent(model, expense.make_tools(), mode="direct", max_turns=80)
    result = await agent.run(expense.QUESTION)

    names = [s.name for s in model.requests[0].tools]
    assert names == ["get_team_members", "get_expenses", "get_custom_budget"]
    assert all(len(m.tool_uses) <= 1 for m in model.requests[-1].messages)  # one call per turn
    # The agent's incremental count is exactly the count of every request it sent.
    assert result.usage.input_tokens == sum(count_request_tokens(r) for r in model.requests)


async def test_program_error_is_fed_back_and_retried(sandbox: LocalSandbox) -> None:
    def brain(request: ModelRequest) -> Any:
        last = request.messages[-1].results
        if not last:
            return _code(BUGGY_PROGRAM, 1)
        if last[-1].is_error:
            assert "KeyError" in last[-1].content  # the model sees the traceback
            return _code(expense.REFERENCE_PROGRAM, 2)
        return _relay(request)

    result = await Agent(ScriptedModel(brain), expense.make_tools(), sandbox=sandbox).run(
        expense.QUESTION
    )

    assert expense.is_correct(result.answer), result.answer
    assert result.usage.model_calls == 3
    assert result.programs == (BUGGY_PROGRAM, expense.REFERENCE_PROGRAM)
    assert [e.ok for e in result.executions] == [False, True]
    assert [r.is_error for r in _results(result)] == [True, False]
    assert result.usage.program_errors == 1 and result.usage.executions == 2


async def test_stops_after_max_program_retries_failures_in_a_row(sandbox: LocalSandbox) -> None:
    model = ScriptedModel(lambda request: _code("1 / 0", len(request.messages)))
    agent = Agent(model, expense.make_tools(), sandbox=sandbox, max_program_retries=2)

    result = await agent.run(expense.QUESTION)

    assert result.stop == "program_errors"
    assert result.usage.model_calls == 2 and result.usage.program_errors == 2
    assert "2 programs in a row failed" in result.answer
    assert "ZeroDivisionError" in result.answer


async def test_variables_persist_between_programs_of_one_run(sandbox: LocalSandbox) -> None:
    model = ScriptedModel.from_turns([_code("x = 41", 1), _code("print(x + 1)", 2), "done"])

    result = await Agent(model, [], sandbox=sandbox).run("go")

    assert [r.content for r in _results(result)][-1] == "42"
    assert result.answer == "done"


class _PausingModel:
    """A scripted model that thinks long before its second turn (lets the session idle out)."""

    def __init__(self, inner: ScriptedModel, pause_s: float) -> None:
        self._inner, self._pause_s = inner, pause_s
        self._calls = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def label(self) -> str:
        return self._inner.label

    async def generate(self, request: ModelRequest, *, on_text: Any = None) -> ModelResponse:
        self._calls += 1
        if self._calls == 2:
            await asyncio.sleep(self._pause_s)
        return await self._inner.generate(request)


async def test_a_lost_session_is_replaced_and_the_model_told() -> None:
    turns: list[Turn] = [_code("x = 41", 1), _code("print(x + 1)", 2), _code("print('fresh')", 3)]
    turns.append("done")
    model = _PausingModel(ScriptedModel.from_turns(turns), pause_s=0.5)

    async with LocalSandbox(idle_timeout_s=0.1) as sb:
        result = await Agent(model, [], sandbox=sb).run("go")

    set_x, lost, fresh = _results(result)
    assert not set_x.is_error
    # the idled-out session is replaced before the program runs, which is told why x is gone
    assert lost.is_error and "NameError" in lost.content
    assert f"[note] {REOPENED_NOTICE}" in lost.content
    assert not fresh.is_error and fresh.content == "fresh"
    assert result.usage.program_errors == 1
    assert result.answer == "done"


async def test_a_session_that_dies_under_a_program_is_told_and_replaced() -> None:
    sandbox = DyingSandbox()
    model = ScriptedModel.from_turns([_code("print(1)", 1), _code("print(2)", 2), "done"])
    events: list[object] = []

    result = await Agent(model, [], sandbox=sandbox).run("go", on_event=events.append)

    assert all(
        r.is_error and "session was lost (the sandbox server went away)" in r.content
        for r in _results(result)
    )
    assert (result.usage.program_errors, result.answer) == (2, "done")
    assert len(sandbox.opened) == 2 and all(s.closed for s in sandbox.opened)
    finished = [e.error for e in events if isinstance(e, ExecutionFinished)]
    assert finished == ["SandboxError: the sandbox server went away"] * 2


def _code_only_expense_tools() -> list[Any]:
    team, expenses, budget = expense.make_tools()
    return [tool(callers=("direct",))(team), tool(callers=("code",))(expenses), budget]


async def test_hybrid_offers_each_tool_to_the_callers_it_allows(sandbox: LocalSandbox) -> None:
    turn = [
        ToolUseBlock("t1", "get_team_members", {"department": "finance"}),
        ToolUseBlock("t2", "get_expenses", {"employee_id": "E1001", "quarter": "Q3"}),
    ]
    model = ScriptedModel.from_turns([turn, "done"])

    result = await Agent(model, _code_only_expense_tools(), sandbox=sandbox, mode="hybrid").run(
        "go"
    )

    specs = {s.name: s for s in model.requests[0].tools}
    assert list(specs) == [CODE_TOOL_NAME, "get_team_members", "get_custom_budget"]
    stubs = specs[CODE_TOOL_NAME].description
    assert "async def get_expenses(" in stubs and "async def get_custom_budget(" in stubs
    assert "get_team_members" not in stubs
    members, refused = _results(result)
    assert not members.is_error and '"department":"finance"' in members.content
    assert refused.is_error and "only be called from inside a program" in refused.content
    assert CODE_TOOL_NAME in refused.content
    assert result.usage.tool_calls == 1


async def test_direct_errors_name_what_may_be_called() -> None:
    turn = [
        ToolUseBlock("t1", "no_such_tool", {}),
        ToolUseBlock("t2", CODE_TOOL_NAME, {"code": "print(1)"}),
        ToolUseBlock("t3", "get_expenses", {"employee_id": "E1001", "quarter": "Q9"}),
    ]
    model = ScriptedModel.from_turns([turn, "done"])

    result = await Agent(model, expense.make_tools(), mode="direct").run("go")

    unknown, code, bad_args = _results(result)
    for r in (unknown, code):
        assert r.is_error and "get_team_members, get_expenses, get_custom_budget" in r.content
    assert bad_args.is_error and "quarter" in bad_args.content
    assert result.usage.executions == 0


async def test_max_turns_ends_the_run_with_an_explanation() -> None:
    def forever(request: ModelRequest) -> list[ToolUseBlock]:
        n = len(request.messages)
        return [ToolUseBlock(f"t{n}", "get_team_members", {"department": "sales"})]

    result = await Agent(
        ScriptedModel(forever), expense.make_tools(), mode="direct", max_turns=3
    ).run("go")

    assert result.stop == "max_turns"
    assert result.usage.model_calls == 3
    assert "3" in result.answer and "max_turns" in result.answer


async def test_agent_owns_the_sandbox_it_creates_and_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[_WatchedSandbox] = []

    class _WatchedSandbox(LocalSandbox):
        """The real local sandbox, watched: which the agent made, and whether it closed them."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.closed_by_owner = False
            created.append(self)

        async def aclose(self) -> None:
            self.closed_by_owner = True
            await super().aclose()

    monkeypatch.setattr("openptc.sandbox.local.LocalSandbox", _WatchedSandbox)
    limits = Limits(timeout_s=10.0)
    agent = Agent("scripted:expense-audit", expense.make_tools(), limits=limits)

    result = await agent.run(expense.QUESTION)
    direct = await Agent("scripted:expense-audit", [], mode="direct").run("go")

    assert expense.is_correct(result.answer)
    assert len(created) == 1 and created[0].closed_by_owner
    assert created[0].limits == limits
    assert direct.usage.executions == 0 and len(created) == 1  # direct mode needs no sandbox


async def test_a_borrowed_sandbox_is_left_open(sandbox: LocalSandbox) -> None:
    model = ScriptedModel.from_turns([_code("print(1)"), "done"])
    await Agent(model, [], sandbox=sandbox).run("go")

    session = await sandbox.open_session()  # still usable
    assert (await session.execute("print(2)")).stdout.strip() == "2"
    await session.close()


class _BillingModel:
    """A model that reports provider usage, like a real adapter does."""

    name = "billing-test"
    label = "test model with provider usage"

    async def generate(self, request: ModelRequest, *, on_text: Any = None) -> ModelResponse:
        return ModelResponse((TextBlock("ok"),), "end_turn", ModelUsage(100, 7, 20, 3), self.name)


async def test_provider_usage_is_used_when_reported() -> None:
    result = await Agent(_BillingModel(), Toolbox([]), mode="direct").run("go")

    assert result.usage.tokens_counted == "provider"
    assert result.usage.input_tokens == 123 and result.usage.output_tokens == 7
    assert result.answer == "ok" and result.model_label == "test model with provider usage"


async def test_a_model_failure_mid_run_keeps_what_was_done(sandbox: LocalSandbox) -> None:
    def brain(request: ModelRequest) -> Any:
        if len(request.messages) == 1:
            return _code(expense.REFERENCE_PROGRAM)
        raise ModelError("the provider is down")

    result = await Agent(ScriptedModel(brain), expense.make_tools(), sandbox).run("go")
    assert result.stop == "model_error"
    assert "the provider is down" in result.answer
    assert result.usage.model_calls == 1 and result.usage.tool_calls == 49
    assert len(result.executions) == 1 and result.executions[0].ok
    assert len(result.transcript) == 3  # question, program, its result


async def test_a_model_failure_on_the_first_call_raises() -> None:
    def brain(request: ModelRequest) -> Any:
        raise ModelError("set ANTHROPIC_API_KEY")

    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY"):
        await Agent(ScriptedModel(brain), []).run("go")
