"""What a client of ``ptc mcp`` is told: the four tools, their schemas and descriptions, and the
server's instructions.

The calling rules of ``run_code`` are the agent's own (``prompts.code_tool_description``), so a
model reads the same words whether openptc runs it or an MCP client does; what is added here is
only what differs: the tools are found and described on demand instead of listed up front, and
they come from MCP servers.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

from openptc.mcp.discovery import LOCAL, Catalog
from openptc.prompts import CODE_TOOL_SCHEMA, code_tool_description

__all__ = [
    "DESCRIBE_TOOLS",
    "LIST_TOOLS",
    "RUN_CODE",
    "RUN_CODE_OUTPUT_SCHEMA",
    "SEARCH_TOOLS",
    "code_mode_tools",
    "instructions",
]

RUN_CODE = "run_code"
LIST_TOOLS = "list_tools"
SEARCH_TOOLS = "search_tools"
DESCRIBE_TOOLS = "describe_tools"

_MCP_RULES = f"""
Finding and calling the tools of MCP servers:
- Tools are grouped by server: `git_tools.git_log` is called as \
`await git_tools.git_log(repo_path="/r")` or `await git_tools.git_log({{"repo_path": "/r"}})`.
- Get the stubs (parameters, result shapes) of the tools you will call with `{DESCRIBE_TOOLS}`; \
find tools with `{SEARCH_TOOLS}` or `{LIST_TOOLS}`.
- A result is the tool's structured content, else its text (parsed when it is JSON); \
`json.loads` on a parsed result returns it unchanged.
- A failing tool raises `ToolError` with the server's message. The structured result lists \
every tool call that ran: after an error, check it before running again, so that side effects \
are not repeated.
"""

RUN_CODE_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "stdout_truncated": {"type": "boolean"},
        "error": {
            "type": ["object", "null"],
            "description": "kind, type, message, traceback, line",
        },
        "tool_calls": {
            "type": "array",
            "items": {"type": "object"},
            "description": "call_id, tool, arguments, outcome (ok, error, cancelled), error, "
            "duration_ms",
        },
        "notices": {"type": "array", "items": {"type": "string"}},
        "duration_ms": {"type": "number"},
    },
    "required": ["ok", "stdout", "stderr", "error", "tool_calls"],
}


def _catalog_comment(catalog: Catalog) -> str:
    """What stands where the stubs would be: which servers there are, and how to see stubs."""
    lines = [f"# {catalog.headline()}."]
    grouped = [name for name in catalog.servers if name != LOCAL]
    if grouped:
        example = grouped[0]
        lines.append(f"# Call a tool of server `{example}` as `await {example}.<tool>(...)`.")
    lines.append(f"# Their stubs are not listed here: get them with {DESCRIBE_TOOLS}(names=[...]).")
    return "\n".join(lines)


def run_code_description(catalog: Catalog) -> str:
    return code_tool_description(_catalog_comment(catalog)) + _MCP_RULES


def instructions(catalog: Catalog) -> str:
    """The server's instructions, for clients that show them to the model."""
    return (
        f"Runs Python programs that call tools as async functions ({catalog.headline()}). "
        f"Find tools with {SEARCH_TOOLS} or {LIST_TOOLS}, read their stubs with "
        f"{DESCRIBE_TOOLS}, then write one program with {RUN_CODE} that does the whole job — "
        "loops, filters, asyncio.gather fan-out — and prints only the result. Variables persist "
        f"between {RUN_CODE} calls of this connection."
    )


def code_mode_tools(catalog: Catalog) -> list[types.Tool]:
    """The tools ``ptc mcp`` offers, described for the toolbox it fronts."""
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return [
        types.Tool(
            name=RUN_CODE,
            title="Run a Python program that calls the tools",
            description=run_code_description(catalog),
            input_schema=dict(CODE_TOOL_SCHEMA),
            output_schema=RUN_CODE_OUTPUT_SCHEMA,
            annotations=types.ToolAnnotations(read_only_hint=False, open_world_hint=True),
        ),
        types.Tool(
            name=LIST_TOOLS,
            title="List servers and tools",
            description=(
                f"List the tools a {RUN_CODE} program can call: each server on one line, then "
                "each of its tools on one line, as `server.tool(required, optional=default) — "
                f"what it does`. Pass `server` for one server only; {DESCRIBE_TOOLS} gives the "
                "full stubs."
            ),
            input_schema={
                "type": "object",
                "properties": {"server": {"type": "string"}},
                "additionalProperties": False,
            },
            annotations=read_only,
        ),
        types.Tool(
            name=SEARCH_TOOLS,
            title="Search tools by words",
            description=(
                "Find tools by what they do, in a few words (e.g. 'commit history', 'read "
                "file'): the best matches first, one line each, as list_tools shows them."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "default": 10},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
            annotations=read_only,
        ),
        types.Tool(
            name=DESCRIBE_TOOLS,
            title="Python stubs of chosen tools",
            description=(
                "The Python stubs of the named tools: async signatures with parameter types, "
                "docstrings, and TypedDicts for the shapes of arguments and results — exactly "
                f"how to call them from a {RUN_CODE} program. Name tools as listed "
                "(`git_tools.git_log`); a server's name stands for all of its tools."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "names": {"type": "array", "items": {"type": "string"}, "minItems": 1}
                },
                "required": ["names"],
                "additionalProperties": False,
            },
            annotations=read_only,
        ),
    ]
