"""MCP servers as a ``Toolbox``: every tool of every configured server, callable from programs.

::

    async with McpToolbox.from_file("mcp.json") as tools:
        agent = Agent(model="...", tools=tools)
        result = await agent.run("...")

In a program each server's tools live in one group, ``await git_tools.git_log(repo_path=...)``
(see ``config.group_name`` for how ``git`` becomes ``git_tools``; tool names that are not Python
identifiers, such as ``get-sum``, become ``get_sum``). Servers start when the toolbox is entered,
all at once, and stop when it is left. A server that dies is started again by the next call of
one of its tools; when a server says its tool list changed (``notifications/tools/list_changed``),
or comes back after a restart, its tools are listed again and the toolbox's ``version`` goes up,
so whoever renders stubs from it (``ptc mcp``) can render them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from openptc.mcp.config import ServerConfig, load_config, parse_config, python_name
from openptc.mcp.connection import McpConnection, McpServerError, Protocol
from openptc.mcp.results import result_value, unwrapped_output_schema
from openptc.sandbox.base import ToolCallError
from openptc.tools import Tool, Toolbox

__all__ = ["McpToolbox"]

logger = logging.getLogger(__name__)

Listener = Callable[["McpToolbox"], None]


class McpToolbox(Toolbox):
    """The tools of several MCP servers, grouped by server; an async context manager.

    ``call_timeout`` bounds each tool call (seconds; ``None`` for no bound); ``start_timeout``
    bounds a server's start and handshake. With ``skip_failed`` a server that cannot start is
    left out (its error is in ``failures``) instead of failing the whole toolbox. ``protocol``
    is ``"legacy"`` to skip the 2026-07-28 discovery probe (see ``connection.Protocol``).
    """

    def __init__(
        self,
        servers: Iterable[ServerConfig] | Mapping[str, Any],
        *,
        call_timeout: float | None = 60.0,
        start_timeout: float = 30.0,
        skip_failed: bool = False,
        protocol: Protocol = "auto",
    ) -> None:
        super().__init__(())
        configs = parse_config(servers) if isinstance(servers, Mapping) else list(servers)
        self.call_timeout = call_timeout
        self.skip_failed = skip_failed
        self.version = 0
        self.failures: dict[str, str] = {}
        self._servers = {s.name: s for s in configs}
        self._connections = {
            s.name: McpConnection(
                s,
                start_timeout=start_timeout,
                on_tools_changed=self._changed_callback(s.name),
                protocol=protocol,
            )
            for s in configs
        }
        self._server_tools: dict[str, list[Tool[..., Any]]] = {s.name: [] for s in configs}
        self._origins: dict[str, tuple[str, str]] = {}  # tool name -> (server, MCP tool name)
        self._listeners: list[Listener] = []
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._stale: set[str] = set()
        self._lock = asyncio.Lock()
        self._started = False
        self._closed = False

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> McpToolbox:
        """A toolbox for the servers of an ``mcpServers`` JSON file (nothing starts yet)."""
        return cls(load_config(path), **options)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **options: Any) -> McpToolbox:
        """A toolbox for ``{"mcpServers": {...}}`` (or the inner map) given as a dict."""
        return cls(parse_config(config), **options)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> McpToolbox:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> McpToolbox:
        """Start every server at once and list their tools; idempotent."""
        if self._closed:
            raise RuntimeError("this McpToolbox is closed; make a new one")
        async with self._lock:
            if self._started:
                return self
            names = list(self._servers)
            loaded = await asyncio.gather(
                *(self._connections[n].list_tools() for n in names), return_exceptions=True
            )
            errors: list[str] = []
            for name, outcome in zip(names, loaded, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        await self._close_connections()
                        raise outcome
                    errors.append(str(outcome))
                    self.failures[name] = str(outcome)
                else:
                    self._server_tools[name] = self._make_tools(name, outcome)
                    self._describe_group(name)
            if errors and not self.skip_failed:
                await self._close_connections()
                raise McpServerError("\n".join(errors))
            for error in errors:
                logger.warning("%s (left out)", error)
            self._started = True
            self._rebuild()
            for name in sorted(self._stale):  # changed while start() was listing
                self._stale.discard(name)
                self._schedule_refresh(name)
        return self

    async def aclose(self) -> None:
        """Stop every server; the toolbox cannot be used afterwards."""
        self._closed = True
        for task in self._pending.values():
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)
        self._pending.clear()
        await self._close_connections()

    async def _close_connections(self) -> None:
        await asyncio.gather(*(c.close() for c in self._connections.values()))

    # -- what the toolbox holds ---------------------------------------------------------------

    def __iter__(self) -> Iterator[Tool[..., Any]]:
        if not self._started:
            raise RuntimeError(
                "the MCP servers are not started yet: use `async with McpToolbox.from_file(...) "
                "as tools:` or `await tools.start()` before handing the toolbox out"
            )
        return super().__iter__()

    @property
    def servers(self) -> tuple[ServerConfig, ...]:
        return tuple(self._servers.values())

    def connection(self, server: str) -> McpConnection:
        return self._connections[server]

    def tools_of(self, server: str) -> tuple[Tool[..., Any], ...]:
        """The tools of one server, as they appear in programs."""
        return tuple(self._server_tools[server])

    def origin(self, tool: str) -> tuple[str, str]:
        """``(server name, the tool's MCP name)`` of a tool of this toolbox."""
        return self._origins[tool]

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(toolbox)`` whenever the set of tools changes (after a refresh)."""
        self._listeners.append(listener)

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if not self._started:
            await self.start()
        return await super().call(name, arguments)

    async def refresh(self, server: str | None = None) -> None:
        """List the tools of one server (or all) again and rebuild the toolbox."""
        names = [server] if server is not None else list(self._servers)
        for name in names:
            try:
                mcp_tools = await self._connections[name].list_tools()
            except McpServerError as e:
                self.failures[name] = str(e)
                if not self.skip_failed:
                    raise
                logger.warning("%s", e)
                continue
            self.failures.pop(name, None)
            self._server_tools[name] = self._make_tools(name, mcp_tools)
            self._describe_group(name)
        self._rebuild()

    def _describe_group(self, server: str) -> None:
        info = self._connections[server].server_info
        about = ""
        if info is not None:
            about = f" ({' '.join(x for x in (info.title or info.name, info.version) if x)})"
        self.groups[self._servers[server].group] = f"Tools of the MCP server {server!r}{about}."

    # -- internals ---------------------------------------------------------------------------

    def _make_tools(self, server: str, mcp_tools: list[types.Tool]) -> list[Tool[..., Any]]:
        group = self._servers[server].group
        tools: list[Tool[..., Any]] = []
        used: set[str] = set()
        for spec in mcp_tools:
            base = python_name(spec.name)
            local, n = base, 2
            while local in used:  # e.g. both "get-sum" and "get_sum": the second is get_sum_2
                local, n = f"{base}_{n}", n + 1
            used.add(local)
            qualified = f"{group}.{local}"
            description = (
                spec.description or spec.title or f"The {spec.name} tool of MCP server {server}."
            )
            inner = unwrapped_output_schema(spec.output_schema)
            try:
                made = Tool.from_schema(
                    qualified,
                    description,
                    spec.input_schema,
                    self._caller(server, spec.name, qualified, wrapped=inner is not None),
                    output_schema=spec.output_schema if inner is None else inner,
                )
            except (TypeError, ValueError) as e:
                logger.warning("MCP server %r: tool %r left out: %s", server, spec.name, e)
                continue
            tools.append(made)
            self._origins[qualified] = (server, spec.name)
        return tools

    def _caller(
        self, server: str, mcp_name: str, qualified: str, *, wrapped: bool
    ) -> Callable[..., Any]:
        async def call(arguments: dict[str, Any]) -> Any:
            return await self._call_mcp(server, mcp_name, qualified, arguments, wrapped)

        return call

    async def _call_mcp(
        self, server: str, mcp_name: str, qualified: str, arguments: dict[str, Any], wrapped: bool
    ) -> Any:
        connection = self._connections[server]
        starts = connection.starts
        try:
            result = await connection.call_tool(mcp_name, arguments, timeout=self.call_timeout)
        except McpServerError as e:
            raise ToolCallError(f"{qualified}: {e}", kind="ToolError") from e
        except MCPError as e:
            raise ToolCallError(f"{qualified}: MCP server {server!r}: {e}", kind="ToolError") from e
        except RuntimeError as e:  # the SDK checks structured content against the outputSchema
            raise ToolCallError(f"{qualified}: MCP server {server!r}: {e}", kind="ToolError") from e
        finally:
            if connection.starts != starts:  # restarted for this call: its tools may differ
                self._schedule_refresh(server)
        return result_value(result, qualified, wrapped=wrapped)

    def _changed_callback(self, server: str) -> Callable[[], None]:
        return lambda: self._schedule_refresh(server)

    def _schedule_refresh(self, server: str) -> None:
        """Refresh in the background, once per burst of notifications."""
        if self._closed:
            return
        if not self._started:  # start() is listing: list once more when it is done
            self._stale.add(server)
            return
        if server in self._pending:
            self._stale.add(server)  # changed again while listing: list once more
            return
        self._pending[server] = asyncio.get_running_loop().create_task(
            self._refresh_soon(server), name=f"mcp-refresh-{server}"
        )

    async def _refresh_soon(self, server: str) -> None:
        try:
            while True:
                self._stale.discard(server)
                try:
                    await self.refresh(server)
                except Exception as e:
                    logger.warning("MCP server %r: could not refresh its tools: %s", server, e)
                if server not in self._stale:
                    break
        finally:
            self._pending.pop(server, None)

    def _rebuild(self) -> None:
        tools = [t for name in self._servers for t in self._server_tools[name]]
        before = list(self._tools.values())
        self._tools = {t.name: t for t in tools}
        live = set(self._tools)
        self._origins = {k: v for k, v in self._origins.items() if k in live}
        if [_fingerprint(t) for t in before] == [_fingerprint(t) for t in tools]:
            return
        self.version += 1
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                logger.exception("an McpToolbox change listener failed")

    async def wait_refreshed(self) -> None:
        """Wait for the refreshes that notifications or restarts have started (tests, CLIs)."""
        while self._pending:
            await asyncio.gather(*list(self._pending.values()), return_exceptions=True)


def _fingerprint(tool: Tool[..., Any]) -> tuple[str, str, str, str]:
    return (tool.name, tool.description, repr(tool.input_schema), repr(tool.output_schema))
