"""The MCP client side of ``ptc bench mcp``: the servers it measures, how an MCP client sees
their tools, and the scripted model's two ways through the expense audit.

Tokens of a tool definition are counted as a client puts it into the model's context: name,
description and input schema, the tool spec that every model API takes (the project's
tokenizer, ``models.tokens``). A server's ``instructions`` are counted apart: some clients add
them to the system prompt, some do not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types

from openptc.mcp import McpConnection, parse_config
from openptc.models.base import Message, ModelRequest, ToolResultBlock, ToolSpec, ToolUseBlock
from openptc.models.scripted import Turn
from openptc.models.tokens import count_spec_tokens, count_text
from openptc.sandbox.base import ToolCallError
from openptc.scenarios import brains, expense
from openptc.tools import Tool, Toolbox

REAL_SERVERS = ("time", "git", "everything", "filesystem", "memory")
SOURCES = {"time": "PyPI", "git": "PyPI", "everything": "npm", "filesystem": "npm", "memory": "npm"}
SYNTHETIC_TOOLS = 200
CODE_MODE_SERVER = "ptc"  # the key of `ptc mcp` in the client's mcpServers
EXPENSE_GROUP = "expense_tools"


def repo_script() -> Path | None:
    """``scripts/mcp-servers.sh`` of the source tree this package runs from, if it is one."""
    script = Path(__file__).resolve().parents[3] / "scripts" / "mcp-servers.sh"
    return script if script.is_file() else None


def install_servers(script: Path | None) -> dict[str, str]:
    """Server name -> its executable, or ``missing: why`` (runs the install script once)."""
    if script is None:
        why = "missing: scripts/mcp-servers.sh not found (run from a checkout of openptc)"
        return dict.fromkeys(REAL_SERVERS, why)
    try:
        done = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return dict.fromkeys(REAL_SERVERS, f"missing: {e}")
    found = dict(line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line)
    said_nothing = f"missing: {script.name} said nothing ({done.stderr.strip()[-300:]})"
    return {name: found.get(name, said_nothing) for name in REAL_SERVERS}


def make_workspace(root: Path) -> dict[str, Path]:
    """What git, filesystem and memory work on: a one-commit repository, a folder, a file."""
    repo, files = root / "repo", root / "files"
    repo.mkdir(parents=True)
    files.mkdir()
    (files / "notes.md").write_text("# Notes\n")
    (repo / "README.md").write_text("bench\n")
    if shutil.which("git"):
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com"}
        env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
        for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "start"]):
            subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=False)
    return {"repo": repo, "files": files, "memory": root / "memory.jsonl"}


def server_entries(installed: Mapping[str, str], workspace: Mapping[str, Path]) -> dict[str, Any]:
    """``mcpServers`` entries of the real servers that could be had, and the synthetic one."""
    extra: dict[str, dict[str, Any]] = {
        "time": {"args": ["--local-timezone", "UTC"]},
        "git": {"args": ["--repository", str(workspace["repo"])]},
        "everything": {},
        "filesystem": {"args": [str(workspace["files"])]},
        "memory": {"env": {"MEMORY_FILE_PATH": str(workspace["memory"])}},
    }
    entries: dict[str, Any] = {
        name: {"command": installed[name], **extra[name]}
        for name in REAL_SERVERS
        if not installed[name].startswith("missing:")
    }
    entries["synthetic"] = fixture_entry("synthetic", str(SYNTHETIC_TOOLS))
    return entries


def fixture_entry(*args: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "openptc.bench.mcp_fixtures", *args]}


def ptc_mcp_entry(config: Path) -> dict[str, Any]:
    """``ptc mcp --config FILE`` over stdio, as Claude Desktop or Cursor would start it."""
    ptc = Path(sys.executable).with_name("ptc")
    if ptc.is_file():
        return {"command": str(ptc), "args": ["mcp", "--config", str(config)]}
    code = "from openptc.cli import app; app()"
    return {"command": sys.executable, "args": ["-c", code, "mcp", "--config", str(config)]}


def connection(name: str, entry: Mapping[str, Any]) -> McpConnection:
    return McpConnection(parse_config({name: entry})[0], start_timeout=120.0)


def definition_tokens(tool: types.Tool) -> int:
    """One tool as a client offers it to the model: name, description, input schema."""
    spec = ToolSpec(tool.name, tool.description or "", dict(tool.input_schema))
    return count_spec_tokens(spec)


@dataclass(frozen=True)
class Listing:
    """What one MCP server puts into a client's context."""

    tools: int
    tool_tokens: int
    instructions_tokens: int

    @property
    def total(self) -> int:
        return self.tool_tokens + self.instructions_tokens


async def list_server(name: str, entry: Mapping[str, Any]) -> Listing:
    conn = connection(name, entry)
    try:
        tools = await conn.list_tools()
        return Listing(
            tools=len(tools),
            tool_tokens=sum(definition_tokens(t) for t in tools),
            instructions_tokens=count_text(conn.instructions or ""),
        )
    finally:
        await conn.close()


async def front_with_ptc_mcp(entries: Mapping[str, Any], config: Path) -> tuple[Listing, int]:
    """``ptc mcp`` in front of ``entries``: its listing, and the tokens of ``describe_tools``
    for every tool of every server (the most a model could pull into its context)."""
    config.write_text(json.dumps({"mcpServers": dict(entries)}, indent=2))
    conn = connection(CODE_MODE_SERVER, ptc_mcp_entry(config))
    try:
        tools = await conn.list_tools()
        groups = [parse_config({n: e})[0].group for n, e in entries.items()]
        described = await conn.call_tool("describe_tools", {"names": groups}, timeout=120.0)
        listing = Listing(
            tools=len(tools),
            tool_tokens=sum(definition_tokens(t) for t in tools),
            instructions_tokens=count_text(conn.instructions or ""),
        )
        return listing, count_text(content_text(described))
    finally:
        await conn.close()


# ---- the client a model uses: content blocks as text, as MCP hosts hand them to models -------


def content_text(result: types.CallToolResult) -> str:
    """The text blocks of a result, as a host hands them to its model (the JSON of the
    structured content when there is no text)."""
    parts = [b.text for b in result.content if isinstance(b, types.TextContent)]
    if parts or result.structured_content is None:
        return "\n".join(parts)
    return json.dumps(result.structured_content, ensure_ascii=False)


class TextContentTools(Toolbox):
    """An MCP server's tools as a host such as Claude Desktop offers them to its model: the
    tool's own name and schema; a result is its text content (``structuredContent`` is for
    programs, not the model). Remembers the last structured result (to count upstream calls)."""

    def __init__(self, conn: McpConnection, tools: list[types.Tool]) -> None:
        self.connection = conn
        self.last_structured: dict[str, Any] | None = None
        super().__init__([self._tool(t) for t in tools])

    def _tool(self, spec: types.Tool) -> Tool[..., Any]:
        async def call(arguments: dict[str, Any]) -> Any:
            result = await self.connection.call_tool(spec.name, arguments, timeout=300.0)
            self.last_structured = result.structured_content
            text = content_text(result)
            if result.is_error:
                raise ToolCallError(text, kind="ToolError")
            return text

        return Tool.from_schema(spec.name, spec.description or "", spec.input_schema, call)


# ---- the scripted model's two ways through the audit ------------------------------------------


def _renamed(request: ModelRequest, name: Callable[[str], str]) -> ModelRequest:
    """The request with every tool name passed through ``name`` (specs and tool uses)."""

    def block(b: Any) -> Any:
        return dataclasses.replace(b, name=name(b.name)) if isinstance(b, ToolUseBlock) else b

    return dataclasses.replace(
        request,
        tools=tuple(dataclasses.replace(s, name=name(s.name)) for s in request.tools),
        messages=tuple(
            Message(m.role, tuple(block(b) for b in m.content)) for m in request.messages
        ),
    )


def direct_over_mcp_brain(request: ModelRequest) -> Turn:
    """``brains.direct_brain`` over an ``McpToolbox``, which offers the server's tools as
    ``expense_tools__get_expenses``: the brain sees and writes the plain names."""
    turn = brains.direct_brain(_renamed(request, lambda n: n.rpartition("__")[2]))
    if isinstance(turn, str):
        return turn
    assert isinstance(turn, list)
    return [
        dataclasses.replace(b, name=f"{EXPENSE_GROUP}__{b.name}")
        if isinstance(b, ToolUseBlock)
        else b
        for b in turn
    ]


CODE_MODE_PROGRAM = re.sub(
    r"\b(get_team_members|get_expenses|get_custom_budget)\(",
    rf"{EXPENSE_GROUP}.\1(",
    expense.REFERENCE_PROGRAM,
)
"""``expense.REFERENCE_PROGRAM`` with the tools called as ``ptc mcp`` groups them."""


def code_mode_brain(request: ModelRequest) -> Turn:
    """A model connected to ``ptc mcp``: read the stubs of the expense server's tools with
    ``describe_tools``, write one program with ``run_code``, then answer from what it printed."""
    uses = [u for m in request.messages for u in m.tool_uses]
    n = len(uses) + 1
    if not uses:
        return [ToolUseBlock(f"toolu_{n:03d}", "describe_tools", {"names": [EXPENSE_GROUP]})]
    results: dict[str, ToolResultBlock] = {
        r.tool_use_id: r for m in request.messages for r in m.results
    }
    last = uses[-1]
    if last.name == "describe_tools":
        if results[last.id].is_error or EXPENSE_GROUP not in results[last.id].content:
            return f"I could not read the tools' stubs:\n{results[last.id].content}"
        return [ToolUseBlock(f"toolu_{n:03d}", "run_code", {"code": CODE_MODE_PROGRAM})]
    return brains.ptc_brain(request)  # relays what the program printed, or its error
