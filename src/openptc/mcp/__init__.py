"""MCP servers as tool sources: the tools of any ``mcpServers`` config, callable from programs.

::

    async with McpToolbox.from_file("mcp.json") as tools:      # servers start here, stop on exit
        result = await Agent(model="...", tools=tools).run("...")

A program calls a server's tools in that server's group: the server ``git`` gives ``git_tools``
(``await git_tools.git_log(repo_path=".")``; ``config.group_name`` has the rule). Results are the
server's structured content where it sends one, else its text (parsed when it is a JSON object or
array); error results raise ``ToolError`` with the server's text (``results``). Needs the ``mcp``
extra (``pip install 'openptc[mcp]'``), the official MCP Python SDK.
"""

from openptc.mcp.config import (
    HttpServer,
    McpConfigError,
    ServerConfig,
    StdioServer,
    group_name,
    load_config,
    parse_config,
)
from openptc.mcp.connection import McpCallTimeout, McpConnection, McpServerDied, McpServerError
from openptc.mcp.toolbox import McpToolbox

__all__ = [
    "HttpServer",
    "McpCallTimeout",
    "McpConfigError",
    "McpConnection",
    "McpServerDied",
    "McpServerError",
    "McpToolbox",
    "ServerConfig",
    "StdioServer",
    "group_name",
    "load_config",
    "parse_config",
]
