"""uvicorn that drains on its first signal, for ``ptc serve`` and ``ptc sandbox-server`` alike.

A deploy or a scale-in sends SIGTERM: the server marks itself draining (readiness answers 503
and new work is refused, each server in its own words), waits — at most ``drain_timeout_s`` —
for the work in flight to finish, and exits 0. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

import uvicorn


class Drainable(Protocol):
    """What a server's app state says while draining: the switch, and the work still busy."""

    draining: bool

    @property
    def busy(self) -> int: ...


class DrainingServer(uvicorn.Server):
    """uvicorn whose first signal drains instead of stopping (and the exit status is 0).

    ``find`` picks the ``Drainable`` out of the loaded app's ``state``; the app is built inside
    uvicorn, so it is looked up when the signal comes.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        drain_timeout_s: float,
        find: Callable[[Any], Drainable | None],
        log: logging.Logger,
    ) -> None:
        super().__init__(config)
        self._drain_timeout_s = drain_timeout_s
        self._find = find
        self._log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        target = self._target()
        loop = self._loop
        if self._draining or target is None or loop is None:
            super().handle_exit(sig, frame)  # a second signal, or not started: stop at once
            return
        self._draining = True
        target.draining = True
        self._log.info("draining", extra={"busy": target.busy})
        loop.call_soon_threadsafe(lambda: loop.create_task(self._drain(target)))

    def _target(self) -> Drainable | None:
        app = self.config.loaded_app if self.config.loaded else None
        while app is not None and not hasattr(app, "state"):
            app = getattr(app, "app", None)  # through uvicorn's middleware wrappers
        state = getattr(app, "state", None)
        return self._find(state) if state is not None else None

    async def _drain(self, target: Drainable) -> None:
        deadline = time.monotonic() + self._drain_timeout_s
        while target.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if target.busy:
            self._log.warning(
                "drain timed out; stopping work still in flight", extra={"busy": target.busy}
            )
        else:
            self._log.info("drained")
        self.should_exit = True  # a clean stop (exit status 0), not the signal re-raised
