"""Sessions on a sandbox server (``ptc sandbox-server``), for orchestrators that stay small.

The program runs on the server; its tool calls come back over the session's WebSocket and run
here, where the tools and their secrets are. Connect and call timeouts bound every wait on the
server; a server or connection that goes away mid-execution is a ``SessionLost`` naming what
happened, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from openptc.sandbox import protocol
from openptc.sandbox.base import (
    BlockAwareToolHost,
    Execution,
    Isolation,
    SandboxError,
    SessionClosed,
    ToolCallError,
    ToolCallRecord,
    ToolHost,
)
from openptc.sandbox.host_calls import run_tool_call
from openptc.sandbox.remote_protocol import SESSION_PATH, execution_from_json, isolation_from_json

# How long past an execution's own timeout the server may take to report its end.
REPORT_GRACE_S = 10.0
CLOSE_TIMEOUT_S = 5.0


class SessionLost(SandboxError):
    """The server or the connection went away; the session and its variables are gone."""


class RemoteSandbox:
    """A ``Sandbox`` whose sessions live on a sandbox server at ``url``."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        connect_timeout_s: float = 10.0,
        call_timeout_s: float = 30.0,
        execution_timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._connect_timeout_s = connect_timeout_s
        self._call_timeout_s = call_timeout_s
        self.execution_timeout_s = execution_timeout_s
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(call_timeout_s, connect=connect_timeout_s),
        )
        self._isolation: Isolation | None = None
        self._sessions: set[RemoteSession] = set()

    async def __aenter__(self) -> RemoteSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def isolation(self) -> Isolation:
        if self._isolation is None:
            raise SandboxError("the remote sandbox is not started; use `async with` or start()")
        return self._isolation

    async def start(self) -> None:
        """Check the server and the token, and learn the server's isolation."""
        if self._isolation is None:
            info = await self._request("GET", "/v1/info")
            self._isolation = isolation_from_json(info["isolation"])

    async def open_session(self) -> RemoteSession:
        """Connect: the connection is the session, on whichever server replica it reached."""
        await self.start()
        ws_url = self.url.replace("http", "ws", 1) + SESSION_PATH
        try:
            connection = await websockets.connect(
                ws_url,
                additional_headers={"authorization": f"Bearer {self._token}"},
                open_timeout=self._connect_timeout_s,
                max_size=protocol.MAX_MESSAGE_BYTES,
                ping_interval=20,
            )
        except TimeoutError:
            raise SandboxError(
                f"the sandbox server at {self.url} did not accept a connection within "
                f"{self._connect_timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise SandboxError(
                f"cannot reach the sandbox server at {self.url}: {exc}; is it running?"
            ) from None
        except WebSocketException as exc:
            raise SandboxError(f"could not open a session on {self.url}: {exc}") from None
        try:
            hello = json.loads(await asyncio.wait_for(connection.recv(), self._connect_timeout_s))
        except BaseException as exc:
            # Connected but no session: close, or the server would keep it (and a place) alive.
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_S))
            raise self._refusal(exc) from None
        session = RemoteSession(self, str(hello["id"]), connection)
        self._sessions.add(session)
        return session

    def _refusal(self, exc: BaseException) -> BaseException:
        """Why the server did not open the session, in words."""
        if isinstance(exc, ConnectionClosed):
            closed = exc
            reason = closed.rcvd.reason if closed.rcvd is not None else str(closed)
            hint = " (check the token)" if closed.rcvd and closed.rcvd.code == 4401 else ""
            return SandboxError(
                f"the sandbox server at {self.url} refused the session: {reason}{hint}"
            )
        if isinstance(exc, TimeoutError):
            return SandboxError(
                f"the sandbox server at {self.url} did not open a session within "
                f"{self._connect_timeout_s:g} s"
            )
        if isinstance(exc, Exception):
            return SandboxError(f"could not open a session on {self.url}: {exc}")
        return exc  # cancelled: stays cancelled

    async def aclose(self) -> None:
        for session in list(self._sessions):
            await session.close()
        await self._http.aclose()

    async def _request(self, method: str, path: str) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path)
        except httpx.TimeoutException:
            raise SandboxError(
                f"the sandbox server at {self.url} did not answer {method} {path} in time"
            ) from None
        except httpx.TransportError as exc:
            raise SandboxError(
                f"cannot reach the sandbox server at {self.url}: {exc}; is it running?"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                detail = response.text[:200]
            hint = " (check the token)" if response.status_code == 401 else ""
            raise SandboxError(
                f"the sandbox server refused {method} {path}: {response.status_code} {detail}{hint}"
            )
        return response.json() if response.content else {}

    def _forget(self, session: RemoteSession) -> None:
        self._sessions.discard(session)


class RemoteSession:
    """One session on the server: a WebSocket that carries executions and their tool calls."""

    def __init__(self, sandbox: RemoteSandbox, session_id: str, connection: ClientConnection):
        self._sandbox = sandbox
        self._id = session_id
        self._connection = connection
        self._lock = asyncio.Lock()
        self._closed = False
        self._lost: str | None = None
        self._executions = 0

    @property
    def id(self) -> str:
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed or self._lost is not None

    async def execute(
        self,
        code: str,
        tools: ToolHost | None = None,
        *,
        timeout_s: float | None = None,
        output_bytes: int | None = None,
    ) -> Execution:
        async with self._lock:
            if self._closed:
                raise SessionClosed(f"session {self._id} is closed; open a new session")
            if self._lost is not None:
                raise SessionLost(self._lost)
            self._executions += 1
            signatures = list(tools.signatures()) if tools is not None else []
            message: dict[str, Any] = {
                "type": "execute",
                "id": self._executions,
                "code": code,
                "tools": [{"name": s.name, "params": list(s.params)} for s in signatures],
                "report_blocked": isinstance(tools, BlockAwareToolHost),
            }
            wall = timeout_s if timeout_s is not None else self._sandbox.execution_timeout_s
            message["timeout_s"] = wall  # the server caps it at its own maximum
            if output_bytes is not None:
                message["output_bytes"] = output_bytes
            limit = wall + REPORT_GRACE_S
            return await self._run(message, tools, limit)

    async def _run(
        self, message: dict[str, Any], tools: ToolHost | None, limit: float
    ) -> Execution:
        records: list[ToolCallRecord] = []
        calls: set[asyncio.Task[None]] = set()
        deadline = time.monotonic() + limit
        try:
            await self._connection.send(json.dumps(message))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                reply = json.loads(await asyncio.wait_for(self._connection.recv(), remaining))
                kind = reply.get("type")
                owner = reply.get("id") if kind == "done" else reply.get("execution")
                if owner not in (None, message["id"]):
                    continue  # left over from an abandoned execution
                if kind == "tool_calls":
                    for call_id, tool, args in protocol.parse_tool_calls(reply):
                        task = asyncio.create_task(
                            self._call(tools, message["id"], call_id, tool, args, records)
                        )
                        calls.add(task)
                        task.add_done_callback(calls.discard)
                elif kind == "blocked" and isinstance(tools, BlockAwareToolHost):
                    asyncio.get_running_loop().call_soon(tools.program_blocked)
                elif kind == "done":
                    ordered = tuple(sorted(records, key=lambda r: r.call_id))
                    return execution_from_json(reply["execution"], ordered)
                elif kind == "error":
                    raise SandboxError(
                        f"the sandbox server refused the execution: {reply.get('message')}"
                    )
        except TimeoutError:  # before OSError, of which it is a subclass
            raise await self._lose(
                f"the sandbox server at {self._sandbox.url} did not report the end of the "
                f"execution within {limit:g} s"
            ) from None
        except ConnectionClosed as exc:
            why = exc.rcvd.reason if exc.rcvd is not None and exc.rcvd.reason else str(exc)
            raise await self._lose(
                f"the connection to the sandbox server at {self._sandbox.url} was lost "
                f"during the execution ({why})"
            ) from None
        except OSError as exc:
            raise await self._lose(
                f"the connection to the sandbox server at {self._sandbox.url} was lost "
                f"during the execution ({exc})"
            ) from None
        except SandboxError:
            raise  # the server refused this execution; the session itself is fine
        except BaseException:
            # Cancelled (or anything unexpected): tell the server to stop the execution; the
            # session lives on with a fresh interpreter. If even that fails, the session ends.
            await asyncio.shield(self._cancel(message["id"]))
            raise
        finally:
            for task in list(calls):
                task.cancel()
            if calls:
                await asyncio.gather(*calls, return_exceptions=True)

    async def _cancel(self, execution_id: int) -> None:
        try:
            cancel = json.dumps({"type": "cancel", "execution": execution_id})
            await asyncio.wait_for(self._connection.send(cancel), CLOSE_TIMEOUT_S)
        except Exception:
            await self._lose("the execution was abandoned and the server could not be told")

    async def _call(
        self,
        tools: ToolHost | None,
        execution_id: int,
        call_id: int,
        tool: str,
        args: dict[str, Any],
        records: list[ToolCallRecord],
    ) -> None:
        envelope = {"type": "tool_result", "execution": execution_id, "id": call_id}

        def value(v: Any) -> str:
            try:
                return json.dumps({**envelope, "ok": True, "value": v}, allow_nan=False)
            except (TypeError, ValueError) as exc:  # the program sees it, as on the local bridge
                raise ToolCallError(f"the tool returned a value that is not JSON: {exc}") from None

        def error(e: ToolCallError) -> str:
            failure = {"type": e.kind, "message": str(e)}
            return json.dumps({**envelope, "ok": False, "error": failure})

        data = await run_tool_call(
            tools, call_id, tool, args, records=records, on_value=value, on_error=error
        )
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(data)

    async def _lose(self, reason: str) -> SessionLost:
        """End the session: close the connection (the server frees its place) and say why."""
        if self._lost is None:
            self._lost = f"{reason}; the session and its variables are gone, open a new session"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._connection.close(), CLOSE_TIMEOUT_S)
        return SessionLost(self._lost)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sandbox._forget(self)
        with contextlib.suppress(Exception):
            await self._connection.close()
