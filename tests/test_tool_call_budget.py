"""A budget of tool calls per run, a cap on calls in flight, and a fair share for other sessions.

A program can issue calls without bound; the host runs at most ``Limits.calls_in_flight`` at
once (the rest wait their turn) and refuses calls past ``Limits.tool_calls`` with an error the
program can read — enforced on the host, whatever the runtime inside is told.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from openptc.sandbox.base import Limits, ToolSignature
from openptc.sandbox.local import LocalSandbox


class CountingTools:
    """A cheap tool that records how many of its calls ran at once."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.running = 0
        self.most_at_once = 0
        self.calls = 0

    def signatures(self) -> Sequence[ToolSignature]:
        return [ToolSignature("ping", ("n",))]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
            return arguments["n"]
        finally:
            self.running -= 1


LIMITS = Limits(timeout_s=60, tool_calls=2_000, calls_in_flight=16)


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(LIMITS, pool_size=2) as sandbox:
        yield sandbox


async def test_calls_past_the_budget_fail_in_the_program_with_a_clear_error(
    sandbox: LocalSandbox,
) -> None:
    tools = CountingTools()
    session = await sandbox.open_session()
    code = """
results = await asyncio.gather(*[ping(i) for i in range(100_000)], return_exceptions=True)
ok = [r for r in results if not isinstance(r, Exception)]
errors = {str(r) for r in results if isinstance(r, Exception)}
print(len(ok), len(results) - len(ok))
print(sorted(errors))
"""
    result = await session.execute(code, tools)
    assert result.error is None, result
    counts, errors = result.stdout.splitlines()
    assert counts == "2000 98000"
    assert "budget of 2000 tool calls per run" in errors
    assert tools.calls == 2_000
    assert tools.most_at_once <= LIMITS.calls_in_flight
    # The budget is per run: the next one starts afresh.
    again = await session.execute("print(await ping(5))", tools)
    assert again.stdout == "5\n"


async def test_the_host_refuses_calls_past_the_budget_even_when_the_runtime_is_lied_to(
    sandbox: LocalSandbox,
) -> None:
    tools = CountingTools()
    session = await sandbox.open_session()
    code = """
import gc
runtime = next(o for o in gc.get_objects() if type(o).__name__ == "Runtime")
runtime.call_budget = 10**9  # the runtime's count is the program's to change
results = await asyncio.gather(*[ping(i) for i in range(3_000)], return_exceptions=True)
print(sum(isinstance(r, Exception) for r in results))
"""
    result = await session.execute(code, tools)
    assert result.stdout == "1000\n", result
    assert tools.calls == 2_000


async def test_a_gather_larger_than_the_cap_in_flight_still_completes_in_order(
    sandbox: LocalSandbox,
) -> None:
    tools = CountingTools()
    session = await sandbox.open_session()
    code = "r = await asyncio.gather(*[ping(i) for i in range(500)])\nprint(r == list(range(500)))"
    result = await session.execute(code, tools)
    assert result.stdout == "True\n"
    assert tools.most_at_once == LIMITS.calls_in_flight


async def test_another_session_is_served_while_one_floods_the_host(
    sandbox: LocalSandbox,
) -> None:
    release = asyncio.Event()
    flood_tools, calm_tools = CountingTools(release), CountingTools()
    flooding, calm = await sandbox.open_session(), await sandbox.open_session()
    flood = asyncio.create_task(
        flooding.execute(
            "await asyncio.gather(*[ping(i) for i in range(2_000)], return_exceptions=True)",
            flood_tools,
        )
    )
    while flood_tools.running < LIMITS.calls_in_flight:
        await asyncio.sleep(0.001)
    # The flood holds its share of the host, with the rest of its calls queued: the calm
    # session is served all the same.
    for i in range(5):
        result = await calm.execute(f"print(await ping({i}))", calm_tools)
        assert result.stdout == f"{i}\n"
    assert not flood.done()
    assert flood_tools.running == LIMITS.calls_in_flight
    release.set()
    assert (await flood).error is None
    assert flood_tools.calls == 2_000
    assert flood_tools.most_at_once == LIMITS.calls_in_flight
