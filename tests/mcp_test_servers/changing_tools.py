"""A small MCP server (official SDK, stdio) for the behaviours no third-party server shows on
demand: a tool list that changes while connected.

``add_tool(name)`` registers a tool ``name`` that returns its own name, then announces the change
both ways: ``notifications/tools/list_changed`` for 2025-era connections and a ``subscriptions/
listen`` event for 2026-07-28 ones. ``remove_tool(name)`` takes one away the same way.
"""

from __future__ import annotations

import contextlib

from mcp.server.mcpserver import Context, MCPServer

app = MCPServer("changing-tools")


async def _announce(ctx: Context) -> None:
    await ctx.notify_tools_changed()  # subscriptions/listen (2026-07-28)
    with contextlib.suppress(Exception):  # notifications/tools/list_changed (2025-era)
        await ctx.request_context.session.send_tool_list_changed()


@app.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Add a tool called ``name`` that returns its own name."""

    def added() -> str:
        return name

    app.add_tool(added, name=name, description=f"Added at run time; returns {name!r}.")
    await _announce(ctx)
    return f"added {name}"


@app.tool()
async def remove_tool(name: str, ctx: Context) -> str:
    """Remove the tool called ``name``."""
    app.remove_tool(name)
    await _announce(ctx)
    return f"removed {name}"


if __name__ == "__main__":
    app.run("stdio")
