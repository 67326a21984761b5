"""The local sandbox end to end: real interpreters, real bubblewrap, real limits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from openptc.sandbox.base import Limits, SessionClosed, ToolCallError, ToolSignature
from openptc.sandbox.local import LocalSandbox, LocalSession


class RecordingTools:
    """A small ToolHost with the behaviours the tests need (delays, failures, odd results)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def signatures(self) -> Sequence[ToolSignature]:
        return [
            ToolSignature("echo", ("value",)),
            ToolSignature("delayed", ("value", "delay")),
            ToolSignature("fail", ("message",)),
            ToolSignature("crash", ()),
            ToolSignature("hang", ()),
            ToolSignature("not_json", ()),
            ToolSignature("pair", ("a", "b")),
        ]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append((name, arguments))
        if name == "echo":
            return arguments["value"]
        if name == "delayed":
            await asyncio.sleep(arguments["delay"])
            return arguments["value"]
        if name == "pair":
            return [arguments["a"], arguments["b"]]
        if name == "fail":
            raise ToolCallError(f"ValueError: {arguments['message']}")
        if name == "crash":
            raise RuntimeError("bug inside the tool")
        if name == "hang":
            await asyncio.sleep(3600)
        if name == "not_json":
            return {1, 2}
        raise ToolCallError(f"unknown tool {name!r}")


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(Limits(timeout_s=10), pool_size=1) as sb:
        yield sb


@pytest.fixture
async def session(sandbox: LocalSandbox) -> LocalSession:
    return await sandbox.open_session()


@pytest.fixture
def tools() -> RecordingTools:
    return RecordingTools()


def needs_bubblewrap(sandbox: LocalSandbox) -> None:
    if sandbox.isolation.level != "bubblewrap":
        pytest.skip(f"bubblewrap unavailable here: {sandbox.isolation.describe()}")


async def assert_healthy(sandbox: LocalSandbox, session: LocalSession) -> None:
    """After any failure: the same session runs again and a second session is unaffected."""
    again = await session.execute("print('alive')")
    assert again.stdout == "alive\n", again
    other = await sandbox.open_session()
    result = await other.execute("print(6 * 7)")
    assert result.stdout == "42\n"
    await other.close()


async def test_top_level_await_and_call_styles(
    session: LocalSession, tools: RecordingTools
) -> None:
    code = """
a = await pair("x", 1)
b = await pair(a="y", b=2)
c = await pair({"a": "z", "b": 3})
d = await echo({"k": "v"})
print(a, b, c, d)
"""
    result = await session.execute(code, tools)
    assert result.ok, result
    assert result.stdout == "['x', 1] ['y', 2] ['z', 3] {'k': 'v'}\n"
    assert [c.tool for c in result.tool_calls] == ["pair", "pair", "pair", "echo"]
    assert all(c.outcome == "ok" for c in result.tool_calls)


async def test_asyncio_run_main_style(session: LocalSession, tools: RecordingTools) -> None:
    code = """
import asyncio, json

async def main():
    value = await echo(value='{"n": 3}')
    print(json.loads(value)["n"])
    print(json.loads(await echo(value=[1, 2])))

if __name__ == "__main__":
    asyncio.run(main())
"""
    result = await session.execute(code, tools)
    assert result.ok, result
    assert result.stdout == "3\n[1, 2]\n"


class ReverseOrderTools:
    """Holds every call until all ``expected`` are in flight, then answers them last-first.

    Proves that calls really are concurrent (all in flight at once, no timing involved) and that
    ``asyncio.gather`` still returns results in call order when they arrive in reverse.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.in_flight = 0
        self.max_in_flight = 0
        self.answered: list[int] = []
        self.all_arrived = asyncio.Event()
        self.turns: dict[int, asyncio.Event] = {}

    def signatures(self) -> Sequence[ToolSignature]:
        return [ToolSignature("item", ("index",))]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        index = arguments["index"]
        self.turns[index] = asyncio.Event()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight == self.expected:
            self.all_arrived.set()
            self.turns[self.expected - 1].set()
        await self.all_arrived.wait()
        await self.turns[index].wait()
        self.answered.append(index)
        self.in_flight -= 1
        if index > 0:
            self.turns[index - 1].set()
        return index * 10


async def test_gather_of_100_all_in_flight_results_in_call_order(session: LocalSession) -> None:
    tools = ReverseOrderTools(100)
    code = """
results = await asyncio.gather(*[item(index=i) for i in range(100)])
print(results == [i * 10 for i in range(100)])
"""
    result = await session.execute(code, tools)
    assert result.stdout == "True\n", result
    assert tools.max_in_flight == 100
    assert tools.answered == list(range(99, -1, -1))
    assert [c.call_id for c in result.tool_calls] == list(range(1, 101))


@pytest.mark.parametrize(
    "ending",
    [
        "asyncio.run(main(), debug=False)",
        "from asyncio import run\nrun(main())",
        "asyncio.get_event_loop().run_until_complete(main())",
    ],
)
async def test_other_ways_of_running_main(
    session: LocalSession, tools: RecordingTools, ending: str
) -> None:
    code = f"import asyncio\nasync def main():\n    print(await echo(7))\n{ending}\n"
    result = await session.execute(code, tools)
    assert result.ok, result
    assert result.stdout == "7\n"
    assert result.stderr == ""


async def test_exit_ends_the_program_quietly(session: LocalSession) -> None:
    result = await session.execute("print('before')\nexit()\nprint('after')")
    assert result.ok, result
    assert result.stdout == "before\n"


async def test_tool_error_caught_by_the_program(
    session: LocalSession, tools: RecordingTools
) -> None:
    code = """
try:
    await fail("boom")
except ToolError as exc:
    print("caught:", exc)
"""
    result = await session.execute(code, tools)
    assert result.ok
    assert result.stdout == "caught: ValueError: boom\n"
    assert result.tool_calls[0].outcome == "error"


async def test_uncaught_tool_error_trims_the_traceback(
    session: LocalSession, tools: RecordingTools
) -> None:
    result = await session.execute("x = 1\nawait crash()\n", tools)
    assert result.error is not None
    assert result.error.type == "ToolError"
    assert result.error.line == 2
    assert "RuntimeError: bug inside the tool" in result.error.message
    assert 'File "<program>", line 2' in result.error.traceback
    assert "runtime" not in result.error.traceback  # only the program's own frames
    assert "/root" not in result.error.traceback and "/work" not in result.error.traceback


async def test_syntax_error_names_the_line(sandbox: LocalSandbox, session: LocalSession) -> None:
    result = await session.execute("x = 1\nif x ==\n    print(x)\n")
    assert result.error is not None
    assert result.error.kind == "syntax"
    assert result.error.line == 2
    assert "line 2" in result.error.message
    await assert_healthy(sandbox, session)


async def test_never_awaited_call_is_reported(
    sandbox: LocalSandbox, session: LocalSession, tools: RecordingTools
) -> None:
    result = await session.execute("echo(1)\nprint('done')\n", tools)
    assert result.ok
    assert tools.calls == []
    assert any("echo(...) on line 1" in n and "without `await`" in n for n in result.notices)
    assert "without `await`" in result.to_model_text()
    await assert_healthy(sandbox, session)


async def test_non_json_argument_names_tool_and_argument(
    sandbox: LocalSandbox, session: LocalSession, tools: RecordingTools
) -> None:
    result = await session.execute("import datetime\nawait echo(datetime.date.today())", tools)
    assert result.error is not None
    assert "echo(): argument 'value' is not JSON-serializable (got date)" in result.error.message
    assert tools.calls == []
    await assert_healthy(sandbox, session)


async def test_non_json_tool_result_becomes_an_error(
    session: LocalSession, tools: RecordingTools
) -> None:
    result = await session.execute("await not_json()", tools)
    assert result.error is not None
    assert "not JSON" in result.error.message


async def test_tools_not_allowed_do_not_exist(session: LocalSession) -> None:
    result = await session.execute("await echo(1)")
    assert result.error is not None
    assert result.error.type == "NameError"


async def test_timeout_reports_completed_calls_and_recovers(
    sandbox: LocalSandbox, session: LocalSession, tools: RecordingTools
) -> None:
    code = "await echo('side effect')\nawait hang()\n"
    result = await session.execute(code, tools, timeout_s=1)
    assert result.error is not None and result.error.kind == "timeout"
    assert [(c.tool, c.outcome) for c in result.tool_calls] == [
        ("echo", "ok"),
        ("hang", "cancelled"),
    ]
    assert "echo#1:ok" in result.to_model_text()
    await assert_healthy(sandbox, session)


async def test_infinite_loop_is_killed(sandbox: LocalSandbox, session: LocalSession) -> None:
    result = await session.execute("while True:\n    pass\n", timeout_s=1)
    assert result.error is not None and result.error.kind == "timeout"
    restarted = await session.execute("print('back')")
    assert restarted.stdout == "back\n"
    assert any("restarted" in n for n in restarted.notices)
    await assert_healthy(sandbox, session)


async def test_output_cap_marks_truncation(sandbox: LocalSandbox, session: LocalSession) -> None:
    result = await session.execute("print('x' * 100_000)", output_bytes=1000)
    assert result.ok
    assert result.stdout_truncated
    assert result.stdout.startswith("x" * 1000)
    assert "[output truncated: " in result.stdout
    assert len(result.stdout) < 1200
    await assert_healthy(sandbox, session)


async def test_memory_limit_is_reported(sandbox: LocalSandbox, session: LocalSession) -> None:
    result = await session.execute("blob = bytearray(2 * 1024 ** 3)\n")
    assert result.error is not None
    assert result.error.kind == "memory"
    assert "memory limit" in result.error.message
    await assert_healthy(sandbox, session)


async def test_fork_bomb_is_contained(sandbox: LocalSandbox, session: LocalSession) -> None:
    if not sandbox.isolation.dedicated_uid:
        pytest.skip("the process limit needs a dedicated uid (run as root with bubblewrap)")
    code = """
import os
children = 0
while True:
    if os.fork() == 0:
        import time
        time.sleep(30)
        os._exit(0)
    children += 1
"""
    result = await session.execute(code)
    assert result.error is not None
    assert result.error.type == "BlockingIOError"
    assert "Resource temporarily unavailable" in result.error.message
    await assert_healthy(sandbox, session)


async def test_crash_mid_call_is_reported(
    sandbox: LocalSandbox, session: LocalSession, tools: RecordingTools
) -> None:
    code = "import os, signal\nawait echo(1)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    result = await session.execute(code, tools)
    assert result.error is not None and result.error.kind == "crashed"
    assert "killed by SIGKILL" in result.error.message
    assert [c.outcome for c in result.tool_calls] == ["ok"]
    await assert_healthy(sandbox, session)


async def test_garbage_on_the_bridge_stops_only_that_sandbox(
    sandbox: LocalSandbox, session: LocalSession
) -> None:
    code = """
import os
for fd in range(3, 64):  # a hostile program scribbles on every descriptor it can find
    try:
        os.write(fd, b"this is not json\\n")
    except OSError:
        pass
await asyncio.sleep(5)
"""
    result = await session.execute(code)
    assert result.error is not None
    assert result.error.kind in ("crashed", "bridge")
    assert "bridge" in result.error.message
    await assert_healthy(sandbox, session)


async def test_state_persists_and_dies_with_close(sandbox: LocalSandbox) -> None:
    session = await sandbox.open_session()
    await session.execute("import math\ncounter = 41\nopen('note.txt', 'w').write('kept')")
    result = await session.execute(
        "counter += 1\nprint(counter, math.pi > 3, open('note.txt').read())"
    )
    assert result.stdout == "42 True kept\n"
    await session.close()
    assert session.closed
    with pytest.raises(SessionClosed):
        await session.execute("print(counter)")
    fresh = await sandbox.open_session()
    result = await fresh.execute("print('counter' in globals())")
    assert result.stdout == "False\n"


async def test_idle_sessions_expire() -> None:
    async with LocalSandbox(pool_size=0, idle_timeout_s=0.2) as sandbox:
        session = await sandbox.open_session()
        await session.execute("x = 1")
        for _ in range(50):
            if session.closed:
                break
            await asyncio.sleep(0.1)
        assert session.closed


async def test_sessions_run_in_parallel(sandbox: LocalSandbox, tools: RecordingTools) -> None:
    sessions = [await sandbox.open_session() for _ in range(3)]
    results = await asyncio.gather(
        *(s.execute(f"print(await delayed({i}, 0.2))", tools) for i, s in enumerate(sessions))
    )
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n"]


async def test_no_network(sandbox: LocalSandbox, session: LocalSession) -> None:
    needs_bubblewrap(sandbox)
    code = """
import socket
for target in [("1.1.1.1", 80), ("127.0.0.1", 22)]:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(target)
        print("connected", target)
    except OSError as exc:
        print("refused", type(exc).__name__)
try:
    socket.getaddrinfo("pypi.org", 443)
    print("dns works")
except OSError as exc:
    print("dns fails")
print(sorted(name for _, name in socket.if_nameindex()))
"""
    result = await session.execute(code)
    assert result.ok, result
    assert "connected" not in result.stdout
    assert "dns fails" in result.stdout
    assert "['lo']" in result.stdout


async def test_file_system_is_read_only_outside_workdir(
    sandbox: LocalSandbox, session: LocalSession
) -> None:
    needs_bubblewrap(sandbox)
    code = """
import os
for path in ["/etc/passwd-x", "/usr/evil", "/x", "/workspace/ok", "/tmp/ok"]:
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError as exc:
        print("denied", path)
print(os.path.exists("/root/.ssh"), os.path.exists("/etc/shadow"), os.getcwd())
"""
    result = await session.execute(code)
    assert result.ok, result
    for path in ["/etc/passwd-x", "/usr/evil", "/x"]:
        assert f"denied {path}" in result.stdout
    assert "wrote /workspace/ok" in result.stdout
    assert "wrote /tmp/ok" in result.stdout
    assert "False False /workspace" in result.stdout


async def test_host_environment_is_absent() -> None:
    os.environ["OPENPTC_TEST_SECRET"] = "hunter2"
    try:
        async with LocalSandbox(pool_size=0) as sandbox:
            session = await sandbox.open_session()
            result = await session.execute("import os\nprint(sorted(os.environ.items()))")
    finally:
        del os.environ["OPENPTC_TEST_SECRET"]
    assert result.ok, result
    assert "OPENPTC_TEST_SECRET" not in result.stdout
    assert "hunter2" not in result.stdout
    assert "('HOME', " in result.stdout


async def test_every_result_reports_isolation(session: LocalSession) -> None:
    result = await session.execute("pass")
    assert result.isolation.level in ("bubblewrap", "process")
    assert result.isolation.describe()


async def test_stderr_is_capped_too(session: LocalSession) -> None:
    result = await session.execute("import sys\nsys.stderr.write('e' * 50_000)", output_bytes=500)
    assert result.ok
    assert result.stderr.startswith("e" * 500)
    assert "[output truncated: " in result.stderr


async def test_a_tool_removed_between_executions_is_gone(
    session: LocalSession, tools: RecordingTools
) -> None:
    first = await session.execute("print(await echo(1))", tools)
    assert first.stdout == "1\n"
    second = await session.execute("await echo(1)")
    assert second.error is not None and second.error.type == "NameError"


class HostileTools(RecordingTools):
    """Tools that raise what a well-behaved tool never should."""

    def signatures(self) -> Sequence[ToolSignature]:
        return [ToolSignature("exits", ()), ToolSignature("cancels", ())]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if name == "exits":
            raise SystemExit(2)
        raise asyncio.CancelledError()


async def test_tools_raising_base_exceptions_do_not_stop_the_host(
    sandbox: LocalSandbox, session: LocalSession
) -> None:
    code = """
for tool in (exits, cancels):
    try:
        await tool()
    except ToolError as exc:
        print(type(exc).__name__, exc)
"""
    result = await session.execute(code, HostileTools(), timeout_s=5)
    assert result.ok, result
    assert (
        result.stdout
        == "ToolError SystemExit: 2\nToolError CancelledError: the tool was cancelled\n"
    )
    await assert_healthy(sandbox, session)


async def test_forked_child_never_speaks_for_the_program(
    sandbox: LocalSandbox, session: LocalSession
) -> None:
    code = "import os\npid = os.fork()\nprint('child' if pid == 0 else 'parent')\n"
    result = await session.execute(code)
    assert result.ok, result
    assert result.stdout == "parent\n"
    later = await session.execute("print('next')")
    assert later.stdout == "next\n" and later.stderr == ""
    await assert_healthy(sandbox, session)


async def test_unawaited_task_is_cancelled_cleanly(
    session: LocalSession, tools: RecordingTools
) -> None:
    result = await session.execute("asyncio.create_task(delayed(1, 5))\nprint('end')", tools)
    assert result.stdout == "end\n"
    assert any("cancelled" in n for n in result.notices)
    assert not any("without `await`" in n for n in result.notices)
    later = await session.execute("print('next')")
    assert later.stderr == "" and later.stdout == "next\n"


async def test_deep_recursion_traceback_is_short(session: LocalSession) -> None:
    code = "import sys\nsys.setrecursionlimit(100_000)\ndef f(n):\n    return f(n + 1)\nf(0)\n"
    result = await session.execute(code)
    assert result.error is not None and result.error.type == "RecursionError"
    assert result.error.traceback.count("\n") < 60
    assert "Previous line repeated" in result.error.traceback


async def test_error_text_stays_bounded_with_many_calls(
    session: LocalSession, tools: RecordingTools
) -> None:
    code = "await asyncio.gather(*[echo(i) for i in range(500)])\nraise ValueError('late')"
    result = await session.execute(code, tools)
    assert result.error is not None and len(result.tool_calls) == 500
    text = result.to_model_text()
    assert "echo: 500 ok" in text
    assert len(text) < 1000


async def test_cpu_budget_stops_the_interpreter() -> None:
    async with LocalSandbox(Limits(cpu_s=1, timeout_s=20), pool_size=0) as sandbox:
        session = await sandbox.open_session()
        await session.execute("x = 42")
        result = await session.execute("while True:\n    pass\n")
        assert result.error is not None and result.error.kind == "cpu", result
        assert "CPU time budget" in result.error.message
        after = await session.execute("print('x' in globals())")
        assert after.stdout == "False\n"
        assert any("restarted" in n for n in after.notices)


async def test_a_polling_program_still_gets_its_calls_answered(
    session: LocalSession, tools: RecordingTools
) -> None:
    code = """
task = asyncio.create_task(echo(5))
spins = 0
while not task.done():
    spins += 1
    await asyncio.sleep(0)
print(task.result(), spins > 0)
"""
    result = await session.execute(code, tools, timeout_s=5)
    assert result.ok, result
    assert result.stdout == "5 True\n"


async def test_process_isolation_works_and_says_what_it_lacks(tools: RecordingTools) -> None:
    async with LocalSandbox(pool_size=0, isolation="process") as sandbox:
        session = await sandbox.open_session()
        result = await session.execute("print(await echo('ok'))", tools)
    assert result.stdout == "ok\n"
    assert result.isolation.level == "process"
    assert "NO namespaces" in result.isolation.describe()
    assert any("network" in w for w in result.isolation.warnings)
