"""Tools named ``group.tool`` are reached as ``await group.tool(...)`` in a program, on the live
runtime and under replay alike (an MCP server's tools, say, grouped under the server's name)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from openptc.sandbox.base import Session, ToolSignature
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.managed import ReplaySandbox


class GroupedTools:
    def __init__(self, names: Sequence[str]) -> None:
        self.names = names

    def signatures(self) -> Sequence[ToolSignature]:
        return [ToolSignature(name, ("value",)) for name in self.names]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        return f"{name}:{arguments['value']}"


TOOLS = GroupedTools(["clock.now", "clock.zone", "repo.log", "plain"])


@pytest.fixture(params=["live", "replay"])
async def session(request: pytest.FixtureRequest) -> AsyncIterator[Session]:
    if request.param == "live":
        async with LocalSandbox(pool_size=1) as live:
            yield await live.open_session()
    else:
        async with ReplaySandbox.local(pool_size=1) as replay:
            yield await replay.open_session()


async def test_grouped_tools_are_called_through_their_group(session: Session) -> None:
    code = """
print(await clock.now("a"))
print(await asyncio.gather(clock.zone(value="b"), repo.log({"value": "c"}), plain("d")))
"""
    result = await session.execute(code, TOOLS)
    assert result.error is None, result
    assert result.stdout == "clock.now:a\n['clock.zone:b', 'repo.log:c', 'plain:d']\n"
    assert [c.tool for c in result.tool_calls] == ["clock.now", "clock.zone", "repo.log", "plain"]


async def test_a_missing_tool_of_a_group_names_the_ones_it_has(session: Session) -> None:
    result = await session.execute("await clock.later('x')", TOOLS)
    assert result.error is not None
    assert "clock has no tool 'later'; its tools are: now, zone" in result.error.message


async def test_a_group_not_allowed_in_the_next_run_is_gone(session: Session) -> None:
    await session.execute("print(1)", TOOLS)
    result = await session.execute("print(repo)", GroupedTools(["clock.now"]))
    assert result.error is not None and result.error.type == "NameError"
