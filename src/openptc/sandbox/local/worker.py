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
import logging
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
from openptc.sandbox.local.cgroup import SandboxCgroup
from openptc.sandbox.local.isolation import (
    Interpreter,
    IsolationChoice,
    bwrap_argv,
    pick_uid,
    sandbox_env,
)

START_TIMEOUT_S = 30.0

log = logging.getLogger("openptc.sandbox")

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
        cgroup: SandboxCgroup | None = None,
        interpreter: Interpreter | None = None,
    ) -> None:
        super().__init__(isolation, limits)
        self.process = process
        self._workdir = workdir
        self.cgroup = cgroup
        self._interpreter = interpreter
        self._base_pids: set[int] = set()  # the launcher's processes and the runtime's
        self._runtime_pid: int | None = None
        self._oom_kills = 0  # kills for the memory limit already reported
        self._oom_kills_at_end = 0
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
            "pid_namespace": choice.bwrap is not None,
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
        cgroup = None
        if choice.cgroup is not None:
            launchers = 2 if choice.bwrap is not None else 0  # bubblewrap's own two processes
            try:
                cgroup = SandboxCgroup.create(
                    choice.cgroup, memory_mb=limits.memory_mb, tasks=limits.processes + launchers
                )
            except OSError as exc:
                for fd in (to_child_r, to_child_w, from_child_r, from_child_w, stray_r, stray_w):
                    os.close(fd)
                raise SandboxError(f"could not make the sandbox's cgroup: {exc}") from exc
            argv = cgroup.join_argv() + argv
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
            if cgroup is not None:
                cgroup.remove()
            raise SandboxError(f"could not start the sandbox interpreter: {exc}") from exc
        for fd in (to_child_r, from_child_w, stray_w):
            os.close(fd)
        worker = cls(process, choice.isolation, limits, workdir, cgroup, interpreter)
        try:
            await worker._connect(from_child_r, to_child_w, stray_r)
            await worker.wait_ready(START_TIMEOUT_S)
            worker._note_base_processes()
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

    def _note_base_processes(self) -> None:
        """Before any program runs: which of the cgroup's processes are the sandbox's own
        (launcher and runtime); any other found after a run was left by the program."""
        if self.cgroup is None:
            return
        self._base_pids = self.cgroup.pids()
        for pid in self._base_pids:
            with contextlib.suppress(OSError):
                exe = os.path.realpath(f"/proc/{pid}/exe")
                if self._interpreter is not None and exe == self._interpreter.executable:
                    self._runtime_pid = pid

    async def _inspect_after_run(self) -> tuple[list[str], str | None]:
        """Stop what the program left running, by the cgroup's count rather than the
        runtime's word; a runtime with threads left must be restarted."""
        if self.cgroup is None:
            return [], None
        notices = []
        strays = self.cgroup.pids() - self._base_pids
        if strays:
            self.cgroup.kill(strays)
            notices.append(
                f"{len(strays)} process(es) the program left running were stopped by the host"
            )
        kills = self.cgroup.oom_kills()
        if kills > self._oom_kills:
            notices.append(
                f"{kills - self._oom_kills} process(es) of the program were killed for going "
                f"over the sandbox's memory limit ({self.limits.memory_mb} MB for all its "
                "processes together)"
            )
            self._oom_kills = kills
        threads = _threads(self._runtime_pid)
        if threads > 1:
            return notices, f"{threads - 1} thread(s) the program started were still running"
        return notices, None

    async def _wait_ended(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.process.wait()), timeout_s)

    async def kill(self) -> None:
        """Kill the whole sandbox: the process group, its cgroup, and with bubblewrap its PID
        namespace."""
        if self.process.returncode is None:
            self._stop_now()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)
        if self.cgroup is not None:
            await self._remove_cgroup(self.cgroup)
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

    async def _remove_cgroup(self, cgroup: SandboxCgroup) -> None:
        """Record whether it died of its memory limit, then kill what is left and remove it
        (its last processes may take a moment to be reaped)."""
        self._oom_kills_at_end = cgroup.oom_kills()
        for _ in range(50):
            if cgroup.remove():
                self.cgroup = None
                return
            await asyncio.sleep(0.02)
        log.warning(
            "could not remove the sandbox cgroup %s; it is removed at next start", cgroup.name
        )
        self.cgroup = None

    def _stop_now(self) -> None:
        # Signal by pid, not through Popen: Popen.send_signal() reaps the child itself,
        # racing asyncio's child watcher ("Unknown child process pid ...").
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.cgroup is not None:  # a process that left the process group too
            self.cgroup.kill(self.cgroup.pids())

    def _death_error(self, reason: str) -> ExecutionError:
        code = self.process.returncode
        status = f" ({_describe_status(code)})" if code is not None else ""
        if self._oom_kills_at_end > self._oom_kills:
            return ExecutionError(
                kind="memory",
                type="MemoryError",
                message=(
                    "the sandbox ran out of memory and was killed at its limit "
                    f"({self.limits.memory_mb} MB for all its processes together); {RESTARTED}"
                ),
            )
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


def _threads(pid: int | None) -> int:
    """How many threads a host process has now (0 if unknown or gone)."""
    if pid is None:
        return 0
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def _describe_status(code: int) -> str:
    """An exit status in words; bubblewrap passes a signal on as 128 + its number."""
    number = -code if code < 0 else code - 128 if code > 128 else 0
    if number:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(number).name}"
    return f"exit status {code}"
