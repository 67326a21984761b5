"""The local backend: sandboxes as isolated processes on this machine, with a warm pool.

``LocalSandbox`` probes the isolation once (bubblewrap where it works, a bare process with a
loud report where it does not), builds the runtime bundle, and starts interpreters as
``Worker`` processes; the warm pool, sessions, restarts and idle reaping are the shared
``PooledSandbox``'s.
"""

from __future__ import annotations

import asyncio

from openptc.sandbox.base import Isolation, Limits
from openptc.sandbox.bundle import RuntimeBundle, build_bundle
from openptc.sandbox.local.isolation import (
    Interpreter,
    IsolationChoice,
    IsolationMode,
    choose_isolation,
    with_cgroup,
)
from openptc.sandbox.local.worker import Worker
from openptc.sandbox.pool import RESTART_NOTICE, PooledSandbox, PooledSession

__all__ = ["RESTART_NOTICE", "LocalSandbox", "LocalSession"]


class LocalSession(PooledSession[Worker]):
    """A live local interpreter; variables, imports and files persist between executions."""

    @property
    def pid(self) -> int:
        """Host pid of the session's outermost sandbox process (for measurement and kill)."""
        return self.worker.pid


class LocalSandbox(PooledSandbox[Worker]):
    """Sessions in isolated local processes (bubblewrap where it works), started ahead of time.

    Use as ``async with LocalSandbox() as sandbox: session = await sandbox.open_session()``.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        pool_size: int = 2,
        isolation: IsolationMode = "auto",
        idle_timeout_s: float = 600.0,
    ) -> None:
        super().__init__(limits, pool_size=pool_size, idle_timeout_s=idle_timeout_s)
        self._mode: IsolationMode = isolation
        self._interpreter = Interpreter.current()
        self._bundle: RuntimeBundle | None = None
        self._choice: IsolationChoice | None = None

    async def __aenter__(self) -> LocalSandbox:
        await self.start()
        return self

    async def open_session(self) -> LocalSession:
        session = await super().open_session()
        assert isinstance(session, LocalSession)
        return session

    def _new_session(self, worker: Worker) -> LocalSession:
        return LocalSession(self, worker)

    async def _prepare(self) -> Isolation:
        choice = await asyncio.to_thread(choose_isolation, self._mode, self._interpreter)
        self._choice = await asyncio.to_thread(with_cgroup, choice)
        self._bundle = await asyncio.to_thread(build_bundle)
        return self._choice.isolation

    async def _spawn(self) -> Worker:
        assert self._choice is not None and self._bundle is not None
        return await Worker.start(self._choice, self._interpreter, self.limits, self._bundle)

    async def _release(self) -> None:
        if self._bundle is not None:
            self._bundle.remove()
