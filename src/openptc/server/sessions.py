"""The sessions a server holds, whose token owns each, and when an idle one is closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from openptc.sandbox.base import Sandbox, Session


class SessionLimitReached(Exception):
    """The token already holds as many sessions as it may."""


def _limit_words(held: int, starting: int, limit: int) -> str:
    """Why a session was refused; short enough for a WebSocket close reason (123 bytes)."""
    count = held + starting
    still = f", {starting} of them still starting" if starting else ""
    return (
        f"this token already holds {count} session{'s' * (count != 1)}{still} "
        f"(its limit is {limit}); close one first"
    )


@dataclass
class HostedSession:
    session: Session
    owner: str
    last_used: float = field(default_factory=time.monotonic)
    running: asyncio.Task[None] | None = None  # the execution in flight, to cancel it
    # Ends the session's connection when the server closes the session (idle, shutdown).
    hang_up: Callable[[], Awaitable[None]] | None = None

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def executing(self) -> bool:
        return self.running is not None


class SessionRegistry:
    def __init__(self, sandbox: Sandbox, *, per_token: int, idle_s: float) -> None:
        self._sandbox = sandbox
        self._per_token = per_token
        self._idle_s = idle_s
        self._sessions: dict[str, HostedSession] = {}
        self._starting: dict[str, int] = {}  # places reserved by sessions still starting

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def executing(self) -> int:
        return sum(1 for s in self._sessions.values() if s.executing)

    async def create(self, owner: str) -> HostedSession:
        # Reserve the place first (count and reserve in one step: concurrent creates cannot
        # overshoot), then start the interpreter without holding anyone else up.
        held = sum(1 for s in self._sessions.values() if s.owner == owner)
        starting = self._starting.get(owner, 0)
        if held + starting >= self._per_token:
            raise SessionLimitReached(_limit_words(held, starting, self._per_token))
        self._starting[owner] = self._starting.get(owner, 0) + 1
        try:
            hosted = HostedSession(await self._sandbox.open_session(), owner)
        finally:
            self._starting[owner] -= 1
        self._sessions[hosted.id] = hosted
        return hosted

    async def close(self, hosted: HostedSession) -> None:
        if self._sessions.pop(hosted.id, None) is None:
            return
        if hosted.hang_up is not None:  # the client first hears why, then the interpreter goes
            with contextlib.suppress(Exception):
                await hosted.hang_up()
        with contextlib.suppress(Exception):
            await hosted.session.close()

    async def reap_idle(self) -> int:
        """Close sessions nobody used for ``idle_s`` (and not executing)."""
        cutoff = time.monotonic() - self._idle_s
        idle = [s for s in self._sessions.values() if not s.executing and s.last_used < cutoff]
        for hosted in idle:
            await self.close(hosted)
        return len(idle)

    async def close_all(self) -> None:
        for hosted in list(self._sessions.values()):
            await self.close(hosted)
