"""The host trusts nothing the sandbox sends: a program can write on the bridge itself.

Each test has a program forge or garble bridge traffic (its descriptor number is in the
runtime's config, ``sys.argv[1]``) and checks that no execution is handed another's result,
that the host's caps hold whatever the report claims, and that the session goes on working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from openptc.sandbox.base import Limits, ToolSignature
from openptc.sandbox.local import LocalSandbox, LocalSession

WRITE = """
import json, os, sys
BRIDGE = json.loads(sys.argv[1])["out_fd"]
def forge(message):
    os.write(BRIDGE, (json.dumps(message) + "\\n").encode())
"""


def current_token() -> str:
    """Program text that finds the token of the execution in progress (as a hostile one can)."""
    return """
import gc
token = next(o["id"] for o in gc.get_objects()
             if isinstance(o, dict) and o.get("type") == "execute" and "code" in o
             and "token = next" in o["code"])
"""


class Echo:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def signatures(self) -> Sequence[ToolSignature]:
        return [ToolSignature("echo", ("value",))]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append(arguments)
        return arguments["value"]


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(Limits(timeout_s=10, output_bytes=1000), pool_size=1) as sandbox:
        yield sandbox


@pytest.fixture
async def session(sandbox: LocalSandbox) -> LocalSession:
    return await sandbox.open_session()


async def test_a_forged_done_with_a_guessed_id_is_dropped_and_the_real_result_kept(
    session: LocalSession, caplog: pytest.LogCaptureFixture
) -> None:
    forged = {"type": "done", "id": 1, "stdout": "x" * 2_000_000, "error": None}
    with caplog.at_level(logging.WARNING, "openptc.sandbox"):
        result = await session.execute(WRITE + f"forge({forged!r})\nprint('real')")
    assert result.stdout == "real\n" and result.error is None
    assert "dropped a 'done' message" in caplog.text
    after = await session.execute("print('second')")
    assert after.stdout == "second\n"


async def test_a_forged_done_with_the_real_token_is_capped_and_never_reaches_the_next_run(
    session: LocalSession,
) -> None:
    code = (
        WRITE
        + current_token()
        + """
forge({"type": "done", "id": token, "stdout": "x" * 20_000_000, "stdout_truncated": False,
       "error": None, "notices": ["n"] * 10_000})
print("the real output")
"""
    )
    result = await session.execute(code)
    assert len(result.stdout.encode()) < 1000 + 300  # the cap plus the host's marker
    assert result.stdout_truncated
    assert len(result.notices) <= 20
    # The program's real report arrives late: it must not become the next run's result.
    for expected in ("second", "third"):
        after = await session.execute(f"print({expected!r})")
        assert after.stdout == f"{expected}\n", after


async def test_a_report_of_the_wrong_shape_ends_the_run_as_a_bridge_error(
    session: LocalSession,
) -> None:
    code = WRITE + current_token() + 'forge({"type": "done", "id": token, "stdout": 42})\n'
    result = await session.execute(code)
    assert result.error is not None and result.error.kind == "bridge"
    after = await session.execute("print('fine')")
    assert after.stdout == "fine\n" and after.notices  # restarted, and it says so


async def test_a_tool_call_id_used_twice_is_forged_traffic(session: LocalSession) -> None:
    tools = Echo()
    code = (
        WRITE
        + current_token()
        + """
call = {"id": 10**6, "tool": "echo", "args": {"value": 1}}
forge({"type": "tool_calls", "execution": token, "calls": [call, call]})
await asyncio.sleep(5)
"""
    )
    result = await session.execute(code, tools)
    assert result.error is not None and result.error.kind == "bridge"
    assert "used twice" in result.error.message
    after = await session.execute("print(await echo(7))", tools)
    assert after.stdout == "7\n"


async def test_tool_calls_for_another_execution_never_run(session: LocalSession) -> None:
    tools = Echo()
    code = (
        WRITE
        + """
forge({"type": "tool_calls", "execution": "not-this-one",
       "calls": [{"id": 99, "tool": "echo", "args": {"value": "forged"}}]})
print(await echo("real"))
"""
    )
    result = await session.execute(code, tools)
    assert result.stdout == "real\n"
    assert tools.calls == [{"value": "real"}]


async def test_the_hosts_output_cap_holds_when_the_runtimes_is_lifted(
    session: LocalSession,
) -> None:
    code = """
import sys
sys.stdout.cap = 10**9  # the runtime's own writer is the program's to change
print("y" * 50_000)
"""
    result = await session.execute(code)
    assert len(result.stdout.encode()) < 1000 + 300
    assert result.stdout_truncated


async def test_other_sessions_are_untouched_by_a_forging_one(sandbox: LocalSandbox) -> None:
    hostile, calm = await sandbox.open_session(), await sandbox.open_session()
    code = WRITE + 'for _ in range(1000):\n    forge({"type": "done", "id": "x", "stdout": "z"})\n'
    results = await asyncio.gather(
        hostile.execute(code), calm.execute("print(sum(range(10)))", Echo())
    )
    assert results[1].stdout == "45\n"
    assert (await hostile.execute("print(1)")).stdout == "1\n"
