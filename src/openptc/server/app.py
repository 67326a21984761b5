"""The sandbox server's HTTP and WebSocket surface.

A WebSocket to ``/v1/sessions`` is a session: it opens with the connection (on whichever
replica the connection reached), runs programs one at a time, relays their tool calls to the
caller, and closes with it. ``/healthz``, ``/readyz`` and ``/metrics`` serve the orchestrator
(Kubernetes, ECS, Prometheus); ``/v1/info`` tells a client the isolation it will get.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from openptc.sandbox.base import Sandbox
from openptc.sandbox.choice import make_sandbox
from openptc.sandbox.remote_protocol import SESSION_PATH, execution_to_json, isolation_to_json
from openptc.server.client_messages import (
    CLIENT_TYPES,
    BadMessage,
    ExecuteRequest,
    parse_execute,
    read_frame,
)
from openptc.server.config import ServerConfig
from openptc.server.metrics import ServerMetrics
from openptc.server.relay import RelayToolHost
from openptc.server.sessions import HostedSession, SessionLimitReached, SessionRegistry

log = logging.getLogger("openptc.server")

REAP_INTERVAL_S = 5.0
# WebSocket close codes in the private range, named after the HTTP status they stand for.
CLOSE_UNAUTHORIZED = 4401
CLOSE_IDLE = 4408
CLOSE_LIMIT = 4429
CLOSE_DRAINING = 4503


@dataclass
class ServerState:
    config: ServerConfig
    sandbox: Sandbox
    sessions: SessionRegistry
    metrics: ServerMetrics
    draining: bool = False
    ready: bool = False
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def busy(self) -> int:
        """Executions still running: what a drain waits for."""
        return self.sessions.executing


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _bearer(connection: HTTPConnection) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _make_sandbox(config: ServerConfig) -> Sandbox:
    return make_sandbox(
        config.backend,
        config.sandbox_limits(),
        pool_size=config.pool_size,
        idle_timeout_s=config.session_idle_s * 2,
    )


def create_server_app(config: ServerConfig, *, sandbox: Sandbox | None = None) -> Starlette:
    """The sandbox server as an ASGI app (``ptc sandbox-server`` serves it with uvicorn)."""
    holder: dict[str, ServerState] = {}

    def state() -> ServerState:
        return holder["state"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        chosen = sandbox or _make_sandbox(config)
        start = getattr(chosen, "start", None)
        if start is not None:
            await start()
        registry = SessionRegistry(
            chosen, per_token=config.max_sessions_per_token, idle_s=config.session_idle_s
        )
        current = ServerState(config, chosen, registry, ServerMetrics(), ready=True)
        holder["state"] = current
        app.state.server = current  # the drain-aware runner reads it
        reaper = asyncio.create_task(_reap_forever(current))
        log.info("sandbox server ready", extra={"backend": config.backend})
        try:
            yield
        finally:
            current.ready = False
            reaper.cancel()
            await asyncio.gather(reaper, *current.background, return_exceptions=True)
            await registry.close_all()
            if sandbox is None:
                await chosen.aclose()

    def owner(connection: HTTPConnection) -> str | None:
        return state().config.owner_of(_bearer(connection))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        current = state()
        if current.draining:
            return _error(503, "draining", "the server is draining; send new sessions elsewhere")
        if not current.ready:
            return _error(503, "starting", "the server is not ready yet")
        return JSONResponse({"status": "ready", "sessions": len(current.sessions)})

    async def metrics(request: Request) -> Response:
        current = state()
        current.metrics.sessions_active.set(len(current.sessions))
        return Response(current.metrics.render(), media_type="text/plain; version=0.0.4")

    async def info(request: Request) -> Response:
        if owner(request) is None:
            return _error(401, "unauthorized", "send a valid token as 'Authorization: Bearer …'")
        current = state()
        return JSONResponse(
            {
                "isolation": isolation_to_json(current.sandbox.isolation),
                "backend": current.config.backend,
                "draining": current.draining,
            }
        )

    async def session_socket(websocket: WebSocket) -> None:
        """One connection is one session, on this replica: a load balancer that spreads
        connections cannot split a session from its interpreter."""
        current = state()
        await websocket.accept()
        who = owner(websocket)
        if who is None:
            await websocket.close(
                CLOSE_UNAUTHORIZED, "send a valid token as 'Authorization: Bearer …'"
            )
            return
        if current.draining:
            await websocket.close(
                CLOSE_DRAINING, "the server is draining; open the session elsewhere"
            )
            return
        try:
            hosted = await current.sessions.create(who)
        except SessionLimitReached as exc:
            await websocket.close(CLOSE_LIMIT, str(exc))
            return
        current.metrics.sessions_total.inc()
        log.info("session opened", extra={"session_id": hosted.id})

        async def hang_up() -> None:
            await websocket.close(CLOSE_IDLE, "the session was closed by the server (idle)")

        hosted.hang_up = hang_up
        try:
            await websocket.send_text(
                json.dumps(
                    {
                        "type": "session",
                        "id": hosted.id,
                        "isolation": isolation_to_json(current.sandbox.isolation),
                    }
                )
            )
            await _serve_socket(websocket, hosted, current)
        finally:
            hosted.hang_up = None  # the connection is already gone
            await current.sessions.close(hosted)
            log.info("session closed", extra={"session_id": hosted.id})

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/v1/info", info),
        WebSocketRoute(SESSION_PATH, session_socket),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _reap_forever(state: ServerState) -> None:
    while True:
        await asyncio.sleep(min(REAP_INTERVAL_S, state.config.session_idle_s / 2))
        with contextlib.suppress(Exception):
            reaped = await state.sessions.reap_idle()
            if reaped:
                log.info("idle sessions closed", extra={"count": reaped})


async def _serve_socket(websocket: WebSocket, hosted: HostedSession, state: ServerState) -> None:
    """One connection: executions one at a time, tool results routed to the running one."""
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sender = asyncio.create_task(_send_forever(websocket, outgoing))
    relay: RelayToolHost | None = None
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                break
            try:
                relay = await _handle(read_frame(frame), hosted, state, outgoing, relay)
            except BadMessage as exc:  # a malformed message, not a crash: say what was wrong
                outgoing.put_nowait(_socket_error("bad_message", str(exc)))
            except Exception:  # a bug of the server's own: logged, and the session goes on
                log.exception("could not handle a message", extra={"session_id": hosted.id})
                outgoing.put_nowait(
                    _socket_error("server_error", "the server failed to handle the message")
                )
    except WebSocketDisconnect:
        pass
    finally:
        if relay is not None:
            relay.disconnect()
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


async def _handle(
    message: dict[str, Any],
    hosted: HostedSession,
    state: ServerState,
    outgoing: asyncio.Queue[dict[str, Any]],
    relay: RelayToolHost | None,
) -> RelayToolHost | None:
    """One client message; returns the relay of the execution running afterwards."""
    kind = message["type"]
    if kind == "tool_result":
        if relay is None:
            raise BadMessage("tool_result before any execute: no tool call waits for it")
        if not relay.resolve(message):  # late (an abandoned execution's) or a duplicate
            log.debug("tool result dropped", extra={"session_id": hosted.id})
    elif kind == "cancel":
        # The client gave the execution up: stop it (the interpreter restarts) before
        # anything else it sends is read. A cancel of an execution that already ended is
        # no error: the client could not know.
        running = hosted.running
        if (
            running is not None
            and relay is not None
            and message.get("execution") == relay.execution_id
        ):
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    elif kind == "execute":
        request = parse_execute(message)
        if hosted.executing:
            outgoing.put_nowait(_socket_error("busy", "an execution is already running"))
        elif state.draining:
            outgoing.put_nowait(
                _socket_error("draining", "the server is draining; no new executions")
            )
        else:
            return _start_execution(request, hosted, state, outgoing)
    else:
        raise BadMessage(
            f"unexpected message type {kind[:80]!r}; a client sends {', '.join(CLIENT_TYPES)}"
        )
    return relay


def _start_execution(
    request: ExecuteRequest,
    hosted: HostedSession,
    state: ServerState,
    outgoing: asyncio.Queue[dict[str, Any]],
) -> RelayToolHost:
    relay = RelayToolHost(
        request.tools,
        outgoing,
        execution_id=request.id,
        report_blocked=request.report_blocked,
    )
    hosted.last_used = time.monotonic()

    async def run() -> None:
        try:
            execution = await hosted.session.execute(
                request.code,
                relay,
                timeout_s=request.timeout_s,
                output_bytes=request.output_bytes,
            )
            if relay.disconnected:  # the client left: not the sandbox's failure
                state.metrics.executions_total.labels(outcome="disconnected").inc()
            else:
                state.metrics.observe(execution)
            outgoing.put_nowait(
                {"type": "done", "id": request.id, "execution": execution_to_json(execution)}
            )
        except Exception as exc:
            outgoing.put_nowait(_socket_error("sandbox_failed", f"the sandbox failed: {exc}"))
        finally:
            hosted.running = None
            hosted.last_used = time.monotonic()

    task = asyncio.create_task(run())
    hosted.running = task
    state.background.add(task)
    task.add_done_callback(state.background.discard)
    return relay


def _socket_error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


async def _send_forever(websocket: WebSocket, outgoing: asyncio.Queue[dict[str, Any]]) -> None:
    with contextlib.suppress(Exception):
        while True:
            await websocket.send_text(json.dumps(await outgoing.get(), separators=(",", ":")))
