"""openptc's MCP client (``McpToolbox``) as the conformance suite's client under test.

``@modelcontextprotocol/conformance client --command "python tests/mcp_conformance_client.py"``
starts a test server for one scenario, then runs this script with the server's URL as the last
argument and the scenario's name in ``MCP_CONFORMANCE_SCENARIO``. The script does what an agent
would do with the toolbox: start it (the handshake and ``tools/list``), call the server's tools
as a program would, and close it. It exits 0 when every call returned, 1 otherwise (the suite
judges the protocol exchange; the exit status only shows in its logs).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from openptc.mcp import McpToolbox
from openptc.sandbox.base import ToolCallError

SERVER = "conformance"

# Arguments for the tools the suite's test servers offer; any other tool is called with the
# smallest arguments its schema allows (see ``sample_arguments``).
ARGUMENTS: dict[str, dict[str, Any]] = {
    "add_numbers": {"a": 5, "b": 3},
}


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Values for the required properties of an input schema: 1, "test", true, [] or {}."""
    samples = {"integer": 1, "number": 1, "string": "test", "boolean": True, "array": []}
    properties = schema.get("properties", {})
    return {
        name: samples.get(str(properties.get(name, {}).get("type")), {})
        for name in schema.get("required", [])
    }


async def run(url: str, scenario: str) -> int:
    failures = 0
    config = {"mcpServers": {SERVER: {"url": url}}}
    async with McpToolbox.from_config(config, call_timeout=20.0) as toolbox:
        tools = toolbox.tools_of(SERVER)
        print(f"{scenario}: {len(tools)} tools: {', '.join(t.name for t in tools)}")
        for tool in tools:
            _, mcp_name = toolbox.origin(tool.name)
            arguments = ARGUMENTS.get(mcp_name, sample_arguments(tool.input_schema))
            try:
                value = await toolbox.call(tool.name, arguments)
            except ToolCallError as e:
                failures += 1
                print(f"{tool.name}({arguments}) failed: {e}", file=sys.stderr)
            else:
                print(f"{tool.name}({arguments}) -> {value!r}")
    return 1 if failures else 0


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: mcp_conformance_client.py SERVER_URL (MCP_CONFORMANCE_SCENARIO set)")
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    sys.exit(asyncio.run(run(sys.argv[-1], scenario)))


if __name__ == "__main__":
    main()
