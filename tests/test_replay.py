"""The replay backend end to end, over the local sandbox used as a stateless interpreter."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from openptc.agent import Agent
from openptc.bench.replay_bench import chain_program, portable_expense_tools
from openptc.models import ScriptedModel
from openptc.sandbox.base import Limits, SandboxError, ToolCallError, ToolSignature
from openptc.sandbox.managed import harness, shipping
from openptc.sandbox.managed.interpreter import CodeRun
from openptc.sandbox.managed.portable import NotPortable, portable
from openptc.sandbox.managed.replay import ReplaySandbox, ReplaySession
from openptc.scenarios import brains, expense
from openptc.tools import Toolbox


class CountingTools:
    """A tool host that counts every call it runs (replay must never ask twice)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def signatures(self) -> Sequence[ToolSignature]:
        return [
            ToolSignature("echo", ("value",)),
            ToolSignature("fail", ("message",)),
            ToolSignature("hang", ()),
        ]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append((name, arguments))
        if name == "fail":
            raise ToolCallError(f"ValueError: {arguments['message']}")
        if name == "hang":
            await asyncio.sleep(3600)
        return arguments["value"]

    def repeated(self) -> list[tuple[str, str]]:
        seen = Counter((name, json.dumps(args, sort_keys=True)) for name, args in self.calls)
        return [call for call, n in seen.items() if n > 1]


class CountingToolbox(Toolbox):
    """The expense tools, counting the calls that reach the host."""

    def __init__(self) -> None:
        super().__init__(expense.make_tools())
        self.host_calls = 0

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.host_calls += 1
        return await super().call(name, arguments)


@pytest.fixture
async def sandbox() -> AsyncIterator[ReplaySandbox]:
    async with ReplaySandbox.local(Limits(timeout_s=10), pool_size=0) as sb:
        yield sb


@pytest.fixture
async def session(sandbox: ReplaySandbox) -> ReplaySession:
    return await sandbox.open_session()


@pytest.fixture
def tools() -> CountingTools:
    return CountingTools()


# -- passes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [0, 1, 2, 3])
async def test_passes_are_the_depth_of_dependent_calls_plus_one(
    session: ReplaySession, tools: CountingTools, levels: int
) -> None:
    result = await session.execute(chain_program(levels, fan_out=5), tools)
    assert result.ok, result.error
    assert result.passes == levels + 1
    assert result.stdout == f"{sum(range(5)) + 25 * levels}\n"
    assert len(tools.calls) == len(result.tool_calls) == 5 * levels
    assert tools.repeated() == []


async def test_expense_audit_takes_three_passes(session: ReplaySession) -> None:
    toolbox = CountingToolbox()
    result = await session.execute(expense.REFERENCE_PROGRAM, toolbox)
    assert result.ok, result.error
    assert result.passes == 3  # members; expenses and budgets together; the answer
    assert toolbox.host_calls == len(result.tool_calls) == 1 + 2 * 24
    assert expense.is_correct(result.stdout)


async def test_main_style_program_with_dict_arguments(session: ReplaySession) -> None:
    result = await session.execute(expense.MAIN_STYLE_PROGRAM, Toolbox(expense.make_tools()))
    assert result.ok, result.error
    assert result.passes == 4  # members; expenses; budgets (awaited one after the other); answer
    assert expense.is_correct(result.stdout)


async def test_gather_of_fifty_calls_costs_one_pass(
    session: ReplaySession, tools: CountingTools
) -> None:
    code = "values = await asyncio.gather(*[echo(i) for i in range(50)])\nprint(sum(values))"
    result = await session.execute(code, tools)
    assert result.ok, result.error
    assert result.passes == 2
    assert sorted(args["value"] for _, args in tools.calls) == list(range(50))
    assert [c.call_id for c in result.tool_calls] == list(range(1, 51))
    assert all(c.outcome == "ok" for c in result.tool_calls)
    assert result.stdout == f"{sum(range(50))}\n"


async def test_calls_started_in_set_order_are_not_divergence(
    session: ReplaySession, tools: CountingTools
) -> None:
    # as_completed and wait start their calls in the order of a set (memory addresses): the
    # order differs between passes, the calls of the step do not.
    code = """
firsts = [await f for f in asyncio.as_completed([echo(f"a{i}") for i in range(8)])]
done, _ = await asyncio.wait({asyncio.ensure_future(echo(v + "b")) for v in firsts})
print(sorted(t.result() for t in done))
"""
    result = await session.execute(code, tools)
    assert result.ok, result.error
    assert result.passes == 3
    assert result.stdout == repr(sorted(f"a{i}b" for i in range(8))) + "\n"
    assert len(tools.calls) == 16 and tools.repeated() == []


async def test_output_of_earlier_passes_is_dropped(
    session: ReplaySession, tools: CountingTools
) -> None:
    code = 'print("before")\nx = await echo("a")\ny = await echo(x + "b")\nprint("after", y)'
    result = await session.execute(code, tools)
    assert result.passes == 3
    assert result.stdout == "before\nafter ab\n"


async def test_agent_runs_the_expense_audit_on_replay() -> None:
    model = ScriptedModel(brains.expense_audit_brain)
    async with ReplaySandbox.local(pool_size=0) as sandbox:
        result = await Agent(model, expense.make_tools(), sandbox, mode="ptc").run(expense.QUESTION)
    assert expense.is_correct(result.answer), result.answer
    assert [e.passes for e in result.executions] == [3]
    assert result.usage.tool_calls == 49


# -- determinism and divergence ---------------------------------------------------------------


async def test_random_and_wall_clock_are_the_same_in_every_pass(
    session: ReplaySession, tools: CountingTools
) -> None:
    code = """
import datetime, random, time
first = await echo([random.random(), time.time(), str(datetime.datetime.now())])
second = await echo([random.random(), time.time(), str(datetime.date.today())])
print(json.dumps([first, second]))
"""
    result = await session.execute(code, tools)
    assert result.ok, result.error
    assert result.passes == 3
    assert json.loads(result.stdout) == [args["value"] for _, args in tools.calls]
    assert abs(tools.calls[0][1]["value"][1] - time.time()) < 60  # fixed at now, not at 0


@pytest.mark.parametrize(
    "source",
    [
        "random.SystemRandom().random()",
        "os.urandom(8).hex()",
        "time.perf_counter()",
        "time.monotonic()",
    ],
)
async def test_unseeded_randomness_or_monotonic_time_is_divergence(
    session: ReplaySession, tools: CountingTools, source: str
) -> None:
    code = f"import os, random, time\nx = await echo({source})\ny = await echo(x)\nprint(y)"
    result = await session.execute(code, tools)
    assert result.error is not None
    assert (result.error.kind, result.error.type) == ("exception", "ReplayDivergence")
    assert "it called echo(value=" in result.error.message
    assert "in step 1, where the earlier pass made echo(value=" in result.error.message
    assert "not requested again" in result.error.message
    assert result.error.line == 2
    assert len(tools.calls) == 1  # the one result obtained was not asked for again
    assert result.stdout == ""


async def test_external_state_that_skips_calls_is_divergence(
    session: ReplaySession, tools: CountingTools
) -> None:
    code = """
import os
flag = "replay-flag-" + str(os.getpid())
if not os.path.exists(flag):
    open(flag, "w").close()
    await echo(1)
print("finished")
"""
    result = await session.execute(code, tools)
    assert result.error is not None and result.error.type == "ReplayDivergence"
    assert "made only 0 of the 1 tool calls the earlier passes made" in result.error.message
    assert len(tools.calls) == 1


# -- errors -----------------------------------------------------------------------------------


async def test_tool_error_is_catchable_in_the_program(
    session: ReplaySession, tools: CountingTools
) -> None:
    code = 'try:\n    await fail("boom")\nexcept ToolError as e:\n    print("caught", e)'
    result = await session.execute(code, tools)
    assert result.ok, result.error
    assert result.stdout == "caught ValueError: boom\n"
    assert [c.outcome for c in result.tool_calls] == ["error"]


async def test_uncaught_tool_error_is_reported_with_the_call_log(
    session: ReplaySession, tools: CountingTools
) -> None:
    result = await session.execute('x = await echo(1)\nawait fail("boom")', tools)
    assert result.error is not None
    assert (result.error.kind, result.error.type, result.error.line) == (
        "exception",
        "ToolError",
        2,
    )
    assert "ToolError: ValueError: boom" in result.error.traceback
    assert "replay" not in result.error.traceback  # only the program's own frames
    assert [(c.tool, c.outcome) for c in result.tool_calls] == [("echo", "ok"), ("fail", "error")]
    assert result.passes == 3


async def test_syntax_error_names_the_line(session: ReplaySession, tools: CountingTools) -> None:
    result = await session.execute("x = 1\nif x\n    print(x)", tools)
    assert result.error is not None
    assert (result.error.kind, result.error.line, result.passes) == ("syntax", 2, 1)
    assert tools.calls == []


async def test_program_timeout_reports_completed_calls_and_the_session_recovers(
    session: ReplaySession, tools: CountingTools
) -> None:
    result = await session.execute("x = await echo(1)\nwhile True:\n    pass", tools, timeout_s=1)
    assert result.error is not None and result.error.kind == "timeout"
    assert [(c.tool, c.outcome) for c in result.tool_calls] == [("echo", "ok")]
    after = await session.execute("print(await echo(2))", tools)
    assert after.ok and after.stdout == "2\n"
    assert any("restarted" in n for n in after.notices)


async def test_tool_timeout_marks_the_unfinished_call_cancelled(
    session: ReplaySession, tools: CountingTools
) -> None:
    result = await session.execute("x = await echo(1)\nawait hang()", tools, timeout_s=1)
    assert result.error is not None and result.error.kind == "timeout"
    assert [(c.tool, c.outcome) for c in result.tool_calls] == [
        ("echo", "ok"),
        ("hang", "cancelled"),
    ]


async def test_never_awaited_call_is_reported(session: ReplaySession, tools: CountingTools) -> None:
    result = await session.execute('echo("lost")\nprint("end")', tools)
    assert result.ok and result.passes == 1
    assert any("without `await`" in n and "line 1" in n for n in result.notices)
    assert tools.calls == []


async def test_too_many_passes_is_a_clear_error(tools: CountingTools) -> None:
    async with ReplaySandbox.local(max_passes=2, pool_size=0) as sandbox:
        session = await sandbox.open_session()
        result = await session.execute(chain_program(3, fan_out=1), tools)
    assert result.error is not None and result.error.type == "ReplayPassLimit"
    assert result.passes == 2
    assert len(tools.calls) == 1  # the calls of pass 2 would never be used: not run at all


# -- sessions ---------------------------------------------------------------------------------


async def test_variables_persist_between_executions(
    session: ReplaySession, tools: CountingTools
) -> None:
    await session.execute("base = 40", tools)
    result = await session.execute("print(base + await echo(2))", tools)
    assert result.stdout == "42\n"


async def test_isolation_is_the_local_sandbox_or_managed(sandbox: ReplaySandbox) -> None:
    session = await sandbox.open_session()
    result = await session.execute("print(1)")
    assert result.isolation.level in ("bubblewrap", "process")
    managed = ReplaySandbox(lambda: _fail_to_open())
    assert managed.isolation.level == "managed"


async def _fail_to_open() -> Any:
    raise SandboxError("not used")


class SubprocessInterpreter:
    """A stateless interpreter: every run is a fresh ``python -I -S`` with no event loop."""

    name = "subprocess"

    async def run(self, code: str, *, timeout_s: float) -> CodeRun:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", "-c", code, stdout=-1, stderr=-1
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
        duration = (time.perf_counter() - started) * 1000
        return CodeRun(out.decode(), err.decode(), process.returncode != 0, duration)

    async def close(self) -> None:
        pass


async def test_an_interpreter_that_keeps_no_state_gets_the_harness_with_every_pass(
    tools: CountingTools,
) -> None:
    async def factory() -> SubprocessInterpreter:
        return SubprocessInterpreter()

    async with ReplaySandbox(factory, limits=Limits(timeout_s=20)) as sandbox:
        session = await sandbox.open_session()
        result = await session.execute("x = await echo(20)\nprint(await echo(x + 1))", tools)
        later = await session.execute("print('x' in globals())", tools)
    assert result.ok, result.error
    assert (result.stdout, result.passes, len(tools.calls)) == ("21\n", 3, 2)
    assert result.isolation.level == "managed"
    assert later.stdout == "False\n"  # the model is told why its variables are gone
    assert any("keeps no state between runs" in n for n in later.notices)


# -- pre-loaded tools -------------------------------------------------------------------------


async def test_preloaded_tools_answer_without_the_host() -> None:
    toolbox = CountingToolbox()
    async with ReplaySandbox.local(preloaded=portable_expense_tools(), pool_size=0) as sandbox:
        session = await sandbox.open_session()
        result = await session.execute(expense.REFERENCE_PROGRAM, toolbox)
    assert result.ok, result.error
    assert (result.passes, toolbox.host_calls, result.tool_calls) == (1, 0, ())
    for member in expense.expected_overspenders():
        assert f"{member.name}: ${member.spent_usd:,.2f} spent" in result.stdout
    assert expense.is_correct(result.stdout)


async def test_preloaded_tool_errors_reach_the_program() -> None:
    async with ReplaySandbox.local(preloaded=portable_expense_tools(), pool_size=0) as sandbox:
        session = await sandbox.open_session()
        result = await session.execute('await get_expenses("E1001", "Q1")')
    assert result.error is not None and result.error.type == "ToolError"
    assert "ValueError: no Q1 expenses" in result.error.message


async def test_missing_requirement_is_reported_at_open() -> None:
    @portable(requirements=["surely-not-installed-pkg>=1"])
    def needs_package(x: int) -> int:
        return x

    async with ReplaySandbox.local(preloaded=[needs_package], pool_size=0) as sandbox:
        with pytest.raises(SandboxError, match=r"surely-not-installed-pkg>=1.*not installed"):
            await sandbox.open_session()


def test_portable_rejects_what_cannot_be_shipped() -> None:
    data = expense.default_data()

    def closes_over_data(department: str) -> Any:
        return data.team(department)  # type: ignore[arg-type]

    with pytest.raises(NotPortable, match=r"closes over 'data' \(of type ExpenseData\)"):
        portable(closes_over_data)

    def uses_pytest() -> Any:
        return pytest.__name__

    with pytest.raises(NotPortable, match=r"requirements=\['pytest'\]"):
        portable(uses_pytest)


def test_portable_ships_imports_and_constants() -> None:
    limit = {"max": 3}

    @portable(name="clip")
    def clip_values(values: list[int]) -> list[int]:
        return [min(v, limit["max"]) for v in values if not os.path.isabs(str(v))]

    namespace: dict[str, Any] = {}
    exec(clip_values.source, namespace)
    assert namespace["clip"]([1, 5]) == [1, 3]
    assert clip_values.signature == ToolSignature("clip", ("values",))
    assert "@portable" not in clip_values.source


def test_envelope_is_found_among_other_output() -> None:
    marker = shipping.marker_for("abc")
    line = harness.envelope(marker, {"status": "done", "stdout": "x"})
    found = shipping.parse_envelope("noise" + line + "\nmore noise\n", marker)
    assert found == {"status": "done", "stdout": "x"}
    assert shipping.parse_envelope("no answer here", marker) is None
    with pytest.raises(ValueError):
        shipping.parse_envelope(line[:-5], marker)


async def test_non_ascii_output_survives_the_envelope() -> None:
    async with ReplaySandbox.local() as sandbox:
        session = await sandbox.open_session()
        result = await session.execute("print('😀 ü ß ' * 3)")
    assert result.ok, result
    assert result.stdout == "😀 ü ß 😀 ü ß 😀 ü ß \n"
