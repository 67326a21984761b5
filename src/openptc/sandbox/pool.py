"""Sessions over a warm pool of started interpreters, for any backend that starts them.

Starting an interpreter costs milliseconds as a local process and a few hundred as a container;
a pool keeps ``pool_size`` of them started ahead of demand, hands them out as sessions, replaces
one that died (with a notice, since its state is gone) and reaps sessions left idle. A backend
says only how to get ready (``_prepare``) and how to start one interpreter (``_spawn``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from openptc.sandbox.base import (
    Execution,
    Isolation,
    Limits,
    SandboxError,
    SessionClosed,
    ToolHost,
)

REFILL_DELAY_S = 0.05
RESTART_NOTICE = (
    "the sandbox had stopped (timeout or crash) and was restarted before this run: "
    "variables, imports and files from earlier runs are gone"
)


class PoolWorker(Protocol):
    """What a pool needs of a started interpreter (``BridgeWorker`` is one)."""

    @property
    def alive(self) -> bool: ...

    async def kill(self) -> None: ...

    async def execute(self, code: str, tools: ToolHost | None, limits: Limits) -> Execution: ...


W = TypeVar("W", bound=PoolWorker)


class PooledSession(Generic[W]):
    """A live interpreter; executions run one at a time, state persists between them."""

    def __init__(self, sandbox: PooledSandbox[W], worker: W) -> None:
        self._sandbox = sandbox
        self._worker = worker
        self._lock = asyncio.Lock()
        self._closed = False
        self._id = "sess_" + secrets.token_urlsafe(12)
        self.last_used = time.monotonic()

    @property
    def id(self) -> str:
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def worker(self) -> W:
        """The interpreter serving this session now (replaced after a timeout or crash)."""
        return self._worker

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def execute(
        self,
        code: str,
        tools: ToolHost | None = None,
        *,
        timeout_s: float | None = None,
        output_bytes: int | None = None,
    ) -> Execution:
        """Run ``code``; only its output, error and tool-call log come back.

        ``timeout_s`` and ``output_bytes`` may lower the sandbox's limits for this run only.
        """
        async with self._lock:
            if self._closed:
                raise SessionClosed(f"session {self._id} is closed; open a new session")
            notices: tuple[str, ...] = ()
            if not self._worker.alive:
                await self._worker.kill()
                fresh = await self._sandbox._take_worker()
                if self._closed:  # closed while the new interpreter started: it is nobody's
                    await fresh.kill()
                    raise SessionClosed(f"session {self._id} was closed while restarting")
                self._worker = fresh
                notices = (RESTART_NOTICE,)
            effective = self._sandbox.limits.for_execution(timeout_s, output_bytes)
            try:
                result = await self._worker.execute(code, tools, effective)
            finally:
                self.last_used = time.monotonic()
            if notices:
                result = dataclasses.replace(result, notices=notices + result.notices)
            return result

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sandbox._forget(self)
        await self._worker.kill()


class PooledSandbox(ABC, Generic[W]):
    """A factory of sessions with a warm pool; use ``async with`` (or ``start``/``aclose``)."""

    def __init__(self, limits: Limits | None, *, pool_size: int, idle_timeout_s: float) -> None:
        self.limits = limits or Limits()
        self.pool_size = pool_size
        self.idle_timeout_s = idle_timeout_s
        self._isolation: Isolation | None = None
        self._pool: list[W] = []
        self._sessions: set[PooledSession[W]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._starting = 0
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self._start_lock = asyncio.Lock()

    # -- what a backend adds --------------------------------------------------------------------
    @abstractmethod
    async def _prepare(self) -> Isolation:
        """Get ready to start interpreters (probe, connect, check); say how isolated they are."""

    @abstractmethod
    async def _spawn(self) -> W:
        """Start one interpreter and wait until it is ready; SandboxError if it cannot."""

    async def _release(self) -> None:
        """Free what ``_prepare`` took, after every interpreter is gone."""

    def _new_session(self, worker: W) -> PooledSession[W]:
        """A session around ``worker`` (a backend may return its own session type)."""
        return PooledSession(self, worker)

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> PooledSandbox[W]:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def isolation(self) -> Isolation:
        if self._isolation is None:
            raise SandboxError("the sandbox is not started; use `async with` or await start()")
        return self._isolation

    async def start(self) -> None:
        """Get ready once and start filling the warm pool."""
        async with self._start_lock:
            if self._closed:
                raise SandboxError("this sandbox is closed")
            if self._isolation is None:
                self._isolation = await self._prepare()
                self._refill()

    async def open_session(self) -> PooledSession[W]:
        if self._closed:
            raise SandboxError("this sandbox is closed")
        await self.start()
        worker = await self._take_worker()
        if self._closed:  # closed while the interpreter started: no session may outlive it
            await worker.kill()
            raise SandboxError("this sandbox is closed")
        session = self._new_session(worker)
        self._sessions.add(session)
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_idle())
        return session

    async def aclose(self) -> None:
        """Close every session and pool worker; no interpreter outlives this call."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        sessions, self._sessions = list(self._sessions), set()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        pool, self._pool = self._pool, []
        await asyncio.gather(*(w.kill() for w in pool), return_exceptions=True)
        async with self._start_lock:  # a start still under way finishes first
            await self._release()

    # -- pool -----------------------------------------------------------------------------------
    def pool_ready(self) -> bool:
        """Whether every warm-pool slot holds a started interpreter."""
        return len(self._pool) >= self.pool_size

    async def _take_worker(self) -> W:
        """A ready interpreter from the pool, or a fresh one; the pool refills behind us."""
        worker: W | None = None
        while self._pool and worker is None:
            candidate = self._pool.pop(0)
            if candidate.alive:
                worker = candidate
            else:
                await candidate.kill()
        if worker is None:
            worker = await self._spawn()
        # Refill a moment later: starting an interpreter right now would compete with the
        # program about to run on the worker just handed out.
        asyncio.get_running_loop().call_later(REFILL_DELAY_S, self._refill)
        return worker

    def _refill(self) -> None:
        if self._closed:
            return
        missing = self.pool_size - len(self._pool) - self._starting
        for _ in range(max(0, missing)):
            self._starting += 1
            task = asyncio.create_task(self._add_to_pool())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _add_to_pool(self) -> None:
        try:
            worker = await self._spawn()
        except SandboxError:
            return  # the next open_session spawns directly and reports the error
        finally:
            self._starting -= 1
        if self._closed:
            await worker.kill()
        else:
            self._pool.append(worker)

    # -- sessions -------------------------------------------------------------------------------
    def _forget(self, session: PooledSession[W]) -> None:
        self._sessions.discard(session)

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(self.idle_timeout_s / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in list(self._sessions):
                if not session.busy and now - session.last_used > self.idle_timeout_s:
                    with contextlib.suppress(Exception):
                        await session.close()
