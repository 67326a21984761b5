"""An upstream MCP server (stdio) for ``ptc mcp --config`` tests: a warehouse whose tools answer
with structured content, fail with ``isError``, and one of which kills the server mid-session.

Run as ``python code_mode_upstream.py``; it uses the project's own MCP SDK.
"""

from __future__ import annotations

import os
from typing import TypedDict

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("warehouse")


class Stock(TypedDict):
    sku: str
    count: int


STOCK = {"apple": 12, "pear": 0, "plum": 7}


@server.tool()
def stock(sku: str) -> Stock:
    """How many items of one SKU are in stock."""
    if sku not in STOCK:
        raise ToolError(f"unknown SKU {sku!r}")
    return Stock(sku=sku, count=STOCK[sku])


@server.tool()
def skus() -> list[str]:
    """Every SKU the warehouse knows."""
    return sorted(STOCK)


@server.tool()
def pid() -> int:
    """The process id of this server (tells a restarted server from the first one)."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """End this server's process at once, as a crash would."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
