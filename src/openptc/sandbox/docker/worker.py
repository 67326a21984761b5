"""One sandbox container and its bridge over the container's attached streams.

The container is created, attached and started; the runtime inside speaks the same bridge as a
local one, on its stdin and stdout; stderr is stray output. Stopping it means removing it (the
engine kills it first), so a stopped worker leaves nothing behind. Tool calls, executions and
timeouts are ``BridgeWorker``'s, exactly as for a local process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING

from openptc.sandbox.base import ErrorKind, ExecutionError, Isolation, Limits, SandboxError
from openptc.sandbox.bridge import RESTARTED, BridgeWorker, WorkerDied
from openptc.sandbox.docker.container import ContainerSpec
from openptc.sandbox.docker.stream import AttachProtocol

if TYPE_CHECKING:
    from openptc.sandbox.docker.engine import Engine, ExitState

START_TIMEOUT_S = 60.0

log = logging.getLogger("openptc.sandbox")


class DockerWorker(BridgeWorker):
    """A started sandbox container, ready to execute programs one at a time."""

    def __init__(
        self, engine: Engine, container_id: str, isolation: Isolation, limits: Limits
    ) -> None:
        super().__init__(isolation, limits)
        self.engine = engine
        self.container_id = container_id
        self._transport: asyncio.Transport | None = None
        self._exit: ExitState | None = None
        self._stopping = False  # we stop it: its death needs no explanation
        self._removed = False
        self._kill_task: asyncio.Future[None] | None = None

    @classmethod
    async def start(
        cls, engine: Engine, spec: ContainerSpec, isolation: Isolation, limits: Limits
    ) -> DockerWorker:
        """Create, attach and start a container, and wait for the runtime's ``ready``."""
        container_id = await _create(engine, spec)
        worker = cls(engine, container_id, isolation, limits)
        try:
            await worker._attach()
            await engine.run(engine.start, container_id)
            await worker.wait_ready(START_TIMEOUT_S)
        except (TimeoutError, WorkerDied) as exc:
            detail = worker.stray.take().strip() or str(exc) or "no output"
            await worker.kill()
            raise SandboxError(f"the sandbox container did not start: {detail}") from None
        except BaseException:
            await asyncio.shield(worker.kill())  # failed or cancelled: leave no container
            raise
        return worker

    async def _attach(self) -> None:
        sock = await self.engine.run(self.engine.attach, self.container_id)
        protocol = AttachProtocol(self.bridge_data, self.stray_data, self.bridge_closed)
        try:
            self._transport, _ = await asyncio.get_running_loop().create_connection(
                lambda: protocol, sock=sock
            )
        except BaseException:
            sock.close()
            raise

    # -- stopping -------------------------------------------------------------------------------
    @property
    def _ended(self) -> bool:
        return self._removed

    async def kill(self) -> None:
        """Remove the container (the engine kills it first); every caller waits for the same.

        Never raises: a container the engine cannot remove now (the engine itself went away)
        is logged, and left to ``gc_strays``.
        """
        if self._kill_task is None:
            self._kill_task = asyncio.ensure_future(self._remove())
        await asyncio.shield(self._kill_task)

    async def _remove(self) -> None:
        try:
            if self._death is not None and not self._stopping:
                # It died on its own: read why (out of memory?) before the evidence is removed.
                self._exit = await self.engine.run(self.engine.exit_state, self.container_id)
            self._stopping = True
            self._mark_dead("the sandbox was stopped")
            await self.engine.run(self.engine.remove, self.container_id)
        except Exception as exc:  # the engine went away, or this sandbox was closed under us
            log.warning("sandbox container %s left behind: %s", self.container_id[:12], exc)
        finally:
            self._stopping = self._removed = True
            self._mark_dead("the sandbox was stopped")
            if self._transport is not None:
                self._transport.close()
            await self._bridge_gone(0.5)

    # -- bridge ---------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _stop_now(self) -> None:
        self._stopping = True
        if self._kill_task is None:
            self._kill_task = asyncio.ensure_future(self._remove())

    def _death_error(self, reason: str) -> ExecutionError:
        state = self._exit
        if state is not None and state.oom_killed:
            return ExecutionError(
                kind="memory",
                type="MemoryError",
                message=(
                    "the sandbox ran out of memory and was killed at its limit "
                    f"({self.limits.memory_mb} MB); {RESTARTED}"
                ),
            )
        code = state.exit_code if state is not None else None
        status = f" (exit status {code})" if code is not None else ""
        if code == 128 + signal.SIGXCPU:
            kind: ErrorKind = "cpu"
            what = "used up its CPU time budget"
        else:
            kind, what = "crashed", f"ended unexpectedly{status}: {reason}"
        return ExecutionError(
            kind=kind, type="SandboxError", message=f"the sandbox process {what}; {RESTARTED}"
        )


async def _create(engine: Engine, spec: ContainerSpec) -> str:
    """Create the container; if the caller gives up meanwhile, remove it once it exists."""
    creating = asyncio.ensure_future(engine.run(engine.create, spec))
    try:
        return await asyncio.shield(creating)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await engine.run(engine.remove, await creating)
        raise
