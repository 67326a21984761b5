"""Helpers for driving ``ptc mcp`` from real MCP clients: the command that starts it, an HTTP
server on a free local port, and a sandbox that remembers the sessions it opened."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from mcp.client.stdio import StdioServerParameters
from mcp.server import Server

from openptc.mcp.transports import MCP_PATH, http_app
from openptc.sandbox.base import Isolation, Session
from openptc.sandbox.local import LocalSandbox

TESTS = Path(__file__).resolve().parent.parent
PTC = str(Path(sys.executable).with_name("ptc"))
TOOLS = "fakes.code_mode_toolbox:make_toolbox"


def ptc_env() -> dict[str, str]:
    """The environment of a ``ptc mcp`` child: ours, with the tests' fakes importable."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def ptc_mcp(*args: str) -> StdioServerParameters:
    """``ptc mcp --tools <the fake shop> ...`` as an MCP client spawns a stdio server."""
    return StdioServerParameters(command=PTC, args=["mcp", "--tools", TOOLS, *args], env=ptc_env())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def serve_http(server: Server[Any]) -> AsyncIterator[str]:
    """``server`` over streamable HTTP on 127.0.0.1, in this event loop; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        http_app(server), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    try:
        while not running.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}{MCP_PATH}"
    finally:
        running.should_exit = True
        await asyncio.wait_for(task, 30)


class SpySandbox:
    """A local sandbox that keeps every session it opened, to check who closed what."""

    def __init__(self) -> None:
        self.inner = LocalSandbox(pool_size=0)
        self.sessions: list[Session] = []
        self.closed = False

    @property
    def isolation(self) -> Isolation:
        return self.inner.isolation

    async def start(self) -> None:
        await self.inner.start()

    async def open_session(self) -> Session:
        session = await self.inner.open_session()
        self.sessions.append(session)
        return session

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


async def eventually(condition: Any, timeout_s: float = 10.0) -> None:
    """Wait until ``condition()`` is true (a connection's teardown runs after the client left)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not true after {timeout_s} s")
        await asyncio.sleep(0.02)
