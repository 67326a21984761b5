"""``ptc sandbox-server``: uvicorn with a graceful drain on SIGTERM.

The first SIGTERM (a deploy, a scale-in) marks the server draining: ``/readyz`` answers 503 so
the orchestrator stops sending new work, new sessions and executions are refused, and running
executions finish — for at most ``drain_timeout_s`` — before uvicorn shuts down. A second
signal stops at once.

uvicorn logs through openptc's JSON lines (``logs.configure``), and serves WebSockets with the
``websockets`` library's sans-I/O implementation: its older one is deprecated and warned about on
every start.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import uvicorn
import uvicorn.config
import websockets  # noqa: F401 - uvicorn imports it only at startup; a missing one fails now

from openptc.draining import DrainingServer
from openptc.hardening import make_undumpable
from openptc.sandbox import protocol
from openptc.server.app import ServerState, create_server_app
from openptc.server.config import ServerConfig

log = logging.getLogger("openptc.server")

# Whatever the local bridge carries (a tool result of up to MAX_MESSAGE_BYTES) must fit in one
# WebSocket message, with room for its envelope.
WS_MAX_BYTES = protocol.MAX_MESSAGE_BYTES + 1024 * 1024

# Newer uvicorn has a sans-I/O implementation and deprecates the older one (warning on every
# start); an older uvicorn has only the older one.
WS_IMPLEMENTATION: Literal["websockets-sansio", "websockets"] = (
    "websockets-sansio" if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS else "websockets"
)


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
        log_config=None,  # keep the JSON handlers ``configure`` installed
        lifespan="on",
        ws=WS_IMPLEMENTATION,
        ws_max_size=WS_MAX_BYTES,
    )

    def find(state: Any) -> ServerState | None:
        found = getattr(state, "server", None)
        return found if isinstance(found, ServerState) else None

    DrainingServer(uvicorn_config, config.drain_timeout_s, find, log).run()
