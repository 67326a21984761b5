"""An MCP server's life under a toolbox: lazy start, clear start errors, timeouts, death and
restart, tool lists that change, and nothing left running after close.

Real servers throughout (see ``mcp_real_servers``); the tool-list changes use a small server of
our own written with the official SDK, since no published server changes its tools on demand.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_real_servers import child_pids, command, make_workspace
from openptc.mcp import McpServerError, McpToolbox
from openptc.sandbox.base import ToolCallError


def _wait_until_gone(pids: list[int], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() and _alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_servers_start_when_the_toolbox_is_entered_and_stop_when_it_closes(
    tmp_path: Path,
) -> None:
    workspace = make_workspace(tmp_path)
    toolbox = McpToolbox.from_config(workspace.config("memory", "everything"))
    assert child_pids("mcp-server-memory") == []  # nothing runs until the toolbox is entered
    with pytest.raises(RuntimeError, match="async with McpToolbox"):
        list(toolbox)
    async with toolbox:
        running = child_pids("mcp-server-memory") + child_pids("mcp-server-everything")
        assert len(running) == 2
        assert len(toolbox) > 10
    assert _wait_until_gone(running), "closing the toolbox stops every server"
    with pytest.raises(RuntimeError, match="closed"):
        await toolbox.start()


async def test_a_killed_server_is_started_again_on_the_next_call(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path)
    async with McpToolbox.from_config(workspace.config("memory")) as tools:
        await tools.call(
            "memory_tools.create_entities",
            {"entities": [{"name": "kept", "entityType": "note", "observations": ["on disk"]}]},
        )
        (pid,) = child_pids("mcp-server-memory")
        os.kill(pid, signal.SIGKILL)
        # the toolbox notices by itself (its output ends) while the application goes on
        await _until(lambda: not tools.connection("memory").running)
        graph = await tools.call("memory_tools.read_graph", {})  # restarts the server
        assert [e["name"] for e in graph["entities"]] == ["kept"]  # it persisted its file
        assert tools.connection("memory").starts == 2
        (new_pid,) = child_pids("mcp-server-memory")
        assert new_pid != pid


async def test_a_server_that_dies_during_a_call_is_reported_then_restarted() -> None:
    config = {"mcpServers": {"everything": {"command": command("everything")}}}
    async with McpToolbox.from_config(config) as tools:
        call = asyncio.create_task(
            tools.call(
                "everything_tools.trigger_long_running_operation", {"duration": 5, "steps": 5}
            )
        )
        await asyncio.sleep(0.5)
        (pid,) = child_pids("mcp-server-everything")
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ToolCallError) as died:
            await call
        message = str(died.value)
        assert "everything_tools.trigger_long_running_operation" in message
        assert "MCP server 'everything' stopped while running trigger-long-running-operation" in (
            message
        )
        assert "started again on the next call" in message
        assert await tools.call("everything_tools.echo", {"message": "back"}) == "Echo: back"


async def test_a_call_past_its_timeout_fails_and_the_server_keeps_serving() -> None:
    config = {"mcpServers": {"everything": {"command": command("everything")}}}
    async with McpToolbox.from_config(config, call_timeout=1.2) as tools:
        started = time.monotonic()
        with pytest.raises(ToolCallError) as late:
            await tools.call(
                "everything_tools.trigger_long_running_operation", {"duration": 10, "steps": 20}
            )
        assert time.monotonic() - started < 5
        message = str(late.value)
        assert "did not answer trigger-long-running-operation within 1.2s" in message
        assert "may or may not have taken effect" in message
        assert "last progress reported: " in message  # progress arrived before the deadline
        assert await tools.call("everything_tools.echo", {"message": "still here"}) == (
            "Echo: still here"
        )
        assert tools.connection("everything").starts == 1


# -- start errors name the server ---------------------------------------------------------------


async def test_a_missing_command_is_named() -> None:
    config = {"mcpServers": {"ghost": {"command": "no-such-mcp-server-here", "args": ["--x"]}}}
    with pytest.raises(McpServerError) as failed:
        async with McpToolbox.from_config(config):
            pass
    assert "MCP server 'ghost': command 'no-such-mcp-server-here' not found on PATH" in str(
        failed.value
    )


async def test_a_server_that_exits_at_start_is_reported_with_its_stderr() -> None:
    script = "import sys; print('fatal: GITHUB_TOKEN is not set', file=sys.stderr); sys.exit(3)"
    config = {"mcpServers": {"broken": {"command": sys.executable, "args": ["-c", script]}}}
    started = time.monotonic()
    with pytest.raises(McpServerError) as failed:
        await McpToolbox.from_config(config).start()
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert message.startswith("MCP server 'broken' (")
    assert "could not be started: the server exited or closed the connection" in message
    assert "fatal: GITHUB_TOKEN is not set" in message  # its stderr says why


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_errors_are_named() -> None:
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
        while "listening on port" not in (process.stderr.readline() or "listening on port"):
            pass
        config = {
            "mcpServers": {
                "wrong-path": {"url": f"http://127.0.0.1:{port}/not-mcp"},
                "nobody-home": {"url": f"http://127.0.0.1:{_free_port()}/mcp"},
            }
        }
        with pytest.raises(McpServerError) as failed:
            await McpToolbox.from_config(config).start()
        message = str(failed.value)
        assert f"MCP server 'wrong-path' (http://127.0.0.1:{port}/not-mcp)" in message
        assert f"HTTP 404 Not Found from POST http://127.0.0.1:{port}/not-mcp" in message
        assert "MCP server 'nobody-home'" in message and "cannot connect" in message
        # a server that restarts forgets the session: the next call opens a new one
        async with McpToolbox.from_config(
            {"mcpServers": {"web": {"url": f"http://127.0.0.1:{port}/mcp"}}}
        ) as tools:
            assert await tools.call("web_tools.echo", {"message": "1"}) == "Echo: 1"
            process.kill()
            process.wait()
            process = subprocess.Popen(
                [command("everything"), "streamableHttp"],
                env={**os.environ, "PORT": str(port)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert process.stderr is not None
            while "listening on port" not in (process.stderr.readline() or "listening on port"):
                pass
            assert await tools.call("web_tools.echo", {"message": "2"}) == "Echo: 2"
            assert tools.connection("web").starts == 2
    finally:
        process.kill()
        process.wait()


async def test_skip_failed_leaves_a_broken_server_out() -> None:
    config = {
        "mcpServers": {
            "everything": {"command": command("everything")},
            "ghost": {"command": "no-such-mcp-server-here"},
        }
    }
    async with McpToolbox.from_config(config, skip_failed=True) as tools:
        assert "everything_tools.echo" in tools
        assert not any(name.startswith("ghost_tools.") for name in tools.names)
        assert "not found" in tools.failures["ghost"]


# -- tool lists that change ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["auto", "legacy"])
async def test_a_changed_tool_list_refreshes_the_tools_and_stubs(protocol: str) -> None:
    """``auto`` speaks 2026-07-28 with our SDK server (changes come on subscriptions/listen);
    ``legacy`` speaks 2025-11-25 (changes come as notifications/tools/list_changed)."""
    changes: list[int] = []
    config = {
        "mcpServers": {"changing": {"command": sys.executable, "args": [str(_changing_server())]}}
    }
    async with McpToolbox.from_config(config, protocol=protocol) as tools:
        expected = "2026-07-28" if protocol == "auto" else "2025-11-25"
        assert tools.connection("changing").protocol_version == expected
        tools.on_change(lambda box: changes.append(box.version))
        version = tools.version
        assert "changing_tools.hello" not in tools
        await tools.call("changing_tools.add_tool", {"name": "hello"})
        await _until(lambda: "changing_tools.hello" in tools)
        assert tools.version > version and changes
        assert "async def hello(" in tools.render_stubs()
        # The SDK's server wraps the tool's string as {"result": ...}; the program gets the string.
        assert await tools.call("changing_tools.hello", {}) == "hello"
        await tools.call("changing_tools.remove_tool", {"name": "hello"})
        await _until(lambda: "changing_tools.hello" not in tools)
        assert "async def hello(" not in tools.render_stubs()


def _changing_server() -> Path:
    return Path(__file__).parent / "mcp_test_servers" / "changing_tools.py"


async def _until(condition: object, within: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the tool list was not refreshed in time"
        await asyncio.sleep(0.02)
