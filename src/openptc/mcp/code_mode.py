"""The code-mode MCP server behind ``ptc mcp``: any toolbox, offered as one ``run_code`` tool and
three discovery tools instead of one schema per tool.

A client writes one Python program; a sandbox runs it; the program calls the toolbox's tools as
async functions on the host; only what it prints comes back, with the log of the calls it made.
Each client connection gets its own sandbox session, opened on its first program and closed
with the connection, so variables persist from one ``run_code`` to the next.

Sessions belong to connections, which only the 2025 (handshake) era of the protocol has; the
2026-07-28 era makes every request stand alone. So this server does not answer
``server/discover``: clients that probe with it fall back to the handshake, and its sessions.
A client pinned to the 2026 era still gets answers, but each program then runs in a session of
its own (the result says so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from openptc.mcp import code_mode_tools as texts
from openptc.mcp.client_sessions import ClientSandbox, SessionGone
from openptc.mcp.discovery import Catalog, describe_tools, list_tools, search_tools
from openptc.sandbox.base import Execution, Sandbox, SandboxError, ToolHost
from openptc.sandbox.remote_protocol import error_to_json
from openptc.tools import Toolbox

__all__ = ["CodeMode", "build_code_mode_server", "connection_of"]

log = logging.getLogger("openptc.mcp")

SANDBOX_KEY = "openptc.sandbox"
NO_SESSION_NOTICE = (
    "this client speaks the 2026-07-28 protocol, which has no sessions: the program ran in a "
    "sandbox session of its own, and its variables are gone"
)


@dataclass
class CodeMode:
    """What the server's handlers share while it runs: the toolbox and the started sandbox."""

    toolbox: Toolbox
    sandbox: Sandbox
    timeout_s: float | None = None

    def tool_host(self) -> ToolHost:
        """The tools a program may call: those that allow the ``code`` caller."""
        if all("code" in tool.callers for tool in self.toolbox):
            return self.toolbox
        return self.toolbox.for_caller("code")


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection | None:
    """The connection a request arrived on, whose ``exit_stack`` unwinds when the client goes.

    The SDK's handler context does not expose it yet (its TODO L54 reworks ``Context`` to carry
    ``connection``); until then it is the request session's. The tests pin this down.
    """
    found = getattr(ctx, "connection", None) or getattr(ctx.session, "_connection", None)
    return found if isinstance(found, Connection) else None


def build_code_mode_server(
    toolbox: Toolbox,
    sandbox_factory: Callable[[], Sandbox],
    *,
    name: str = "openptc",
    timeout_s: float | None = None,
) -> Server[CodeMode]:
    """An MCP server (the SDK's low-level ``Server``) offering ``toolbox`` in code mode.

    The sandbox is made and started when the server starts (``transports.serve_stdio``, the
    streamable HTTP app's lifespan) and closed when it stops; the toolbox is the caller's to
    open (an ``McpToolbox`` must be started) and close. ``timeout_s`` may lower the sandbox's
    wall clock per program.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: Server[CodeMode]) -> AsyncIterator[CodeMode]:
        sandbox = sandbox_factory()
        try:
            start = getattr(sandbox, "start", None)
            if start is not None:
                await start()  # probe isolation, reach the server, fill the pool: before clients
            log.info("code mode: %s", Catalog.of(toolbox).headline())
            yield CodeMode(toolbox, sandbox, timeout_s)
        finally:
            log.info("code mode: stopping, closing the sandbox")
            await sandbox.aclose()

    async def on_list_tools(
        ctx: ServerRequestContext[CodeMode], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=texts.code_mode_tools(Catalog.of(toolbox)))

    async def on_call_tool(
        ctx: ServerRequestContext[CodeMode], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        state = ctx.lifespan_context
        if params.name == texts.RUN_CODE:
            code = arguments.get("code")
            if not isinstance(code, str):
                return _text("run_code needs `code`: the Python program to run, as a string", True)
            return await _run_code(ctx, state, code)
        if params.name == texts.LIST_TOOLS:
            server = arguments.get("server")
            chosen = server if isinstance(server, str) else None
            return _text(list_tools(state.toolbox, chosen, _unavailable(state.toolbox)))
        if params.name == texts.SEARCH_TOOLS:
            limit = arguments.get("limit", 10)
            limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else 10
            query = arguments.get("query")
            if not isinstance(query, str):
                return _text("search_tools needs `query`: words to look for, as a string", True)
            return _text(search_tools(state.toolbox, query, limit))
        if params.name == texts.DESCRIBE_TOOLS:
            return _describe(state.toolbox, arguments.get("names"))
        raise MCPError(
            code=types.INVALID_PARAMS,
            message=f"unknown tool {params.name!r}; this server offers "
            f"{texts.RUN_CODE}, {texts.LIST_TOOLS}, {texts.SEARCH_TOOLS}, {texts.DESCRIBE_TOOLS}",
        )

    async def no_discover(
        ctx: ServerRequestContext[CodeMode], params: types.RequestParams
    ) -> types.DiscoverResult:
        raise MCPError(
            code=types.METHOD_NOT_FOUND,
            message="this server keeps a sandbox session per connection: use the initialize "
            "handshake",
        )

    server: Server[CodeMode] = Server(
        name,
        version=_version(),
        title="openptc code mode",
        instructions=texts.instructions(Catalog.of(toolbox)),
        lifespan=lifespan,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )
    server.add_request_handler("server/discover", types.RequestParams, no_discover)
    return server


async def _run_code(
    ctx: ServerRequestContext[CodeMode], state: CodeMode, code: str
) -> types.CallToolResult:
    connection = connection_of(ctx)
    modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
    slot = _sandbox_of(connection, state) if connection is not None and not modern else None
    one_shot = slot is None
    if slot is None:
        slot = ClientSandbox(state.sandbox, label="one request")
    try:
        execution = await slot.run(code, state.tool_host(), timeout_s=state.timeout_s)
    except SessionGone as exc:
        return _sandbox_failure(f"the sandbox failed while running the program: {exc}", lost=True)
    except SandboxError as exc:
        return _sandbox_failure(f"no sandbox session could be opened: {exc}", lost=False)
    finally:
        if one_shot:
            await slot.aclose()
    if one_shot:
        execution = _with_notice(execution, NO_SESSION_NOTICE)
    return _execution_result(execution)


def _sandbox_of(connection: Connection, state: CodeMode) -> ClientSandbox:
    """The connection's sandbox, made on its first program and closed with the connection."""
    found = connection.state.get(SANDBOX_KEY)
    if isinstance(found, ClientSandbox):
        return found
    label = f"connection {connection.session_id or id(connection)}"
    slot = ClientSandbox(state.sandbox, label=label)
    connection.state[SANDBOX_KEY] = slot
    connection.exit_stack.push_async_callback(slot.aclose)
    return slot


def _unavailable(toolbox: Toolbox) -> dict[str, str]:
    """Upstream servers that could not be started, by the group their tools would have."""
    from openptc.mcp.toolbox import McpToolbox

    if not isinstance(toolbox, McpToolbox):
        return {}
    groups = {server.name: server.group for server in toolbox.servers}
    return {groups.get(name, name): why for name, why in toolbox.failures.items()}


def _with_notice(execution: Execution, notice: str) -> Execution:
    return dataclasses.replace(execution, notices=(*execution.notices, notice))


def _execution_result(execution: Execution) -> types.CallToolResult:
    structured: dict[str, Any] = {
        "ok": execution.ok,
        "stdout": execution.stdout,
        "stderr": execution.stderr,
        "stdout_truncated": execution.stdout_truncated,
        "error": error_to_json(execution.error),
        "tool_calls": [
            {
                "call_id": call.call_id,
                "tool": call.tool,
                "arguments": call.arguments,
                "outcome": call.outcome,
                "error": call.error,
                "duration_ms": round(call.duration_ms, 3),
            }
            for call in execution.tool_calls
        ],
        "notices": list(execution.notices),
        "duration_ms": round(execution.duration_ms, 3),
    }
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=execution.to_model_text())],
        structured_content=structured,
        is_error=not execution.ok,
    )


def _sandbox_failure(message: str, *, lost: bool) -> types.CallToolResult:
    if lost:
        message += "; the next program runs in a new session, without earlier variables"
    structured = {
        "ok": False,
        "stdout": "",
        "stderr": "",
        "stdout_truncated": False,
        "error": {"kind": "sandbox", "type": "SandboxError", "message": message},
        "tool_calls": [],
        "notices": [],
        "duration_ms": 0.0,
    }
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"[error]\n{message}")],
        structured_content=structured,
        is_error=True,
    )


def _describe(toolbox: Toolbox, names: object) -> types.CallToolResult:
    if isinstance(names, str):  # be liberal: one name, or names separated by commas
        names = [n for n in names.replace(",", " ").split() if n]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        return _text(
            "names must be a list of tool or server names, e.g. ['git_tools.git_log']", True
        )
    stubs, problems = describe_tools(toolbox, names)
    parts = [f"```python\n{stubs.rstrip()}\n```"] if stubs else []
    parts.extend(problems)
    return _text("\n".join(parts), is_error=not stubs)


def _text(text: str, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=is_error
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openptc")
    except PackageNotFoundError:
        return "0"
