"""Real third-party MCP servers as a tool source: listing, calling, result shapes, one program.

The servers are the published ones (``mcp-server-time`` and ``mcp-server-git`` from PyPI,
``@modelcontextprotocol/server-everything``, ``-filesystem`` and ``-memory`` from npm), installed
by ``scripts/mcp-servers.sh``; a server that cannot be installed here skips its tests with the
reason. One toolbox with all five serves the whole module, as an application would hold it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from mcp_real_servers import COMMITS, Workspace, command, make_workspace
from openptc.agent import Agent
from openptc.mcp import McpToolbox
from openptc.models import ScriptedModel
from openptc.models.base import ToolUseBlock
from openptc.sandbox.base import Limits, ToolCallError
from openptc.sandbox.local import LocalSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVERS = ("time", "git", "filesystem", "memory", "everything")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("mcp-work"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tools(workspace: Workspace) -> AsyncIterator[McpToolbox]:
    for name in SERVERS:
        command(name)  # skip the module, with the reason, if a server cannot be had
    started = time.perf_counter()
    async with McpToolbox.from_config(workspace.config(*SERVERS), call_timeout=30) as box:
        logging.getLogger(__name__).info("5 servers up in %.2fs", time.perf_counter() - started)
        yield box


async def test_every_server_lists_its_tools_in_its_own_group(tools: McpToolbox) -> None:
    expected = {
        "time_tools": {"get_current_time", "convert_time"},
        "git_tools": {"git_log", "git_status", "git_show"},
        "filesystem_tools": {"read_text_file", "list_directory", "write_file"},
        "memory_tools": {"create_entities", "add_observations", "read_graph", "search_nodes"},
        "everything_tools": {"echo", "get_sum", "get_structured_content"},
    }
    for group, names in expected.items():
        listed = {n.split(".", 1)[1] for n in tools.names if n.startswith(group + ".")}
        assert names <= listed, f"{group}: {sorted(listed)}"
    # MCP names that are not identifiers become identifiers; the origin keeps the real name
    assert tools.origin("everything_tools.get_sum") == ("everything", "get-sum")
    assert tools.origin("everything_tools.trigger_long_running_operation") == (
        "everything",
        "trigger-long-running-operation",
    )
    stubs = tools.render_stubs()
    for group in expected:
        assert f"class {group}:" in stubs
    assert "async def convert_time(" in stubs
    assert not tools.failures


async def test_time_conversion_returns_the_servers_structured_result(tools: McpToolbox) -> None:
    result = await tools.call(
        "time_tools.convert_time",
        {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
    )
    assert result["source"]["timezone"] == "UTC"
    assert result["target"]["timezone"] == "Asia/Tokyo"
    assert result["target"]["datetime"].endswith("T21:00:00+09:00")
    assert result["time_difference"] == "+9.0h"
    # the stub tells the program that shape (the server declares an outputSchema)
    assert "time_difference: str" in tools.render_stubs()


async def test_git_log_of_a_repository_made_by_the_test(
    tools: McpToolbox, workspace: Workspace
) -> None:
    log = await tools.call("git_tools.git_log", {"repo_path": str(workspace.repo)})
    assert isinstance(log, str)  # no outputSchema, and the text is not JSON: the text itself
    positions = [log.index(message) for message in reversed(COMMITS)]
    assert positions == sorted(positions), "newest commit first"
    assert log.count("Author: Ada") == 3
    one = await tools.call("git_tools.git_log", {"repo_path": str(workspace.repo), "max_count": 1})
    assert COMMITS[-1] in one and COMMITS[0] not in one


async def test_filesystem_reads_the_files_of_a_temporary_folder(
    tools: McpToolbox, workspace: Workspace
) -> None:
    north = await tools.call(
        "filesystem_tools.read_text_file", {"path": str(workspace.files / "north.txt")}
    )
    assert north == {"content": "widgets: 12\n"}
    listing = await tools.call("filesystem_tools.list_directory", {"path": str(workspace.files)})
    for name in ("north.txt", "south.txt", "notes.md"):
        assert f"[FILE] {name}" in listing["content"]
    with pytest.raises(ToolCallError) as outside:
        await tools.call("filesystem_tools.read_text_file", {"path": "/etc/hostname"})
    assert outside.value.kind == "ToolError"
    assert "filesystem_tools.read_text_file" in str(outside.value)
    assert "denied" in str(outside.value).lower()  # the server's own words


async def test_memory_graph_keeps_what_was_written(tools: McpToolbox, workspace: Workspace) -> None:
    created = await tools.call(
        "memory_tools.create_entities",
        {"entities": [{"name": "Ada", "entityType": "person", "observations": ["writes code"]}]},
    )
    assert created["entities"][0]["name"] == "Ada"
    await tools.call(
        "memory_tools.add_observations",
        {"observations": [{"entityName": "Ada", "contents": ["likes widgets"]}]},
    )
    found = await tools.call("memory_tools.open_nodes", {"names": ["Ada"]})
    assert found["entities"] == [
        {"name": "Ada", "entityType": "person", "observations": ["writes code", "likes widgets"]}
    ]
    assert workspace.memory_file.exists()  # the server kept it where the test told it to


async def test_structured_output_of_the_everything_server(tools: McpToolbox) -> None:
    weather = await tools.call("everything_tools.get_structured_content", {"location": "Chicago"})
    assert weather == {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}
    stub = tools["everything_tools.get_structured_content"].render_stub()
    assert "temperature: float" in stub and "humidity: float" in stub
    assert 'Literal["New York", "Chicago", "Los Angeles"]' in stub


async def test_text_results_are_parsed_when_they_are_json(tools: McpToolbox) -> None:
    env = await tools.call("everything_tools.get_env", {})
    assert isinstance(env, dict) and "PATH" in env  # JSON text, no structured content
    total = await tools.call("everything_tools.get_sum", {"a": 2, "b": 3})
    assert isinstance(total, str) and "5" in total  # plain text stays text
    image = await tools.call("everything_tools.get_tiny_image", {})
    assert isinstance(image, list)  # several content blocks: a list, images as dicts
    kinds = [item["type"] if isinstance(item, dict) else "text" for item in image]
    assert "image" in kinds and "text" in kinds
    picture = next(i for i in image if isinstance(i, dict))
    assert picture["mimeType"] == "image/png" and len(picture["data"]) > 100


async def test_an_error_result_raises_tool_error_with_the_servers_text(tools: McpToolbox) -> None:
    with pytest.raises(ToolCallError) as failed:
        await tools.call("everything_tools.gzip_file_as_resource", {"name": "x", "data": "ftp://x"})
    assert failed.value.kind == "ToolError"
    assert "Unsupported URL protocol for ftp://x" in str(failed.value)
    # arguments are checked on the host against the server's schema before anything is sent
    with pytest.raises(ToolCallError) as wrong:
        await tools.call("everything_tools.get_sum", {"a": "two", "b": 3})
    assert wrong.value.kind == "ToolArgumentError"


async def test_progress_notifications_do_not_break_a_call(
    tools: McpToolbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="openptc.mcp.connection")
    result = await tools.call(
        "everything_tools.trigger_long_running_operation", {"duration": 1, "steps": 5}
    )
    assert result == "Long running operation completed. Duration: 1 seconds, Steps: 5."
    progress = [r.getMessage() for r in caplog.records if "progress" in r.getMessage()]
    assert [p.rsplit(" ", 1)[1] for p in progress] == ["1/5", "2/5", "3/5", "4/5", "5/5"]


async def test_a_large_response_arrives_whole(tools: McpToolbox) -> None:
    message = "0123456789abcdef" * 65_536  # 1 MiB
    echoed = await tools.call("everything_tools.echo", {"message": message})
    assert echoed == f"Echo: {message}"


PROGRAM = """
import json

log = await git_tools.git_log({"repo_path": REPO, "max_count": 10})
commits = [l.removeprefix("Message: ") for l in log.splitlines() if l.startswith("Message: ")]

files = await asyncio.gather(*[
    filesystem_tools.read_text_file(path=f"{FILES}/{name}") for name in ("north.txt", "south.txt")
])
widgets = sum(int(f["content"].split(":")[1]) for f in files)

when = await time_tools.convert_time(
    source_timezone="UTC", time="09:30", target_timezone="America/New_York"
)

await memory_tools.create_entities(entities=[
    {"name": "widget-count", "entityType": "fact", "observations": [f"total {widgets}"]},
    {"name": "last-commit", "entityType": "fact", "observations": [commits[0]]},
])
graph = json.loads(json.dumps(await memory_tools.search_nodes(query="fact")))
facts = {e["name"]: e["observations"][0] for e in graph["entities"]}
weather = await everything_tools.get_structured_content(location="Los Angeles")

print(f"{len(commits)} commits, newest: {facts['last-commit']}")
print(f"{facts['widget-count']} widgets")
print(f"09:30 UTC is {when['target']['datetime'][11:16]} in New York")
print(f"LA: {weather['temperature']} degrees")
"""


@pytest.fixture(scope="module")
def sandbox_limits() -> Limits:
    return Limits(timeout_s=30)


async def test_one_program_calls_tools_of_several_servers(
    tools: McpToolbox, workspace: Workspace, sandbox_limits: Limits
) -> None:
    program = f"REPO = {str(workspace.repo)!r}\nFILES = {str(workspace.files)!r}\n{PROGRAM}"
    async with LocalSandbox(sandbox_limits, pool_size=0) as sandbox:
        session = await sandbox.open_session()
        try:
            execution = await session.execute(program, tools)
        finally:
            await session.close()
    assert execution.error is None, execution.to_model_text()
    lines = execution.stdout.splitlines()
    assert lines[0] == f"3 commits, newest: {COMMITS[-1]}"
    assert lines[1] == "total 42 widgets"
    assert lines[2] in ("09:30 UTC is 05:30 in New York", "09:30 UTC is 04:30 in New York")
    assert lines[3] == "LA: 73 degrees"
    called = [c.tool for c in execution.tool_calls]
    assert called.count("filesystem_tools.read_text_file") == 2
    assert {"git_tools.git_log", "time_tools.convert_time", "memory_tools.search_nodes"} <= set(
        called
    )


# -- streamable HTTP ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def everything_over_http() -> Iterator[str]:
    """server-everything's streamable HTTP transport on a free local port; yields its URL."""
    port = _free_port()
    process = subprocess.Popen(
        [command("everything"), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if "listening on port" in line or not line:
                break
        if process.poll() is not None:
            pytest.skip("server-everything did not start its HTTP transport")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait()


async def test_a_server_over_streamable_http(everything_over_http: str, tmp_path: Path) -> None:
    config = {"mcpServers": {"demo": {"url": everything_over_http, "headers": {"X-Trace": "t1"}}}}
    async with McpToolbox.from_config(config) as http_tools:
        assert "demo_tools.get_structured_content" in http_tools
        weather = await http_tools.call(
            "demo_tools.get_structured_content", {"location": "New York"}
        )
        assert weather["temperature"] == 33
        done = await http_tools.call(
            "demo_tools.trigger_long_running_operation", {"duration": 0.5, "steps": 2}
        )
        assert done.startswith("Long running operation completed")


async def test_an_agent_takes_the_mcp_toolbox(tools: McpToolbox, workspace: Workspace) -> None:
    program = (
        f"log = await git_tools.git_log(repo_path={str(workspace.repo)!r})\n"
        "big = await everything_tools.echo(message='x' * 300_000)\n"
        "print(log.count('Commit: '), len(big))\n"
    )
    use = ToolUseBlock(id="t1", name="execute_code", input={"code": program})
    model = ScriptedModel.from_turns([[use], "done"])
    agent = Agent(model, tools)
    (code_tool,) = agent.tool_specs  # ptc mode: one code tool whose stubs show every group
    for group in ("time_tools", "git_tools", "filesystem_tools", "memory_tools"):
        assert f"class {group}:" in code_tool.description
    result = await agent.run("How many commits?")
    assert result.stop == "answered"
    (execution,) = result.executions
    assert execution.error is None, execution.to_model_text()
    assert execution.stdout.strip() == f"3 {300_000 + len('Echo: ')}"
