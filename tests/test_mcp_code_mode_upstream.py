"""``ptc mcp --config mcp.json`` in front of real upstream MCP servers (stdio subprocesses of it):
their tools in programs, their failures as tool errors, an upstream server that dies mid-session
started again while the client's sandbox session — and its variables — carry on, and a server that
cannot start shown as unavailable instead of failing the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from fakes.code_mode_clients import PTC, ptc_env

UPSTREAM = Path(__file__).parent / "fakes" / "code_mode_upstream.py"


def _ptc_mcp(config: Path) -> StdioServerParameters:
    return StdioServerParameters(command=PTC, args=["mcp", "--config", str(config)], env=ptc_env())


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_programs_call_upstream_servers_and_outlive_an_upstream_crash(
    tmp_path: Path,
) -> None:
    config = tmp_path / "mcp.json"
    servers = {
        "warehouse": {"command": sys.executable, "args": [str(UPSTREAM)]},
        "ghost": {"command": str(tmp_path / "no-such-server")},
    }
    config.write_text(json.dumps({"mcpServers": servers}))
    params = StdioServerParameters(
        command=PTC, args=["mcp", "--config", str(config)], env=ptc_env()
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        async def run(code: str) -> types.CallToolResult:
            return await session.call_tool("run_code", {"code": code})

        listing = _text(await session.call_tool("list_tools", {})).splitlines()
        assert listing[0] == "warehouse_tools: 4 tools"
        assert (
            listing[1] == "  warehouse_tools.stock(sku) — How many items of one SKU are in stock."
        )
        assert listing[-1].startswith("ghost_tools: unavailable (")
        stubs = _text(await session.call_tool("describe_tools", {"names": ["warehouse"]}))
        assert "class warehouse_tools:" in stubs
        assert "async def stock(sku: str) -> Stock:" in stubs
        # A value the server's SDK wrapped as {"result": ...} is the value, in stub and program.
        assert "async def skus() -> list[str]:" in stubs

        counted = await run(
            "names = await warehouse_tools.skus()\n"
            "rows = await asyncio.gather(*(warehouse_tools.stock({'sku': n}) for n in names))\n"
            "counts = {r['sku']: r['count'] for r in rows}\n"
            "first = await warehouse_tools.pid()\n"
            "print(sorted(n for n, c in counts.items() if c))"
        )
        assert not counted.is_error, _text(counted)
        assert _text(counted) == "['apple', 'plum']"

        unknown = await run("await warehouse_tools.stock(sku='kiwi')")
        assert unknown.is_error
        assert "ToolError: warehouse_tools.stock: " in _text(unknown)
        assert "unknown SKU 'kiwi'" in _text(unknown)

        crashed = await run("await warehouse_tools.crash()")
        assert crashed.is_error
        assert "MCP server 'warehouse' stopped while running crash" in _text(crashed)
        assert crashed.structured_content is not None
        [call] = crashed.structured_content["tool_calls"]
        assert (call["tool"], call["outcome"]) == ("warehouse_tools.crash", "error")

        recovered = await run(
            "second = await warehouse_tools.pid()\n"
            "print(second != first, counts['apple'])"  # variables from before the crash
        )
        assert not recovered.is_error, _text(recovered)
        assert _text(recovered) == "True 12"


@pytest.fixture(scope="session")
def third_party_servers() -> dict[str, str]:
    """name -> command of the real MCP servers that scripts/mcp-servers.sh could install."""
    script = Path(__file__).parent.parent / "scripts" / "mcp-servers.sh"
    found = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    servers: dict[str, str] = {}
    for line in found.stdout.splitlines():
        name, _, command = line.partition("\t")
        servers[name] = command
    return servers


async def test_real_third_party_servers_behind_ptc_mcp_in_one_program(
    tmp_path: Path, third_party_servers: dict[str, str]
) -> None:
    """mcp-server-time (PyPI) and @modelcontextprotocol/server-memory (npm), called from one
    program through ``ptc mcp``; their results already parsed, the session's variables kept."""
    for name in ("time", "memory"):
        command = third_party_servers.get(name, "missing: scripts/mcp-servers.sh did not run")
        if command.startswith("missing:"):
            pytest.skip(f"MCP server {name} unavailable: {command.removeprefix('missing:')}")
    config = tmp_path / "mcp.json"
    servers = {
        "time": {"command": third_party_servers["time"], "args": ["--local-timezone", "UTC"]},
        "memory": {
            "command": third_party_servers["memory"],
            "env": {"MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")},
        },
    }
    config.write_text(json.dumps({"mcpServers": servers}))
    async with (
        stdio_client(_ptc_mcp(config)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        found = _text(await session.call_tool("search_tools", {"query": "convert timezone"}))
        assert found.splitlines()[0].startswith("time_tools.convert_time(")
        stubs = _text(
            await session.call_tool(
                "describe_tools", {"names": ["time_tools.convert_time", "memory_tools.read_graph"]}
            )
        )
        assert "-> TimeConversionResult:" in stubs
        assert "async def read_graph() -> ReadGraphResult:" in stubs

        first = await session.call_tool(
            "run_code",
            {
                "code": "import json\n"
                "meeting = await time_tools.convert_time({'source_timezone': 'Europe/Paris', "
                "'time': '09:30', 'target_timezone': 'Asia/Tokyo'})\n"
                "await memory_tools.create_entities(entities=[{'name': 'standup', "
                "'entityType': 'meeting', 'observations': [json.loads(meeting)['target']"
                "['datetime']]}])\n"
                "print(meeting['time_difference'])"
            },
        )
        assert not first.is_error, _text(first)
        assert _text(first) == "+8.0h"
        second = await session.call_tool(
            "run_code",
            {
                "code": "graph = await memory_tools.read_graph()\n"
                "[standup] = [e for e in graph['entities'] if e['name'] == 'standup']\n"
                "print(standup['observations'][0] == meeting['target']['datetime'])"
            },
        )
        assert _text(second) == "True"
