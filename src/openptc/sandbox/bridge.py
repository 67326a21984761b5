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
import dataclasses
import logging
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
from openptc.sandbox.call_budget import CallScheduler
from openptc.sandbox.host_calls import run_tool_call

STRAY_OUTPUT_CAP = 16_000
RESTARTED = "the interpreter was restarted, so variables from earlier runs are gone"
STOPPED_FOR_GOOD = (
    "the interpreter was stopped so that nothing goes on running unseen; the next run starts "
    "a fresh one (variables from earlier runs are gone)"
)

log = logging.getLogger("openptc.sandbox")

STALE_CALL = ToolCallError("this tool call belongs to a run that has already ended; it was not run")


class WorkerDied(SandboxError):
    """The sandbox process ended while it was needed."""


@dataclass
class _Running:
    """The execution in flight on a worker: its token, tools, calls, and how it ends."""

    token: str
    tools: ToolHost | None
    done: asyncio.Future[dict[str, Any]]
    calls: CallScheduler
    records: list[ToolCallRecord] = field(default_factory=list)
    exit: dict[str, Any] | None = None  # what the program said as it called os._exit


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
        self._scanned = 0  # how much of the buffer is known to hold no newline
        self._failure: str | None = None
        self._ready: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._running: _Running | None = None
        self._death: str | None = None
        self.dropped_messages = 0  # late, stray or forged messages the host ignored

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

    async def _wait_ended(self, timeout_s: float) -> None:
        """Give an interpreter whose bridge closed a moment to end on its own, so that the
        status reported is its own and not that of being killed."""
        return None  # a backend that learns the status otherwise (Docker) has no need

    async def _inspect_after_run(self) -> tuple[list[str], str | None]:
        """What the backend sees for itself once a run is over: notices (processes it stopped)
        and a reason to restart the interpreter, if any. Trusts nothing from the runtime."""
        return [], None

    # -- fed by the transport -------------------------------------------------------------------
    def bridge_data(self, data: bytes) -> None:
        """Bytes from the runtime's bridge output: split into lines, each handled at once.

        Chunks are not message boundaries (a pipe or a socket may split or join lines).
        """
        if self._failure is not None:
            return
        self._buffer += data
        try:
            # Search only the new bytes: a huge line arriving in chunks is scanned once.
            while (end := self._buffer.find(b"\n", self._scanned)) >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                if len(line) > protocol.MAX_MESSAGE_BYTES:
                    raise protocol.BridgeError("bridge message larger than the limit")
                self._dispatch(protocol.decode(line))
            self._scanned = len(self._buffer)
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
            return
        if kind not in ("tool_calls", "blocked", "done", "exit"):
            raise protocol.BridgeError(f"unknown message type {kind!r}")
        running = self._running
        token = message.get("id" if kind == "done" else "execution")
        if running is None or running.done.done() or token != running.token:
            self._drop(kind, token)
            if kind == "tool_calls":  # refused, never run: a program still waiting goes on
                for call_id, _, _ in protocol.parse_tool_calls(message):
                    self._send(protocol.tool_error_message(call_id, STALE_CALL))
        elif kind == "tool_calls":
            for call_id, tool, args in protocol.parse_tool_calls(message):
                running.calls.submit(call_id, tool, args)
        elif kind == "blocked":
            if isinstance(running.tools, BlockAwareToolHost):
                # After the call tasks just created have taken their first step (FIFO), so
                # the host has seen every call of the batch before it hears of the block.
                asyncio.get_running_loop().call_soon(running.tools.program_blocked)
        elif kind == "done":
            running.done.set_result(message)
        else:
            running.exit = message

    def _drop(self, kind: str, token: Any) -> None:
        """A message for no execution in progress: late, stray or forged; never passed on."""
        self.dropped_messages += 1
        count = self.dropped_messages
        if count & (count - 1) == 0:  # 1st, 2nd, 4th, ...: a flood cannot flood the log
            log.warning(
                "dropped a %r message for execution %r, which is not in progress "
                "(late, stray or forged; %d so far)",
                kind,
                str(token)[:40],
                count,
            )

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
        token = protocol.execution_token()

        def refuse(call_id: int, error: ToolCallError) -> None:
            self._send(protocol.tool_error_message(call_id, error))

        async def start(call_id: int, tool: str, args: dict[str, Any]) -> None:
            await self._run_call(running, call_id, tool, args)

        running = _Running(
            token,
            tools,
            asyncio.get_running_loop().create_future(),
            CallScheduler(limits, start, refuse),
        )
        self._running = running
        signatures = list(tools.signatures()) if tools is not None else []
        message = protocol.execute_message(
            token,
            code,
            signatures,
            limits,
            report_blocked=isinstance(tools, BlockAwareToolHost),
        )
        self._send(protocol.encode(message))
        error: ExecutionError | None = None
        report = protocol.NO_REPORT
        try:
            report = protocol.parse_report(
                await asyncio.wait_for(asyncio.shield(running.done), limits.timeout_s), limits
            )
            error = report.error
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
            await self._wait_ended(1.0)
            await self.kill()
            report, error = self._ended_report(running, limits, str(exc))
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
            await running.calls.close()
        notices = list(report.notices)
        if self.alive:
            seen, restart = await self._inspect_after_run()
            notices += seen
            if restart := restart or report.restart:
                notices.append(f"{restart}; {STOPPED_FOR_GOOD}")
                await self.kill()
        stray = self.stray.take()
        stderr = report.stderr
        if stray:
            stderr += ("" if not stderr or stderr.endswith("\n") else "\n") + stray
        return Execution(
            stdout=report.stdout,
            stderr=stderr,
            error=error,
            tool_calls=tuple(sorted(running.records, key=lambda r: r.call_id)),
            duration_ms=(time.perf_counter() - started) * 1000,
            isolation=self.isolation,
            stdout_truncated=report.stdout_truncated,
            notices=tuple(notices),
        )

    def _ended_report(
        self, running: _Running, limits: Limits, reason: str
    ) -> tuple[protocol.Report, ExecutionError | None]:
        """How a run ended when its interpreter did: by the program's own ``os._exit`` (what it
        printed is kept, and its status said), or by dying (the backend says why)."""
        if self._failure is not None:
            return protocol.NO_REPORT, ExecutionError(
                kind="bridge",
                type="SandboxError",
                message=(
                    f"the sandbox sent a malformed or forged message ({self._failure}) and was "
                    "stopped; the next run starts a fresh interpreter (variables are gone)"
                ),
            )
        if running.exit is None:
            return protocol.NO_REPORT, self._death_error(reason)
        try:
            report = protocol.parse_report(running.exit, limits)
            status = running.exit.get("status")
        except protocol.BridgeError as exc:
            return protocol.NO_REPORT, ExecutionError(
                kind="bridge", type="SandboxError", message=str(exc)
            )
        ended = f"the program called os._exit({status}), which ended the interpreter"
        if status == 0:
            notice = f"{ended}; the next run starts a fresh one (variables are gone)"
            return dataclasses.replace(report, notices=(*report.notices, notice)), None
        return report, ExecutionError(
            kind="exception",
            type="SystemExit",
            message=(
                f"{ended} with exit status {status}; the next run starts a fresh one "
                "(variables are gone)"
            ),
        )
