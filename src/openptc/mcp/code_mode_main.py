"""``ptc mcp`` from start to end: open the tools (the servers of an ``mcpServers`` file, or a
toolbox given in Python), build the code-mode server, serve it over stdio or streamable HTTP,
and close everything when the client (stdio) or a signal (HTTP) ends it.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Literal

from openptc.logs import configure
from openptc.mcp.code_mode import build_code_mode_server
from openptc.mcp.sandbox_choice import SandboxChoice
from openptc.mcp.transports import MCP_PATH, serve_http, serve_stdio
from openptc.tools import Toolbox

__all__ = ["Transport", "run_code_mode"]

Transport = Literal["stdio", "http"]


async def run_code_mode(
    *,
    config: Path | None,
    toolbox: Toolbox | None,
    choice: SandboxChoice,
    transport: Transport,
    host: str = "127.0.0.1",
    port: int = 8765,
    call_timeout_s: float | None = 60.0,
    log_level: str = "warning",
) -> None:
    """Serve until the end of input (stdio) or a signal (HTTP): the tools of the servers in
    ``config`` (an ``mcpServers`` file), or else ``toolbox``. A server that cannot start is left
    out with a warning (and shown as failed by ``list_tools``)."""
    configure(log_level, name="openptc.mcp")
    async with contextlib.AsyncExitStack() as stack:
        tools = toolbox if toolbox is not None else Toolbox([])
        if config is not None:
            from openptc.mcp.toolbox import McpToolbox

            upstream = McpToolbox.from_file(config, call_timeout=call_timeout_s, skip_failed=True)
            tools = await stack.enter_async_context(upstream)  # logs the servers left out
        server = build_code_mode_server(tools, choice.make)
        if transport == "stdio":
            await serve_stdio(server)
        else:
            print(
                f"openptc code mode on http://{host}:{port}{MCP_PATH} ({choice.describe()})",
                file=sys.stderr,
                flush=True,
            )
            await serve_http(server, host=host, port=port, log_level=log_level)
