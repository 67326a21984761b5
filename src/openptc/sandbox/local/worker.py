"""One local sandbox process and its bridge over pipes: spawn, kill, and why it died.

A ``Worker`` is the unit a warm pool keeps ready. It knows nothing of sessions; a session is a
worker with a lock and a history. What happens on the bridge (tool calls, executions, timeouts)
is ``BridgeWorker``'s, shared with the Docker backend; this module only adds the process: two
pipes for the bridge, one for stray output, and a process group to kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
from typing import Any

from openptc.sandbox import protocol
from openptc.sandbox.base import (
    ErrorKind,
    ExecutionError,
    Isolation,
    Limits,
    SandboxError,
)
from openptc.sandbox.bridge import RESTARTED, BridgeWorker, WorkerDied
from openptc.sandbox.bundle import RuntimeBundle
from openptc.sandbox.local.isolation import (
    Interpreter,
    IsolationChoice,
    bwrap_argv,
    pick_uid,
    sandbox_env,
)

START_TIMEOUT_S = 30.0

__all__ = ["START_TIMEOUT_S", "Worker", "WorkerDied"]


class _StrayReader(asyncio.Protocol):
    """Hands whatever the process wrote to its real stdout/stderr (fds 1 and 2) to the worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def data_received(self, data: bytes) -> None:
        self.worker.stray_data(data)


class _BridgeReader(asyncio.Protocol):
    """Hands the runtime's bridge output to the worker as it arrives.

    A protocol rather than a StreamReader task: one event-loop hop less per tool call.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def data_received(self, data: bytes) -> None:
        self.worker.bridge_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.bridge_closed()


def _pipe(fd: int, mode: str) -> Any:
    """An unbuffered file object over a pipe end; its transport owns and closes it."""
    return open(fd, mode, buffering=0)


class Worker(BridgeWorker):
    """A started local sandbox interpreter, ready to execute programs one at a time."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        isolation: Isolation,
        limits: Limits,
        workdir: str | None,
    ) -> None:
        super().__init__(isolation, limits)
        self.process = process
        self._workdir = workdir
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.BaseTransport | None = None

    async def _connect(self, from_child: int, to_child: int, stray: int) -> None:
        """Attach the bridge and the stray-output pipe to the event loop."""
        loop = asyncio.get_running_loop()
        self._reader, _ = await loop.connect_read_pipe(
            lambda: _BridgeReader(self), _pipe(from_child, "rb")
        )
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, _pipe(to_child, "wb"))
        await loop.connect_read_pipe(lambda: _StrayReader(self), _pipe(stray, "rb"))

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    async def start(
        cls,
        choice: IsolationChoice,
        interpreter: Interpreter,
        limits: Limits,
        bundle: RuntimeBundle,
    ) -> Worker:
        """Spawn the interpreter and wait for the runtime's ``ready``."""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        stray_r, stray_w = os.pipe()
        workdir: str | None = None
        env = sandbox_env()
        config = {
            "in_fd": to_child_r,
            "out_fd": from_child_w,
            "limits": protocol.runtime_limits(
                limits, count_processes=choice.isolation.dedicated_uid
            ),
            "uid": pick_uid() if choice.privileged else None,
        }
        mounted = choice.bwrap is not None
        boot = bundle.boot_code(mounted=mounted)
        tail = [interpreter.executable, "-I", "-S", "-c", boot, json.dumps(config)]
        if choice.bwrap is not None:
            launcher = bwrap_argv(
                choice.bwrap, interpreter, limits, privileged=choice.privileged, bundle=bundle
            )
            argv = launcher + tail
        else:
            workdir = tempfile.mkdtemp(prefix="openptc-")
            env["HOME"] = workdir
            argv = tail
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stray_w,
                stderr=stray_w,
                pass_fds=(to_child_r, from_child_w),
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w, stray_r, stray_w):
                os.close(fd)
            raise SandboxError(f"could not start the sandbox interpreter: {exc}") from exc
        for fd in (to_child_r, from_child_w, stray_w):
            os.close(fd)
        worker = cls(process, choice.isolation, limits, workdir)
        try:
            await worker._connect(from_child_r, to_child_w, stray_r)
            await worker.wait_ready(START_TIMEOUT_S)
        except (TimeoutError, WorkerDied) as exc:
            detail = worker.stray.take().strip() or str(exc) or "no output"
            await worker.kill()
            raise SandboxError(f"the sandbox did not start: {detail}") from None
        except BaseException:
            await asyncio.shield(worker.kill())  # cancelled while starting: leave no process
            raise
        return worker

    @property
    def _ended(self) -> bool:
        return self.process.returncode is not None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def kill(self) -> None:
        """Kill the whole sandbox: the process group, and with bubblewrap its PID namespace."""
        if self.process.returncode is None:
            self._stop_now()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)
        if self._writer is not None:
            self._writer.close()
        self._mark_dead("the sandbox was stopped")
        await self._bridge_gone(0.5)
        if self._reader is not None:  # an escaped grandchild may still hold the pipe open
            self._reader.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- bridge ---------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _stop_now(self) -> None:
        # Signal by pid, not through Popen: Popen.send_signal() reaps the child itself,
        # racing asyncio's child watcher ("Unknown child process pid ...").
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def _death_error(self, reason: str) -> ExecutionError:
        code = self.process.returncode
        status = f" (exit status {code})" if code is not None else ""
        if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            kind: ErrorKind = "cpu"
            what = "used up its CPU time budget"
        else:
            kind, what = "crashed", f"ended unexpectedly{status}: {reason}"
        return ExecutionError(
            kind=kind,
            type="SandboxError",
            message=f"the sandbox process {what}; {RESTARTED}",
        )
