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


def test_a_grouped_tool_is_offered_to_models_without_a_dot_and_called_back_by_that_name() -> None:
    import asyncio

    from openptc import Tool, Toolbox

    async def now(arguments: dict[str, Any]) -> Any:
        return f"now in {arguments['zone']}"

    schema = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
    toolbox = Toolbox([Tool.from_schema("clock.now", "The time.", schema, now)])
    assert [s["name"] for s in toolbox.specs()] == ["clock__now"]
    assert asyncio.run(toolbox.call("clock__now", {"zone": "UTC"})) == "now in UTC"
    assert asyncio.run(toolbox.call("clock.now", {"zone": "UTC"})) == "now in UTC"


def test_the_sandbox_server_accepts_grouped_tool_names_and_refuses_deeper_ones() -> None:
    from openptc.server.client_messages import BadMessage, parse_execute

    def execute(name: str) -> Any:
        return parse_execute(
            {"type": "execute", "id": 1, "code": "pass", "tools": [{"name": name, "params": []}]}
        )

    assert execute("clock.now").tools[0].name == "clock.now"
    for bad in ("a.b.c", "clock.", "class.now"):
        with pytest.raises(BadMessage):
            execute(bad)


async def test_an_agent_in_direct_mode_calls_a_grouped_tool_by_its_wire_name() -> None:
    from openptc import Agent, ScriptedModel, Tool, Toolbox
    from openptc.models import ToolUseBlock

    async def now(arguments: dict[str, Any]) -> Any:
        return f"noon in {arguments['zone']}"

    schema = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
    toolbox = Toolbox([Tool.from_schema("clock.now", "The time.", schema, now)])
    model = ScriptedModel.from_turns(
        [[ToolUseBlock(id="t1", name="clock__now", input={"zone": "UTC"})], "done"], about="test"
    )
    result = await Agent(model, toolbox, mode="direct").run("what time is it?")
    assert result.answer == "done" and result.usage.tool_calls == 1
    assert any("noon in UTC" in str(m) for m in result.transcript)


async def test_an_agent_offers_the_tools_of_a_toolbox_whose_list_changed() -> None:
    from openptc import Agent, ScriptedModel, Tool, Toolbox

    async def call(arguments: dict[str, Any]) -> Any:
        return None

    schema = {"type": "object", "properties": {}}
    toolbox = Toolbox([Tool.from_schema("a.first", "First.", schema, call)])
    agent = Agent(ScriptedModel.from_turns(["ok"], about="test"), toolbox)
    assert "first" in agent.tool_specs[0].description
    toolbox._tools["a.second"] = Tool.from_schema("a.second", "Second.", schema, call)
    toolbox.version += 1  # what an MCP toolbox does when a server's list changed
    await agent.run("hi")
    assert "second" in agent.tool_specs[0].description
