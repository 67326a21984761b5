"""``ptc sandbox-server``: uvicorn with a graceful drain on SIGTERM.

The first SIGTERM (a deploy, a scale-in) marks the server draining: ``/readyz`` answers 503 so
the orchestrator stops sending new work, new sessions and executions are refused, and running
executions finish — for at most ``drain_timeout_s`` — before uvicorn shuts down. A second
signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import FrameType

import uvicorn

from openptc.hardening import make_undumpable
from openptc.sandbox import protocol
from openptc.server.app import ServerState, create_server_app
from openptc.server.config import ServerConfig

log = logging.getLogger("openptc.server")

# Whatever the local bridge carries (a tool result of up to MAX_MESSAGE_BYTES) must fit in one
# WebSocket message, with room for its envelope.
WS_MAX_BYTES = protocol.MAX_MESSAGE_BYTES + 1024 * 1024


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = self._state()
        if self._draining or state is None or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        state.draining = True
        log.info("draining", extra={"executing": state.sessions.executing})
        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._drain()))  # type: ignore[union-attr]

    def _state(self) -> ServerState | None:
        app = self.config.loaded_app if self.config.loaded else None
        while app is not None and not hasattr(app, "state"):
            app = getattr(app, "app", None)  # through uvicorn's middleware wrappers
        return getattr(getattr(app, "state", None), "server", None)

    async def _drain(self) -> None:
        state = self._state()
        deadline = time.monotonic() + self._drain_timeout_s
        while state is not None and state.sessions.executing and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        log.info("drained", extra={"executing": state.sessions.executing if state else 0})
        self.should_exit = True  # a clean stop (exit status 0), not the signal re-raised


def run_server(config: ServerConfig, host: str, port: int, log_level: str = "info") -> None:
    from openptc.logs import configure

    configure(log_level, "openptc.server")
    if not make_undumpable():
        log.warning("could not mark the server undumpable; same-user programs may read its env")
    app = create_server_app(config)
    uvicorn_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        ws="websockets",
        ws_max_size=WS_MAX_BYTES,
    )
    DrainingServer(uvicorn_config, config.drain_timeout_s).run()
