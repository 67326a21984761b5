"""Serving the code-mode server: over stdio (one client, the process that started us) or over
streamable HTTP (many clients, each with its own MCP session, on a local address).

Stdio is served in the handshake era only (``serve_loop``), where the one connection is the
client's session from ``initialize`` to end of input; a client probing ``server/discover`` first
is told there is no such method and falls back to the handshake on the same stream.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import uvicorn
from mcp.server import Server
from mcp.server.runner import serve_loop
from mcp.server.stdio import stdio_server
from starlette.applications import Starlette

__all__ = ["MCP_PATH", "http_app", "require_loopback", "serve_http", "serve_stdio"]

MCP_PATH = "/mcp"

log = logging.getLogger("openptc.mcp")


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client on this process's stdin and stdout until its input ends.

    While serving, fd 1 is the protocol's: stray output (``print``, children) goes to stderr.
    """
    async with stdio_server() as (read_stream, write_stream), server.lifespan(server) as state:
        await serve_loop(
            server,
            read_stream,
            write_stream,
            lifespan_state=state,
            init_options=server.create_initialization_options(),
        )


def require_loopback(host: str) -> None:
    """Refuse any address but this machine's own: the endpoint has no authentication, and
    whoever reaches it runs programs that call every tool with the operator's credentials."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"--host {host}: ptc mcp listens on a loopback address only (127.0.0.1, ::1, "
            "localhost), because its HTTP endpoint has no authentication; put an authenticating "
            "proxy in front of it to reach it from elsewhere"
        )


def http_app(server: Server[Any], *, host: str = "127.0.0.1", path: str = MCP_PATH) -> Starlette:
    """The streamable HTTP endpoint at ``path``; a local ``host`` turns on the SDK's protection
    against DNS rebinding (only local Host and Origin headers are accepted)."""
    return server.streamable_http_app(streamable_http_path=path, host=host)


async def serve_http(
    server: Server[Any], *, host: str = "127.0.0.1", port: int = 8765, log_level: str = "warning"
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until cancelled or signalled."""
    require_loopback(host)
    config = uvicorn.Config(
        http_app(server, host=host),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    await uvicorn.Server(config).serve()
