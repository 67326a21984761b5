"""MCP servers that ``ptc bench mcp`` measures, written with the official SDK's server API and
served over stdio, as any MCP client starts a server::

    python -m openptc.bench.mcp_fixtures expense          # the expense audit's three tools
    python -m openptc.bench.mcp_fixtures synthetic [N]    # N (default 200) generated tools

``expense``: ``scenarios.expense.make_tools`` as a plain MCP server: each tool's input schema from
its Python signature, each result as JSON text, as most servers answer (no ``outputSchema``).

``synthetic``: a large SaaS-style API (tickets, invoices, deployments, ... each with list, get,
create, update and delete), the size of the biggest public servers, with the schemas such servers
have: enums, formats, defaults, nested objects, arrays. Its tools echo their arguments.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from openptc.sandbox.base import ToolCallError
from openptc.scenarios import expense
from openptc.tools import Toolbox

__all__ = ["RESOURCES", "expense_server", "synthetic_server", "synthetic_tools"]

RESOURCES = (
    "ticket", "invoice", "customer", "order", "deployment", "repository", "pipeline", "incident",
    "alert", "dashboard", "user", "team", "project", "milestone", "document", "folder",
    "contract", "payment", "subscription", "coupon", "product", "warehouse", "shipment",
    "supplier", "campaign", "segment", "webhook", "api_key", "secret", "cluster", "database",
    "backup", "dns_record", "certificate", "calendar_event", "meeting", "note", "task", "form",
    "survey",
)  # fmt: skip
_STATUSES = ["draft", "active", "pending", "archived", "deleted"]


def _label(resource: str) -> str:
    return resource.replace("_", " ")


def _list_tool(resource: str) -> types.Tool:
    label = _label(resource)
    return types.Tool(
        name=f"list_{resource}s",
        description=(
            f"List {label}s in the workspace, newest first. Results are paginated: pass the "
            f"`next_cursor` of a page as `cursor` to get the next one. Filter by status, owner "
            f"or creation date; archived {label}s are left out unless asked for."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "default": 20,
                    "description": f"How many {label}s to return per page.",
                },
                "cursor": {"type": "string", "description": "Pagination cursor from a page."},
                "status": {
                    "type": "string",
                    "enum": _STATUSES,
                    "description": f"Only {label}s in this status.",
                },
                "owner_id": {"type": "string", "description": "Only those owned by this user."},
                "created_after": {
                    "type": "string",
                    "format": "date-time",
                    "description": "Only those created after this time (ISO 8601).",
                },
                "sort": {
                    "type": "string",
                    "enum": ["created_at", "updated_at", "name"],
                    "default": "created_at",
                },
                "include_archived": {"type": "boolean", "default": False},
            },
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    )


def _get_tool(resource: str) -> types.Tool:
    label = _label(resource)
    return types.Tool(
        name=f"get_{resource}",
        description=(
            f"Get one {label} by its id, with its fields, owner and timestamps. Use `include` to "
            "embed related records in the same response instead of calling again."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": "^[a-z]{2,4}_[0-9A-Za-z]{8,}$",
                    "description": f"The {label}'s id, e.g. {resource[:3]}_8f2K19aQ.",
                },
                "include": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["owner", "history", "attachments"]},
                    "uniqueItems": True,
                    "description": "Related records to embed.",
                },
            },
            "required": ["id"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    )


def _fields(resource: str) -> dict[str, Any]:
    label = _label(resource)
    return {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "description": f"What the {label} is about (Markdown)."},
        "status": {"type": "string", "enum": _STATUSES},
        "owner_id": {"type": "string", "description": "The user who owns it."},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
        "due_date": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "metadata": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Free-form key/value pairs, at most 50.",
        },
    }


def _create_tool(resource: str) -> types.Tool:
    label = _label(resource)
    return types.Tool(
        name=f"create_{resource}",
        description=(
            f"Create a {label}. The new {label} starts as a draft unless a status is given; "
            "the response holds its id. Fails when a name is already taken in the workspace."
        ),
        input_schema={
            "type": "object",
            "properties": _fields(resource),
            "required": ["name"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=False),
    )


def _update_tool(resource: str) -> types.Tool:
    label = _label(resource)
    return types.Tool(
        name=f"update_{resource}",
        description=(
            f"Change fields of a {label}; fields not given keep their values. Pass the `etag` "
            "you read to avoid overwriting someone else's change (the call then fails with a "
            "conflict)."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": f"The {label}'s id."},
                "changes": {
                    "type": "object",
                    "properties": _fields(resource),
                    "additionalProperties": False,
                    "minProperties": 1,
                },
                "etag": {"type": "string", "description": "The etag of the version you read."},
            },
            "required": ["id", "changes"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=False, idempotent_hint=True),
    )


def _delete_tool(resource: str) -> types.Tool:
    label = _label(resource)
    return types.Tool(
        name=f"delete_{resource}",
        description=(
            f"Delete a {label}. It goes to the trash for 30 days and can be restored from "
            "there, unless `permanent` is true."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": f"The {label}'s id."},
                "permanent": {"type": "boolean", "default": False},
            },
            "required": ["id"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True),
    )


_MAKERS = (_list_tool, _get_tool, _create_tool, _update_tool, _delete_tool)


def synthetic_tools(count: int = 200) -> list[types.Tool]:
    """``count`` tools: five per resource of ``RESOURCES`` (cycling with a suffix past 200)."""
    tools: list[types.Tool] = []
    round_ = 0
    while len(tools) < count:
        for resource in RESOURCES:
            name = resource if round_ == 0 else f"{resource}_{round_ + 1}"
            tools.extend(make(name) for make in _MAKERS)
        round_ += 1
    return tools[:count]


def _text(value: Any, is_error: bool = False) -> types.CallToolResult:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=is_error
    )


def synthetic_server(count: int = 200) -> Server[Any]:
    tools = synthetic_tools(count)
    names = {t.name for t in tools}

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name not in names:
            return _text(f"unknown tool {params.name!r}", is_error=True)
        return _text({"tool": params.name, "arguments": params.arguments or {}, "ok": True})

    return Server(
        "synthetic-saas", version="1.0.0", on_list_tools=on_list_tools, on_call_tool=on_call_tool
    )


def expense_server() -> Server[Any]:
    toolbox = Toolbox(expense.make_tools())
    tools = [
        types.Tool(name=s["name"], description=s["description"], input_schema=s["input_schema"])
        for s in toolbox.specs()
    ]

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return _text(await toolbox.call(params.name, dict(params.arguments or {})))
        except ToolCallError as e:
            return _text(str(e), is_error=True)

    return Server(
        "expense-audit", version="1.0.0", on_list_tools=on_list_tools, on_call_tool=on_call_tool
    )


async def _serve(server: Server[Any]) -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("expense", "synthetic"):
        sys.exit("usage: python -m openptc.bench.mcp_fixtures expense | synthetic [COUNT]")
    count = int(argv[1]) if len(argv) > 1 else 200
    server = expense_server() if argv[0] == "expense" else synthetic_server(count)
    anyio.run(_serve, server)


if __name__ == "__main__":
    main(sys.argv[1:])
