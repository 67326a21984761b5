"""The host's half of the bridge to one sandbox interpreter, whatever carries its bytes.

A ``BridgeWorker`` reads the runtime's JSON lines, runs the tool calls they ask for on the host
(tools never enter the sandbox), and runs one program at a time to its end, its wall-clock
timeout or the death of the interpreter. How the bytes travel — pipes to a local process, the
attached streams of a Docker container — and how an interpreter is stopped belong to subclasses,
so that every backend reports the same errors in the same words. One reader per worker reads
every line (one channel, call ids, one reader — never a thread per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from openptc.sandbox import protocol
from openptc.sandbox.base import (
    BlockAwareToolHost,
    Execution,
    ExecutionError,
    Isolation,
    Limits,
    SandboxError,
    ToolCallError,
    ToolCallRecord,
    ToolHost,
)
from openptc.sandbox.host_calls import run_tool_call

STRAY_OUTPUT_CAP = 16_000
RESTARTED = "the interpreter was restarted, so variables from earlier runs are gone"


# Each call in flight costs the host a task (outside the sandbox's memory limit); a program
# that issues calls without bound would exhaust the host, so the excess fails in the program.
MAX_CALLS_IN_FLIGHT = 10_000
TOO_MANY_CALLS = ToolCallError(
    f"too many tool calls in flight (the limit is {MAX_CALLS_IN_FLIGHT}); await some before "
    "issuing more"
)


class WorkerDied(SandboxError):
    """The sandbox process ended while it was needed."""


@dataclass
class _Running:
    """The execution in flight on a worker: its tools, its calls, and how it ends."""

    tools: ToolHost | None
    done: asyncio.Future[dict[str, Any]]
    records: list[ToolCallRecord] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class StrayOutput:
    """The head of whatever the interpreter wrote outside the bridge (its real stdout/stderr)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, data: bytes) -> None:
        room = STRAY_OUTPUT_CAP - len(self.data)
        if room > 0:
            self.data += data[:room]

    def take(self) -> str:
        text = self.data.decode(errors="replace")
        self.data.clear()
        return text


class BridgeWorker(ABC):
    """A started sandbox interpreter, ready to execute programs one at a time.

    A transport feeds ``bridge_data``, ``stray_data`` and ``bridge_closed``; a subclass says how
    to send (``_send``), how to stop at once (``_stop_now``, ``kill``) and why it died.
    """

    def __init__(self, isolation: Isolation, limits: Limits) -> None:
        loop = asyncio.get_running_loop()
        self.isolation = isolation
        self.limits = limits
        self.stray = StrayOutput()
        self._buffer = bytearray()
        self._failure: str | None = None
        self._ready: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._running: _Running | None = None
        self._executions = 0
        self._death: str | None = None

    # -- what a transport or an interpreter adds ------------------------------------------------
    @abstractmethod
    def _send(self, data: bytes) -> None:
        """Write bytes to the runtime's bridge input; dropped once the bridge is closed."""

    @abstractmethod
    def _stop_now(self) -> None:
        """Stop the interpreter without waiting (it broke the bridge: broken or hostile)."""

    @property
    @abstractmethod
    def _ended(self) -> bool:
        """Whether the interpreter is known to have ended (its bridge may not have closed yet)."""

    @abstractmethod
    async def kill(self) -> None:
        """Stop the interpreter for good and release what it held; safe to call twice."""

    @abstractmethod
    def _death_error(self, reason: str) -> ExecutionError:
        """Why the interpreter died mid-execution, after ``kill`` has collected the evidence."""

    # -- fed by the transport -------------------------------------------------------------------
    def bridge_data(self, data: bytes) -> None:
        """Bytes from the runtime's bridge output: split into lines, each handled at once.

        Chunks are not message boundaries (a pipe or a socket may split or join lines).
        """
        if self._failure is not None:
            return
        self._buffer += data
        try:
            while (end := self._buffer.find(b"\n")) >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._dispatch(protocol.decode(line))
            if len(self._buffer) > protocol.MAX_MESSAGE_BYTES:
                raise protocol.BridgeError("bridge message larger than the limit")
        except protocol.BridgeError as exc:
            self._failure = f"bridge error: {exc}"
            self._on_bridge_lost(self._failure)

    def stray_data(self, data: bytes) -> None:
        self.stray.add(data)

    def bridge_closed(self) -> None:
        """The runtime's bridge output reached its end: the interpreter is gone (or going)."""
        self._on_bridge_lost(self._failure)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._death is None and not self._ended

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait for the runtime's ``ready``; raises TimeoutError or WorkerDied."""
        await asyncio.wait_for(asyncio.shield(self._ready), timeout_s)

    async def _bridge_gone(self, timeout_s: float) -> None:
        """Wait (bounded) until the transport has reported the end of the bridge."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closed), timeout_s)

    def _on_bridge_lost(self, reason: str | None) -> None:
        if reason is not None:  # a broken or hostile runtime: stop it
            self._stop_now()
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

    # -- bridge ---------------------------------------------------------------------------------
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
                if len(running.tasks) >= MAX_CALLS_IN_FLIGHT:
                    self._send(protocol.tool_error_message(call_id, TOO_MANY_CALLS))
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
        self._send(data)

    # -- execution ------------------------------------------------------------------------------
    async def execute(self, code: str, tools: ToolHost | None, limits: Limits) -> Execution:
        """Run one program to its end, its timeout, or the death of the interpreter."""
        if self._running is not None:
            raise SandboxError("this sandbox is already running a program")
        if not self.alive:
            raise WorkerDied(self._death or "the sandbox process exited")
        started = time.perf_counter()
        self._executions += 1
        running = _Running(tools, asyncio.get_running_loop().create_future())
        self._running = running
        signatures = list(tools.signatures()) if tools is not None else []
        message = protocol.execute_message(
            self._executions,
            code,
            signatures,
            limits,
            report_blocked=isinstance(tools, BlockAwareToolHost),
        )
        self._send(protocol.encode(message))
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
                    + RESTARTED
                ),
            )
        except WorkerDied as exc:
            await self.kill()
            error = self._death_error(str(exc))
        except protocol.BridgeError as exc:
            await self.kill()
            error = ExecutionError(kind="bridge", type="SandboxError", message=str(exc))
        except asyncio.CancelledError:
            # Abandoned by its caller: the program must not run on, nor its end be taken for
            # the next execution's. The session restarts the interpreter (and says so).
            await asyncio.shield(self.kill())
            raise
        finally:
            self._running = None
            for task in list(running.tasks):
                task.cancel()
            if running.tasks:
                await asyncio.gather(*running.tasks, return_exceptions=True)
        stray = self.stray.take()
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
