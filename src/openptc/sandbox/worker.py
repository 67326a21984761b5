"""One sandbox process and its bridge: spawn, execute with tool calls, kill.

A ``Worker`` is the unit a warm pool keeps ready. It knows nothing of sessions; a session is a
worker with a lock and a history. One reader task per worker reads every bridge line (one channel,
call ids, one reader — never a thread per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from openptc.sandbox import protocol
from openptc.sandbox.base import (
    BlockAwareToolHost,
    ErrorKind,
    Execution,
    ExecutionError,
    Isolation,
    Limits,
    SandboxError,
    ToolCallRecord,
    ToolHost,
)
from openptc.sandbox.bundle import RuntimeBundle
from openptc.sandbox.host_calls import run_tool_call
from openptc.sandbox.isolation import (
    Interpreter,
    IsolationChoice,
    bwrap_argv,
    pick_uid,
    sandbox_env,
)

STRAY_OUTPUT_CAP = 16_000
START_TIMEOUT_S = 30.0


class WorkerDied(SandboxError):
    """The sandbox process ended while it was needed."""


@dataclass
class _Running:
    """The execution in flight on a worker: its tools, its calls, and how it ends."""

    tools: ToolHost | None
    done: asyncio.Future[dict[str, Any]]
    records: list[ToolCallRecord] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class _StrayOutput(asyncio.Protocol):
    """Keeps the head of whatever the process wrote to its real stdout/stderr (fds 1 and 2)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        room = STRAY_OUTPUT_CAP - len(self.data)
        if room > 0:
            self.data += data[:room]

    def take(self) -> str:
        text = self.data.decode(errors="replace")
        self.data.clear()
        return text


class _BridgeReader(asyncio.Protocol):
    """Splits the runtime's output into JSON lines and hands each to the worker at once.

    A protocol rather than a StreamReader task: one event-loop hop less per tool call.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.buffer = bytearray()
        self.failure: str | None = None

    def data_received(self, data: bytes) -> None:
        if self.failure is not None:
            return
        self.buffer += data
        try:
            while (end := self.buffer.find(b"\n")) >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                self.worker._dispatch(protocol.decode(line))
            if len(self.buffer) > protocol.MAX_MESSAGE_BYTES:
                raise protocol.BridgeError("bridge message larger than the limit")
        except protocol.BridgeError as exc:
            self.failure = f"bridge error: {exc}"
            self.worker._on_bridge_lost(self.failure)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker._on_bridge_lost(self.failure)


def _pipe(fd: int, mode: str) -> Any:
    """An unbuffered file object over a pipe end; its transport owns and closes it."""
    return open(fd, mode, buffering=0)


class Worker:
    """A started sandbox interpreter, ready to execute programs one at a time."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        isolation: Isolation,
        limits: Limits,
        workdir: str | None,
    ) -> None:
        self.process = process
        self.isolation = isolation
        self.limits = limits
        self._workdir = workdir
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.BaseTransport | None = None
        self._stray = _StrayOutput()
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._closed = asyncio.get_running_loop().create_future()
        self._running: _Running | None = None
        self._executions = 0
        self._death: str | None = None

    async def _connect(self, from_child: int, to_child: int, stray: int) -> None:
        """Attach the bridge and the stray-output pipe to the event loop."""
        loop = asyncio.get_running_loop()
        self._reader, _ = await loop.connect_read_pipe(
            lambda: _BridgeReader(self), _pipe(from_child, "rb")
        )
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, _pipe(to_child, "wb"))
        await loop.connect_read_pipe(lambda: self._stray, _pipe(stray, "rb"))

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
            await asyncio.wait_for(asyncio.shield(worker._ready), START_TIMEOUT_S)
        except (TimeoutError, WorkerDied) as exc:
            detail = worker._stray.take().strip() or str(exc) or "no output"
            await worker.kill()
            raise SandboxError(f"the sandbox did not start: {detail}") from None
        except BaseException:
            await asyncio.shield(worker.kill())  # cancelled while starting: leave no process
            raise
        return worker

    @property
    def alive(self) -> bool:
        return self._death is None and self.process.returncode is None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def kill(self) -> None:
        """Kill the whole sandbox: the process group, and with bubblewrap its PID namespace."""
        if self.process.returncode is None:
            # Signal by pid, not through Popen: Popen.send_signal() reaps the child itself,
            # racing asyncio's child watcher ("Unknown child process pid ...").
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)
        if self._writer is not None:
            self._writer.close()
        self._mark_dead("the sandbox was stopped")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closed), 0.5)
        if self._reader is not None:  # an escaped grandchild may still hold the pipe open
            self._reader.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- bridge ---------------------------------------------------------------------------------
    def _on_bridge_lost(self, reason: str | None) -> None:
        if reason is not None:  # a broken or hostile runtime: stop it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self._mark_dead(reason or "the sandbox process exited")
        if not self._closed.done():
            self._closed.set_result(None)

    def _mark_dead(self, reason: str) -> None:
        if self._death is None:
            self._death = reason
        for future in (self._ready, self._running.done if self._running else None):
            if future is not None and not future.done():
                future.set_exception(WorkerDied(self._death))
                future.add_done_callback(lambda f: f.exception())  # seen by whoever awaits

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ready":
            if not self._ready.done():
                self._ready.set_result(message)
        elif kind == "tool_calls":
            running = self._running
            for call_id, tool, args in protocol.parse_tool_calls(message):
                if running is None:
                    continue
                task = asyncio.create_task(self._run_call(running, call_id, tool, args))
                running.tasks.add(task)
                task.add_done_callback(running.tasks.discard)
        elif kind == "blocked":
            tools = self._running.tools if self._running is not None else None
            if isinstance(tools, BlockAwareToolHost):
                # After the call tasks just created have taken their first step (FIFO), so
                # the host has seen every call of the batch before it hears of the block.
                asyncio.get_running_loop().call_soon(tools.program_blocked)
        elif kind == "done":
            if self._running is not None and not self._running.done.done():
                self._running.done.set_result(message)
        else:
            raise protocol.BridgeError(f"unknown message type {kind!r}")

    async def _run_call(
        self, running: _Running, call_id: int, tool: str, args: dict[str, Any]
    ) -> None:
        """Run one tool on the host and send its result to the program."""
        data = await run_tool_call(
            running.tools,
            call_id,
            tool,
            args,
            records=running.records,
            on_value=lambda value: protocol.tool_result_message(call_id, value),
            on_error=lambda error: protocol.tool_error_message(call_id, error),
        )
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    # -- execution ------------------------------------------------------------------------------
    async def execute(self, code: str, tools: ToolHost | None, limits: Limits) -> Execution:
        """Run one program to its end, its timeout, or the death of the process."""
        if self._running is not None:
            raise SandboxError("this sandbox is already running a program")
        if not self.alive:
            raise WorkerDied(self._death or "the sandbox process exited")
        started = time.perf_counter()
        self._executions += 1
        running = _Running(tools, asyncio.get_running_loop().create_future())
        self._running = running
        signatures = list(tools.signatures()) if tools is not None else []
        assert self._writer is not None
        message = protocol.execute_message(
            self._executions,
            code,
            signatures,
            limits,
            report_blocked=isinstance(tools, BlockAwareToolHost),
        )
        self._writer.write(protocol.encode(message))
        error: ExecutionError | None = None
        done: dict[str, Any] = {}
        try:
            done = await asyncio.wait_for(asyncio.shield(running.done), limits.timeout_s)
            error = protocol.parse_error(done.get("error"))
            if error is not None and error.kind == "cpu":
                await self.kill()  # the runtime exits on its own; do not race it
        except TimeoutError:
            await self.kill()
            error = ExecutionError(
                kind="timeout",
                type="TimeoutError",
                message=(
                    f"the program did not finish within {limits.timeout_s:g} s and was stopped; "
                    "the interpreter was restarted, so variables from earlier runs are gone"
                ),
            )
        except WorkerDied as exc:
            await self.kill()
            error = self._death_error(str(exc))
        except protocol.BridgeError as exc:
            await self.kill()
            error = ExecutionError(kind="bridge", type="SandboxError", message=str(exc))
        finally:
            self._running = None
            for task in list(running.tasks):
                task.cancel()
            if running.tasks:
                await asyncio.gather(*running.tasks, return_exceptions=True)
        stray = self._stray.take()
        stderr = str(done.get("stderr", ""))
        if stray:
            stderr += ("" if not stderr or stderr.endswith("\n") else "\n") + stray
        return Execution(
            stdout=str(done.get("stdout", "")),
            stderr=stderr,
            error=error,
            tool_calls=tuple(sorted(running.records, key=lambda r: r.call_id)),
            duration_ms=(time.perf_counter() - started) * 1000,
            isolation=self.isolation,
            stdout_truncated=bool(done.get("stdout_truncated", False)),
            notices=tuple(str(n) for n in done.get("notices", ())),
        )

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
            message=(
                f"the sandbox process {what}; the interpreter was restarted, "
                "so variables from earlier runs are gone"
            ),
        )
