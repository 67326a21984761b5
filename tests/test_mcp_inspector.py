"""``ptc mcp`` driven by the MCP Inspector's CLI mode (``@modelcontextprotocol/inspector --cli``,
the TypeScript SDK's client), over stdio and over streamable HTTP, and ``ptc mcp --transport http``
as a process: listening on 127.0.0.1, serving the SDK's ``ClientSession``, stopping on SIGTERM.

The Inspector is installed from npm by ``scripts/mcp-inspector.sh`` into ``.mcp-tools/``; these
tests skip, saying why, only where neither Node nor npm can be had.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from fakes.code_mode_clients import (
    PTC,
    TESTS,
    TOOLS,
    free_port,
    ptc_env,
    wait_for_port,
)

SCRIPT = TESTS.parent / "scripts" / "mcp-inspector.sh"
SERVER = [PTC, "mcp", "--tools", TOOLS]
PROGRAM = "total = sum(await asyncio.gather(*(add(a=i, b=i) for i in range(10))))\nprint(total)"


@pytest.fixture(scope="session")
def inspector() -> str:
    found = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    line = (found.stdout.strip().splitlines() or ["missing: the install script printed nothing"])[
        -1
    ]
    if line.startswith("missing:"):
        pytest.skip(f"MCP Inspector unavailable: {line.removeprefix('missing:').strip()}")
    return line


async def _inspect(inspector: str, *args: str, status: int = 0) -> Any:
    """Run the Inspector's CLI once; its stdout is one JSON document. It exits 5 when the tool
    returned ``isError``."""
    process = await asyncio.create_subprocess_exec(
        inspector,
        "--cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ptc_env(),
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == status, (out.decode(), err.decode())
    return json.loads(out)


def _call_args(tool: str, *pairs: str) -> list[str]:
    return ["--method", "tools/call", "--tool-name", tool, "--tool-arg", *pairs]


async def test_the_inspector_lists_and_calls_the_tools_over_stdio(inspector: str) -> None:
    stdio = [*SERVER, "-e", f"PYTHONPATH={TESTS}"]
    listed = await _inspect(inspector, *stdio, "--method", "tools/list")
    assert [t["name"] for t in listed["tools"]] == [
        "run_code",
        "list_tools",
        "search_tools",
        "describe_tools",
    ]
    assert listed["tools"][0]["outputSchema"]["required"][:3] == ["ok", "stdout", "stderr"]

    ran = await _inspect(inspector, *stdio, *_call_args("run_code", f"code={PROGRAM}"))
    assert ran["isError"] is False
    assert ran["content"] == [{"type": "text", "text": "90"}]
    assert [c["tool"] for c in ran["structuredContent"]["tool_calls"]] == ["add"] * 10

    failed = await _inspect(
        inspector, *stdio, *_call_args("run_code", "code=await refund_order('o1', 'x')"), status=5
    )
    assert failed["isError"] is True
    assert failed["structuredContent"]["error"]["type"] == "ToolError"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``ptc mcp --transport http`` as a process on a free local port."""
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [*SERVER, "--transport", "http", "--port", str(port), "--log-level", "info"],
        env=ptc_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        asyncio.run(wait_for_port(port))
        yield f"http://127.0.0.1:{port}/mcp", process, tmp_path / "server.log"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        log.close()


async def test_ptc_mcp_over_http_serves_the_inspector_and_sessions_and_stops_on_sigterm(
    inspector: str, http_server: tuple[str, subprocess.Popen[bytes], Path]
) -> None:
    url, process, log = http_server
    listed = await _inspect(inspector, url, "--method", "tools/list")
    assert len(listed["tools"]) == 4
    ran = await _inspect(inspector, url, *_call_args("run_code", f"code={PROGRAM}"))
    assert ran["content"] == [{"type": "text", "text": "90"}]
    searched = await _inspect(inspector, url, *_call_args("search_tools", "query=refund"))
    assert searched["content"][0]["text"].startswith("refund_order(order_id, reason) — ")

    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        first = await session.call_tool("run_code", {"code": "n = await add(a=20, b=22)"})
        assert not first.is_error
        second = await session.call_tool("run_code", {"code": "print(n)"})
        assert second.structured_content is not None
        assert second.structured_content["stdout"] == "42\n"

    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then ends by the signal it caught, as a process should.
    assert await asyncio.to_thread(process.wait, 30) == -signal.SIGTERM
    assert "code mode: stopping, closing the sandbox" in log.read_text()
