"""``Agent.run(on_event=...)``: what a run does, reported in order as it happens.

Scripted brains, the real expense tools and the real local sandbox; nothing is patched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from openptc.agent import Agent
from openptc.events import (
    Event,
    ExecutionFinished,
    ModelCallFinished,
    ModelCallStarted,
    ProgramStarted,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from openptc.models import ModelError, ModelRequest, ScriptedModel, ToolUseBlock
from openptc.prompts import CODE_TOOL_NAME
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import brains, expense
from openptc.tools import tool

ENGINEERS = len(expense.default_data().team("engineering"))


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(pool_size=1) as sb:
        yield sb


def _kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def _code(code: str, n: int = 1) -> list[ToolUseBlock]:
    return [ToolUseBlock(f"toolu_{n}", CODE_TOOL_NAME, {"code": code})]


def _check_calls_bracketed(calls: Sequence[Event]) -> int:
    """Every call starts before it finishes; returns how many were in flight at most."""
    in_flight: dict[str, int] = {}
    most = 0
    for event in calls:
        assert isinstance(event, ToolCallStarted | ToolCallFinished)
        step = 1 if isinstance(event, ToolCallStarted) else -1
        in_flight[event.name] = in_flight.get(event.name, 0) + step
        assert in_flight[event.name] >= 0, f"{event.name} finished before it started"
        most = max(most, sum(in_flight.values()))
    assert all(n == 0 for n in in_flight.values())
    return most


async def test_ptc_expense_audit_reports_each_step_in_order(sandbox: LocalSandbox) -> None:
    events: list[Event] = []
    agent = Agent(ScriptedModel(brains.expense_audit_brain), expense.make_tools(), sandbox)

    result = await agent.run(expense.QUESTION, on_event=events.append)

    calls = 1 + 2 * ENGINEERS
    assert result.usage.tool_calls == calls
    kinds = _kinds(events)
    assert kinds[:4] == ["RunStarted", "ModelCallStarted", "ModelCallFinished", "ProgramStarted"]
    assert kinds[4 : 4 + 2 * calls].count("ToolCallStarted") == calls
    assert kinds[4 : 4 + 2 * calls].count("ToolCallFinished") == calls
    assert kinds[4 + 2 * calls :] == [
        "ExecutionFinished",
        "ModelCallStarted",
        "ModelCallFinished",
        "RunFinished",
    ]
    started, asked, first, program = events[:4]
    assert started == RunStarted(
        "scripted", "ptc", ("get_team_members", "get_expenses", "get_custom_budget")
    )
    assert asked == ModelCallStarted(1)
    assert isinstance(first, ModelCallFinished) and first.number == 1
    assert first.stop_reason == "tool_use" and first.tool_uses == 1 and first.duration_s >= 0
    assert first.usage is None  # the scripted model reports none: counted with tiktoken
    assert program == ProgramStarted(1, expense.REFERENCE_PROGRAM)
    tool_events = events[4 : 4 + 2 * calls]
    assert _check_calls_bracketed(tool_events) > 1  # the program's gather overlaps calls
    assert all(e.source == "program" and e.program == 1 for e in tool_events)  # type: ignore[union-attr]
    assert all(e.ok and e.error is None for e in tool_events if isinstance(e, ToolCallFinished))
    executed = events[4 + 2 * calls]
    assert isinstance(executed, ExecutionFinished) and executed.error is None
    assert executed.execution == result.executions[0]
    second = events[-2]
    assert isinstance(second, ModelCallFinished) and second.number == 2 and second.tool_uses == 0
    assert events[-1] == RunFinished(
        "answered",
        result.usage.model_calls,
        result.usage.tool_calls,
        result.usage.input_tokens,
        result.usage.output_tokens,
    )


async def test_direct_expense_audit_reports_each_call_between_model_calls() -> None:
    events: list[Event] = []
    agent = Agent(
        ScriptedModel(brains.expense_audit_brain), expense.make_tools(), mode="direct", max_turns=80
    )

    result = await agent.run(expense.QUESTION, on_event=events.append)

    kinds = _kinds(events)
    assert "ProgramStarted" not in kinds and "ExecutionFinished" not in kinds
    assert kinds.count("ModelCallStarted") == kinds.count("ModelCallFinished")
    assert kinds.count("ModelCallFinished") == result.usage.model_calls
    assert kinds.count("ToolCallFinished") == result.usage.tool_calls == 1 + 2 * ENGINEERS
    calls = [e for e in events if isinstance(e, ToolCallStarted | ToolCallFinished)]
    assert all(e.source == "direct" and e.program is None for e in calls)
    _check_calls_bracketed(calls)
    # Each model call asking for tools is followed by exactly that many calls, then the next.
    for i, event in enumerate(events):
        if isinstance(event, ModelCallFinished) and event.tool_uses:
            pairs = kinds[i + 1 : i + 1 + 2 * event.tool_uses]
            assert pairs == ["ToolCallStarted", "ToolCallFinished"] * event.tool_uses
            assert kinds[i + 1 + 2 * event.tool_uses] == "ModelCallStarted"
    last = events[-1]
    assert isinstance(last, RunFinished) and last.stop == "answered" and last.error is None
    assert last.input_tokens == result.usage.input_tokens
    assert last.model_calls == result.usage.model_calls


async def test_a_programs_tool_calls_are_reported_while_it_runs(sandbox: LocalSandbox) -> None:
    events: list[Event] = []
    seen_at_call: list[list[str]] = []

    @tool
    def probe(n: int) -> int:
        """Record which events the run had reported when this call ran."""
        seen_at_call.append(_kinds(events))
        return n

    program = "for i in range(3):\n    print(await probe(n=i))"
    model = ScriptedModel.from_turns([_code(program), "done"])

    await Agent(model, [probe], sandbox).run("go", on_event=events.append)

    assert len(seen_at_call) == 3
    for number, seen in enumerate(seen_at_call):
        assert seen[-1] == "ToolCallStarted"  # its own call, reported before it ran
        assert seen.count("ToolCallFinished") == number  # the earlier ones, as they ended
        assert "ExecutionFinished" not in seen


async def test_failed_calls_and_a_failed_program_are_reported(sandbox: LocalSandbox) -> None:
    events: list[Event] = []
    program = (
        "try:\n    await get_expenses(employee_id='E1001', quarter='Q9')\n"
        "except Exception as e:\n    print('caught')\n1 / 0"
    )
    model = ScriptedModel.from_turns([_code(program), "done"])

    await Agent(model, expense.make_tools(), sandbox).run("go", on_event=events.append)

    (failed,) = [e for e in events if isinstance(e, ToolCallFinished)]
    assert failed.name == "get_expenses" and not failed.ok
    assert failed.error is not None and "quarter" in failed.error
    (executed,) = [e for e in events if isinstance(e, ExecutionFinished)]
    assert executed.error == "ZeroDivisionError: division by zero"
    assert executed.execution is not None and not executed.execution.ok


async def test_a_direct_call_of_a_grouped_tool_is_named_as_programs_name_it() -> None:
    @tool(name="hr.team")
    def team(department: str) -> list[str]:
        """Members of a department."""
        return ["ada"]

    events: list[Event] = []
    turn = [ToolUseBlock("t1", "hr__team", {"department": "x"})]
    model = ScriptedModel.from_turns([turn, "done"])

    await Agent(model, [team], mode="direct").run("go", on_event=events.append)

    names = [e.name for e in events if isinstance(e, ToolCallStarted | ToolCallFinished)]
    assert names == ["hr.team", "hr.team"]


async def test_a_model_error_on_the_first_call_still_finishes_the_run() -> None:
    def brain(request: ModelRequest) -> Any:
        raise ModelError("set ANTHROPIC_API_KEY")

    events: list[Event] = []
    with pytest.raises(ModelError):
        await Agent(ScriptedModel(brain), []).run("go", on_event=events.append)

    assert _kinds(events) == ["RunStarted", "ModelCallStarted", "RunFinished"]
    assert events[-1] == RunFinished("error", 0, 0, 0, 0, "ModelError: set ANTHROPIC_API_KEY")


async def test_a_model_error_mid_run_finishes_with_what_was_done(sandbox: LocalSandbox) -> None:
    def brain(request: ModelRequest) -> Any:
        if len(request.messages) == 1:
            return _code(expense.REFERENCE_PROGRAM)
        raise ModelError("the provider is down")

    events: list[Event] = []
    result = await Agent(ScriptedModel(brain), expense.make_tools(), sandbox).run(
        "go", on_event=events.append
    )

    assert _kinds(events)[-3:] == ["ExecutionFinished", "ModelCallStarted", "RunFinished"]
    last = events[-1]
    assert isinstance(last, RunFinished) and last.stop == "model_error"
    assert last.error == "ModelError: the provider is down"
    assert last.tool_calls == result.usage.tool_calls == 1 + 2 * ENGINEERS
    assert isinstance(events[-2], ModelCallStarted) and events[-2].number == 2


async def test_a_sink_that_raises_is_logged_and_the_run_goes_on(
    sandbox: LocalSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, ToolCallStarted):
            raise RuntimeError("my logging is broken")

    agent = Agent(ScriptedModel(brains.expense_audit_brain), expense.make_tools(), sandbox)
    with caplog.at_level(logging.ERROR, logger="openptc.agent"):
        result = await agent.run(expense.QUESTION, on_event=sink)

    assert expense.is_correct(result.answer)
    assert {c.outcome for c in result.executions[0].tool_calls} == {"ok"}  # no tool saw it
    assert isinstance(events[-1], RunFinished) and events[-1].stop == "answered"
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "on_event raised on ToolCallStarted; the run goes on"
    assert caplog.records[0].exc_info is not None  # the caller's traceback, once
    assert messages[1:] == [
        f"on_event raised {1 + 2 * ENGINEERS} times in this run (first one logged)"
    ]
