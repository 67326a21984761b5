"""How a run is watched: an event sink that cannot break the run, and tools that report calls.

An exception from ``on_event`` is a bug in the caller's code, not in the run: like a failing
asyncio callback, it is logged (with its traceback, once; later failures are counted and
reported when the run ends) and the run goes on, delivering the next events to the same sink.
Letting it propagate would stop a run half-way, with tools already called, over a logging bug;
worse, a sink failing inside a program's tool call would reach the program as that tool's error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from openptc.events import CallSource, Event, EventSink, ToolCallFinished, ToolCallStarted
from openptc.sandbox.base import ToolCallError, ToolSignature
from openptc.tools import Toolbox

log = logging.getLogger("openptc.agent")

__all__ = ["Emitter", "ObservedTools", "one_line"]


def one_line(error: BaseException) -> str:
    """An exception as one line for an event: its type, and its message's first line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class Emitter:
    """Delivers a run's events to the caller's sink, if any, and keeps its failures contained."""

    def __init__(self, sink: EventSink | None) -> None:
        self._sink = sink
        self.failures = 0

    @property
    def active(self) -> bool:
        return self._sink is not None

    def __call__(self, event: Event) -> None:
        if self._sink is None:
            return
        try:
            self._sink(event)
        except Exception:
            self.failures += 1
            if self.failures == 1:
                log.exception("on_event raised on %s; the run goes on", type(event).__name__)

    def report(self) -> None:
        """Say, at the end of a run, how often the sink failed after its first failure."""
        if self.failures > 1:
            log.error("on_event raised %d times in this run (first one logged)", self.failures)


class ObservedTools:
    """A toolbox as one caller sees it, emitting ``ToolCallStarted``/``ToolCallFinished``
    around each call as it runs (a ``ToolHost``: the sandbox calls it on the host)."""

    def __init__(self, tools: Toolbox, emit: Emitter, *, program: int | None) -> None:
        self._tools = tools
        self._emit = emit
        self._program = program
        self._source: CallSource = "program" if program is not None else "direct"

    def signatures(self) -> Sequence[ToolSignature]:
        return self._tools.signatures()

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run the call through the toolbox; the events bracket it whatever happens."""
        self._emit(ToolCallStarted(name, self._source, self._program))
        started = time.perf_counter()
        error: str | None = None
        try:
            return await self._tools.call(name, arguments)
        except ToolCallError as exc:
            error = f"{exc.kind}: {exc}"
            raise
        except asyncio.CancelledError:
            error = "cancelled: the call did not finish"
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            duration = time.perf_counter() - started
            ok = error is None
            self._emit(ToolCallFinished(name, self._source, self._program, ok, error, duration))
