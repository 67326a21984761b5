"""One program running in a container: it pauses whenever it waits on the client's tools.

The program's calls to client tools become ``tool_use`` blocks in a response; the client's
``tool_result`` blocks, in a later request, resume it. Calls already answered (in the
container's record) are answered again at once: that is how a replica that never saw the program
rebuilds it, and a call the record does not hold means the re-run has diverged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openptc.proxy.records import CallRecord, ProgramRecord
from openptc.sandbox.base import Execution, Session, ToolCallError, ToolSignature


@dataclass(frozen=True)
class Paused:
    """The program waits; ``calls`` are the ones it issued since it last paused."""

    calls: tuple[CallRecord, ...]


@dataclass(frozen=True)
class Finished:
    execution: Execution


@dataclass(frozen=True)
class Diverged:
    """The program could not go on: a re-run did not reproduce the recorded calls (the
    ``tool`` named), the sandbox failed, or the program was stopped."""

    message: str
    tool: str | None = None
    cause: str = "diverged"  # or "failed", "stopped"


ProgramEvent = Paused | Finished | Diverged


def _canonical(tool: str, arguments: dict[str, Any]) -> str:
    return tool + json.dumps(arguments, sort_keys=True, separators=(",", ":"))


class LiveProgram:
    """A program in a session, its tool host, and the events a request handler waits for."""

    def __init__(
        self,
        record: ProgramRecord,
        signatures: Sequence[ToolSignature],
        *,
        new_call_id: Callable[[], str],
        result_timeout_s: float,
    ) -> None:
        self.record = record
        self._signatures = tuple(signatures)
        self._new_call_id = new_call_id
        self._result_timeout_s = result_timeout_s
        # Recorded, answered calls a re-run must make again (in any order), keyed canonically.
        self._replay: dict[str, list[CallRecord]] = {}
        for call in record.calls:
            if call.answered:
                self._replay.setdefault(_canonical(call.tool, call.input), []).append(call)
        self._waiting: dict[str, asyncio.Future[tuple[str, bool]]] = {}
        self._unannounced: list[CallRecord] = []
        self._events: asyncio.Queue[ProgramEvent] = asyncio.Queue()
        self._divergence: str | None = None
        self._diverged_tool: str | None = None
        self._task: asyncio.Task[None] | None = None

    # -- running --------------------------------------------------------------------------------
    def start(self, session: Session, timeout_s: float) -> None:
        self._task = asyncio.create_task(self._run(session, timeout_s))

    async def _run(self, session: Session, timeout_s: float) -> None:
        try:
            execution = await session.execute(self.record.code, self, timeout_s=timeout_s)
        except Exception as exc:  # the sandbox itself failed: the program ends with that error
            self._events.put_nowait(Diverged(f"the sandbox failed: {exc}", cause="failed"))
            return
        leftover = sum(len(calls) for calls in self._replay.values())
        if self._divergence is None and leftover:
            self._divergence = (
                f"the re-run finished without making {leftover} recorded tool call(s)"
            )
        self.record.finished = True
        if self._divergence is not None:
            self._events.put_nowait(Diverged(self._divergence, self._diverged_tool))
        else:
            self._events.put_nowait(Finished(execution))

    async def next_event(self) -> ProgramEvent:
        """Wait until the program pauses on new calls, finishes, or diverges."""
        return await self._events.get()

    async def cancel(self) -> None:
        """Stop the program; whoever waits for its next event hears that it stopped."""
        for future in self._waiting.values():
            if not future.done():
                future.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._events.put_nowait(Diverged("the program was stopped", cause="stopped"))

    # -- the tool host the sandbox calls ---------------------------------------------------------
    def signatures(self) -> Sequence[ToolSignature]:
        return self._signatures

    def program_blocked(self) -> None:
        if self._unannounced:
            self._events.put_nowait(Paused(tuple(self._unannounced)))
            self._unannounced = []

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if self._divergence is not None:
            raise ToolCallError(self._divergence)
        recorded = self._replay.get(_canonical(name, arguments))
        if recorded:
            call = recorded.pop(0)
            if call.timed_out:  # it timed out the first time: it does again
                message = _timeout_message(name, self._result_timeout_s)
                raise ToolCallError(message, kind="TimeoutError")
            return _deliver(call.result or "", call.is_error)
        if any(self._replay.values()) or self.record.finished:
            shown = json.dumps(arguments, sort_keys=True)[:200]
            self._divergence = (
                f"re-running the program made a call the original run did not make: {name}({shown})"
            )
            self._diverged_tool = name
            raise ToolCallError(self._divergence)
        call = CallRecord(tool_use_id=self._new_call_id(), tool=name, input=arguments)
        self.record.calls.append(call)
        future: asyncio.Future[tuple[str, bool]] = asyncio.get_running_loop().create_future()
        self._waiting[call.tool_use_id] = future
        self._unannounced.append(call)
        try:
            text, is_error = await asyncio.wait_for(future, self._result_timeout_s)
        except TimeoutError:
            call.timed_out = True
            message = _timeout_message(name, self._result_timeout_s)
            raise ToolCallError(message, kind="TimeoutError") from None
        finally:
            self._waiting.pop(call.tool_use_id, None)
        return _deliver(text, is_error)

    def answer(self, tool_use_id: str, text: str, is_error: bool) -> None:
        """Record the client's result and hand it to the program — only if it still waits: a
        call that timed out got its TimeoutError, and a re-run must see that again."""
        future = self._waiting.get(tool_use_id)
        if future is None or future.done():
            return
        for call in self.record.calls:
            if call.tool_use_id == tool_use_id:
                call.result, call.is_error = text, is_error
        future.set_result((text, is_error))


def _timeout_message(name: str, seconds: float) -> str:
    """The hosted service's words for a call left unanswered."""
    return f"Calling tool ['{name}'] timed out (no response after {seconds:g}s)."


def _deliver(text: str, is_error: bool) -> str:
    """A result as the program sees it: the text, or a ``ToolError`` carrying the text."""
    if is_error:
        raise ToolCallError(text or "the tool reported an error")
    return text
