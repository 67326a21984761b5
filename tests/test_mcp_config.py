"""The ``mcpServers`` format as MCP clients write it, the errors that name server and field, and
the group names under which each server's tools appear in programs."""

from __future__ import annotations

import builtins
import json
import keyword
import sys
from pathlib import Path

import pytest

from openptc.mcp import HttpServer, McpConfigError, StdioServer, group_name, load_config
from openptc.mcp.config import RESERVED_NAMES, parse_config, python_name


def test_claude_desktop_and_claude_code_entries(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "git": {"command": "uvx", "args": ["mcp-server-git"], "env": {"A": "1"}},
                    "docs": {
                        "type": "http",
                        "url": "https://example.com/mcp",
                        "headers": {"Authorization": "Bearer ${TOKEN}"},
                    },
                    "local": {"type": "stdio", "command": "srv", "cwd": "work"},
                    "off": {"command": "never", "disabled": True},
                }
            }
        )
    )
    git, docs, local = load_config(path, environ={"TOKEN": "s3cret"})
    assert git == StdioServer("git", "uvx", ("mcp-server-git",), {"A": "1"})
    assert docs == HttpServer("docs", "https://example.com/mcp", {"Authorization": "Bearer s3cret"})
    assert isinstance(local, StdioServer) and local.cwd == str(tmp_path / "work")
    assert [s.group for s in (git, docs, local)] == ["git_tools", "docs_tools", "local_tools"]


def test_the_inner_map_and_vs_code_servers_are_accepted_too() -> None:
    (inner,) = parse_config({"t": {"command": "x"}})
    (vscode,) = parse_config({"servers": {"t": {"url": "http://h/mcp"}}, "inputs": []})
    assert isinstance(inner, StdioServer) and isinstance(vscode, HttpServer)


def test_environment_variables_with_defaults() -> None:
    (server,) = parse_config(
        {"s": {"command": "${BIN:-srv}", "args": ["--port", "${PORT}"], "env": {"N": 3}}},
        environ={"PORT": "8080"},
    )
    assert isinstance(server, StdioServer)
    assert (server.command, server.args, dict(server.env)) == (
        "srv",
        ("--port", "8080"),
        {"N": "3"},
    )


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"args": ["x"]}, "server 'bad' needs 'command'"),
        ({"command": 3}, "server 'bad': 'command' must be a string, got int"),
        ({"command": "x", "args": "--flag"}, "server 'bad': 'args' must be a list"),
        ({"command": "x", "url": "http://h"}, "server 'bad' has both 'command' and 'url'"),
        ({"url": "ftp://h"}, "server 'bad': 'url' must start with http:// or https://"),
        ({"type": "sse", "url": "http://h/sse"}, "type 'sse' (the HTTP+SSE transport"),
        ({"type": "ws", "url": "http://h"}, "server 'bad': unknown type 'ws'"),
        ({"command": "x", "env": {"K": "${NOPE}"}}, "'env'['K'] uses ${NOPE}, which is not set"),
        ({"command": "x", "env": ["K=1"]}, "server 'bad': 'env' must be an object"),
        ("npx server", "server 'bad' must be an object"),
    ],
)
def test_every_config_problem_names_the_server_and_field(entry: object, problem: str) -> None:
    with pytest.raises(McpConfigError) as failed:
        parse_config({"mcpServers": {"bad": entry}}, environ={})
    assert problem in str(failed.value)


def test_unreadable_or_invalid_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(McpConfigError, match="cannot read the MCP config"):
        load_config(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{'mcpServers': }")
    with pytest.raises(McpConfigError, match=r"broken.json is not valid JSON"):
        load_config(broken)
    with pytest.raises(McpConfigError, match="'mcpServers' must be an object"):
        parse_config({"mcpServers": ["git"]})


def test_two_servers_that_would_share_a_group_are_refused() -> None:
    with pytest.raises(McpConfigError) as failed:
        parse_config({"brave-search": {"command": "a"}, "Brave Search": {"command": "b"}})
    message = str(failed.value)
    assert "'brave-search' and 'Brave Search' would both appear in programs as " in message
    assert "'brave_search_tools'; rename one of them" in message


@pytest.mark.parametrize(
    ("key", "group"),
    [
        ("time", "time_tools"),
        ("json", "json_tools"),
        ("asyncio", "asyncio_tools"),
        ("brave-search", "brave_search_tools"),
        ("braveSearch", "bravesearch_tools"),
        ("GitHub", "github_tools"),
        ("my.server v2", "my_server_v2_tools"),
        ("1password", "mcp_1password_tools"),
        ("class", "class_tools"),
        ("docs_tools", "docs_tools"),
        ("---", "server_tools"),
    ],
)
def test_group_names(key: str, group: str) -> None:
    assert group_name(key) == group


@pytest.mark.parametrize(
    "key",
    ["time", "json", "os", "asyncio", "exit", "quit", "print", "ToolError", "sys", "type", "main"],
)
def test_a_group_never_shadows_what_a_program_already_has(key: str) -> None:
    group = group_name(key)
    assert group.isidentifier() and not keyword.iskeyword(group)
    assert group not in sys.stdlib_module_names
    assert not hasattr(builtins, group)
    assert group not in RESERVED_NAMES


@pytest.mark.parametrize(
    ("name", "ident"),
    [
        ("get_sum", "get_sum"),
        ("getSum", "getSum"),  # valid identifiers are kept as the server spells them
        ("get-sum", "get_sum"),
        ("files.list", "files_list"),
        ("2fa", "_2fa"),
        ("import", "import_"),
        ("café", "caf_"),
    ],
)
def test_tool_names_become_identifiers(name: str, ident: str) -> None:
    assert python_name(name) == ident
