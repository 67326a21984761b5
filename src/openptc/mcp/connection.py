"""One MCP server's lifecycle: start on demand, call, notice when it dies, restart, close.

The official SDK's ``Client`` is an anyio context manager whose enter and exit must happen in the
same task, while tool calls arrive from whatever task the sandbox bridge runs them in. So each
running server is owned by one background task (``_serve``) that enters the client, waits until it
is told to stop or the connection ends, and exits it; calls only borrow the connected client.

The transport's read stream is watched: when it ends (a killed process, a crashed server) the run
is marked ended at once, so the next call starts the server again instead of failing on a dead
pipe. A call that was in flight when the server died fails with a message that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import IO, Any, Literal, TextIO, cast

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client._transport import Transport, TransportStreams
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from openptc.mcp.config import HttpServer, ServerConfig, StdioServer

__all__ = ["McpCallTimeout", "McpConnection", "McpServerDied", "McpServerError"]

logger = logging.getLogger(__name__)

_CLIENT_INFO = types.Implementation(name="openptc", version="0.1.0")
_STDERR_TAIL = 1500


Protocol = Literal["auto", "legacy"]
"""How to agree on a protocol version: ``auto`` tries 2026-07-28's ``server/discover`` and falls
back to the ``initialize`` handshake; ``legacy`` goes straight to ``initialize`` (for a server
that mishandles the probe)."""


class McpServerError(Exception):
    """An MCP server could not be started, reached or used; the message names the server."""


class McpServerDied(McpServerError):
    """The server's connection ended while a call was running; the next call restarts it."""


class McpCallTimeout(McpServerError):
    """A call took longer than its timeout; the server was told to cancel it."""


@dataclass(eq=False)
class _Run:
    """One start of the server: its client, the task that owns it, and how it ended."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    client: Client | None = None
    task: asyncio.Task[None] | None = None
    reason: str = ""

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()


class McpConnection:
    """A configured server and, while it runs, its connection; safe to use from many tasks."""

    def __init__(
        self,
        server: ServerConfig,
        *,
        start_timeout: float = 30.0,
        on_tools_changed: Callable[[], None] | None = None,
        protocol: Protocol = "auto",
    ) -> None:
        self.server = server
        self.protocol: Protocol = protocol
        self.start_timeout = start_timeout
        self.on_tools_changed = on_tools_changed
        self.starts = 0
        self._run: _Run | None = None
        self._lock = asyncio.Lock()
        self._stderr: IO[str] | None = None
        self._http_error = ""
        self._http_status = 0
        self.server_info: types.Implementation | None = None  # as of the last start
        self.instructions: str | None = None  # the server's own guidance for models, if any

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def running(self) -> bool:
        return self._run is not None and not self._run.ended.is_set()

    @property
    def protocol_version(self) -> str | None:
        run = self._run
        return run.client.protocol_version if run and run.client and self.running else None

    async def start(self) -> None:
        """Connect if not connected (again, if the last run ended); idempotent."""
        await self._client()

    async def list_tools(self) -> list[types.Tool]:
        """Every tool the server offers now (all pages), starting the server if needed."""
        client = await self._client()
        if client.server_capabilities.tools is None:
            return []  # a server of prompts or resources only
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(1000):  # a server whose cursor never ends must not hang us
            try:
                page = await client.list_tools(cursor=cursor)
            except MCPError as e:
                failure = self._failure(e, "listing its tools")
                if isinstance(failure, MCPError):
                    failure = McpServerError(f"MCP server {self.name!r}: tools/list failed: {e}")
                raise failure from e
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, timeout: float | None
    ) -> types.CallToolResult:
        """One ``tools/call``; progress notifications are received (and logged) on the way.

        An HTTP server that answers 404 to a session it no longer knows (it restarted) ran
        nothing, so the call is sent once more on a new session, as the specification asks.
        """
        reports: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            text = f"{progress:g}/{total:g}" if total else f"{progress:g}"
            reports.append(f"{text} {message}" if message else text)
            logger.debug("MCP server %r: %s progress %s", self.name, name, reports[-1])

        for attempt in (1, 2):
            client = await self._client()
            try:
                return await client.call_tool(
                    name, arguments, read_timeout_seconds=timeout, progress_callback=on_progress
                )
            except MCPError as e:
                if e.code == types.REQUEST_TIMEOUT:
                    last = f"; last progress reported: {reports[-1]}" if reports else ""
                    raise McpCallTimeout(
                        f"MCP server {self.name!r} did not answer {name} within {timeout:g}s; the "
                        f"call was cancelled, and it may or may not have taken effect{last}"
                    ) from e
                if attempt == 1 and self._session_gone(e) and self._run is not None:
                    self._run.end(f"the server no longer knew the session ({self._http_error})")
                    continue
                raise self._failure(e, f"running {name}") from e
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Stop the server (for stdio: close its stdin, then terminate it) and forget the run."""
        async with self._lock:
            await self._stop_run()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def stderr_tail(self, limit: int = _STDERR_TAIL) -> str:
        """The end of what a stdio server wrote to stderr in its last run (the usual clue)."""
        if self._stderr is None or self._stderr.closed:
            return ""
        fd = self._stderr.fileno()
        size = os.fstat(fd).st_size
        # pread leaves the shared file offset alone: the server writes through the same file.
        data = os.pread(fd, min(size, limit * 4), max(0, size - limit * 4))
        text = data.decode("utf-8", "replace").strip()
        return text[-limit:]

    # -- internals ---------------------------------------------------------------------------

    async def _client(self) -> Client:
        run = self._run
        if run is not None and run.client is not None and not run.ended.is_set():
            return run.client
        async with self._lock:
            run = self._run
            if run is not None and run.client is not None and not run.ended.is_set():
                return run.client
            if run is not None:
                logger.warning(
                    "MCP server %r had stopped (%s); starting it again", self.name, run.reason
                )
                await self._stop_run()
            return await self._start()

    async def _start(self) -> Client:
        self._check_command()
        if self._stderr is not None:
            self._stderr.close()
        # kept open across the run (the server writes to it), closed by close() or the next start
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._http_error = ""
        self._http_status = 0
        run = _Run()
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        run.task = asyncio.create_task(self._serve(run, ready), name=f"mcp-server-{self.name}")
        self._run = run
        self.starts += 1
        try:
            async with asyncio.timeout(self.start_timeout):
                client = await asyncio.shield(ready)
        except TimeoutError:
            await self._stop_run(cancel=True)
            raise self._start_error(
                f"did not complete the MCP handshake within {self.start_timeout:g}s"
            ) from None
        except BaseException as e:
            await self._stop_run(cancel=True)
            if isinstance(e, Exception):
                raise self._start_error(_describe(e)) from e
            raise
        return client

    async def _serve(self, run: _Run, ready: asyncio.Future[Client]) -> None:
        """Own the client for one run: enter it, wait for stop or the end, exit it."""
        client = Client(
            self._transport(run),
            mode=self.protocol,
            cache=None,
            client_info=_CLIENT_INFO,
            message_handler=self._on_message,
        )
        try:
            async with client, anyio.create_task_group() as group:
                run.client = client
                if _modern_list_changed(client):
                    group.start_soon(self._listen, client)
                self._http_error = ""  # e.g. a 400 that answered the discovery probe
                self.server_info, self.instructions = client.server_info, client.instructions
                ready.set_result(client)
                stop = asyncio.ensure_future(run.stop.wait())
                ended = asyncio.ensure_future(run.ended.wait())
                try:
                    await asyncio.wait({stop, ended}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    ended.cancel()
                group.cancel_scope.cancel()
        except Exception as e:
            if not ready.done():
                ready.set_exception(e)
            run.end(_describe(e))
        finally:
            if not ready.done():
                ready.cancel()
            run.end("closed")

    @contextlib.asynccontextmanager
    async def _transport(self, run: _Run) -> AsyncIterator[TransportStreams]:
        """The server's transport, its read stream watched so that its end is noticed at once."""
        inner: Transport
        http: httpx2.AsyncClient | None = None
        if isinstance(self.server, StdioServer):
            inner = stdio_client(self._stdio_parameters(), errlog=cast(TextIO, self._stderr))
        else:
            http = httpx2.AsyncClient(
                headers=dict(self.server.headers),
                timeout=httpx2.Timeout(30.0, read=300.0),
                event_hooks={"response": [self._record_http_error]},
            )
            inner = streamable_http_client(self.server.url, http_client=http)
        try:
            async with inner as (read, write):
                yield _WatchedReadStream(read, lambda: run.end(self._ended_reason())), write
        finally:
            if http is not None:
                await http.aclose()

    def _stdio_parameters(self) -> StdioServerParameters:
        assert isinstance(self.server, StdioServer)
        return StdioServerParameters(
            command=self.server.command,
            args=list(self.server.args),
            env=dict(self.server.env),
            cwd=self.server.cwd,
        )

    def _check_command(self) -> None:
        """Name a missing command before spawning (the OS error alone says only ENOENT)."""
        server = self.server
        if not isinstance(server, StdioServer):
            return
        path = {**get_default_environment(), **server.env}.get("PATH", os.defpath)
        command = server.command
        if os.sep in command and server.cwd is not None:  # a relative path starts from cwd
            command = os.path.join(server.cwd, command)
        if shutil.which(command, path=path) is None:
            where = "" if os.sep in server.command else f" on PATH ({path})"
            raise McpServerError(
                f"MCP server {self.name!r}: command {server.command!r} not found{where}; "
                "install it or fix 'command' in the config"
            )
        if server.cwd is not None and not os.path.isdir(server.cwd):
            raise McpServerError(f"MCP server {self.name!r}: 'cwd' {server.cwd} is not a folder")

    async def _record_http_error(self, response: httpx2.Response) -> None:
        self._http_status = response.status_code
        if response.status_code >= 400:
            reason = response.reason_phrase or ""
            self._http_error = (
                f"HTTP {response.status_code} {reason} from {response.request.method} "
                f"{response.request.url}"
            ).replace("  ", " ")

    async def _on_message(self, message: types.ServerNotification | Exception) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._tools_changed()
        elif isinstance(message, Exception):
            logger.warning("MCP server %r sent something unreadable: %s", self.name, message)

    async def _listen(self, client: Client) -> None:
        """On 2026-07-28 connections, tool-list changes arrive on a ``subscriptions/listen``."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for event in subscription:
                    if isinstance(event, ToolsListChanged):
                        self._tools_changed()
        except Exception as e:  # the server may not honour it; calls keep working regardless
            logger.debug("MCP server %r: no tool-list subscription (%s)", self.name, e)

    def _tools_changed(self) -> None:
        logger.info("MCP server %r changed its tool list", self.name)
        if self.on_tools_changed is not None:
            self.on_tools_changed()

    async def _stop_run(self, *, cancel: bool = False) -> None:
        """End the current run; ``cancel`` interrupts a handshake that is still going on."""
        run, self._run = self._run, None
        if run is None or run.task is None:
            return
        run.stop.set()
        if cancel and not run.task.done():
            run.task.cancel()
        try:
            # The SDK's stdio shutdown is bounded (stdin close, SIGTERM, SIGKILL: ~5 s at most).
            await asyncio.wait_for(asyncio.shield(run.task), 10.0)
        except TimeoutError:
            run.task.cancel()
            with contextlib.suppress(BaseException):
                await run.task
        except asyncio.CancelledError:
            if not run.task.cancelled():
                raise  # we are cancelled ourselves, not just the run we stopped
        except Exception:
            logger.debug("MCP server %r: error while stopping", self.name, exc_info=True)

    def _ended_reason(self, error: MCPError | None = None) -> str:
        if isinstance(self.server, HttpServer):
            detail = f": {error}" if error is not None and str(error) else ""
            return self._http_error or f"the HTTP connection was lost{detail}"
        return "its process exited or closed its output"

    def _session_gone(self, error: MCPError) -> bool:
        """An HTTP server rejected our session: 404 as the specification says, or 400 as some
        servers (server-everything) answer a session id they do not know after a restart.
        Either way the request was refused, not run, so sending it again is safe."""
        if not isinstance(self.server, HttpServer):
            return False
        if error.code == types.INVALID_REQUEST and str(error) == "Session terminated":
            return True
        return error.code == types.INTERNAL_ERROR and self._http_status in (400, 404)

    def _failure(self, error: MCPError, doing: str) -> McpServerError | MCPError:
        run = self._run
        if error.code != types.CONNECTION_CLOSED and not (run and run.ended.is_set()):
            if self._http_error and error.code == types.INTERNAL_ERROR:
                return McpServerError(f"MCP server {self.name!r}: {error} ({self._http_error})")
            return error  # the server answered with an error: the caller reports its text
        if run is not None:
            run.end(self._ended_reason(error))
        reason = run.reason if run and run.reason else self._ended_reason(error)
        return McpServerDied(
            f"MCP server {self.name!r} stopped while {doing} ({reason}); it will be started "
            f"again on the next call{self._stderr_note()}"
        )

    def _start_error(self, what: str) -> McpServerError:
        target = self.server.describe()
        http = f" ({self._http_error})" if self._http_error and self._http_error not in what else ""
        return McpServerError(
            f"MCP server {self.name!r} ({target}) could not be started: {what}{http}"
            f"{self._stderr_note()}"
        )

    def _stderr_note(self) -> str:
        tail = self.stderr_tail()
        return f"\n--- its stderr ends with ---\n{tail}" if tail else ""


def _modern_list_changed(client: Client) -> bool:
    capabilities = client.server_capabilities.tools
    return bool(
        client.protocol_version in MODERN_PROTOCOL_VERSIONS
        and capabilities is not None
        and capabilities.list_changed
    )


def _describe(error: BaseException) -> str:
    """The innermost useful message of an error, unwrapping anyio's exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, MCPError) and error.code == types.CONNECTION_CLOSED:
        return "the server exited or closed the connection during the handshake"
    if isinstance(error, httpx2.ConnectError):
        return f"cannot connect: {error}"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({type(error).__name__})"
    text = str(error) or type(error).__name__
    return text if isinstance(error, MCPError) else f"{type(error).__name__}: {text}"


class _WatchedReadStream:
    """Delegates to a transport's read stream and reports when it ends (EOF or closed)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    def __getattr__(self, name: str) -> Any:  # e.g. ``last_context`` of context-aware streams
        return getattr(self._inner, name)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.aclose()
