"""What happens during an agent run, as it happens: typed events for ``Agent.run(on_event=...)``.

The CLI's progress line, OpenTelemetry spans and a user's own logging all read the same events,
so none of them needs a hook of its own in the loop. Events carry counts and names, and the
program's code; tool arguments and results stay out (they may hold what must not be logged):
an observer that wants them has the ``Execution`` in ``ExecutionFinished``.

The order within a run: ``RunStarted``; per model call ``ModelCallStarted`` then
``ModelCallFinished``; per program ``ProgramStarted``, the ``ToolCallStarted``/
``ToolCallFinished`` pairs of its calls (concurrent calls interleave), ``ExecutionFinished``;
per direct call a ``ToolCallStarted``/``ToolCallFinished`` pair; ``RunFinished`` last, also
when the run fails (then with ``error`` set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from openptc.models.base import ModelUsage, StopReason
from openptc.prompts import Mode
from openptc.sandbox.base import Execution

CallSource = Literal["program", "direct"]


@dataclass(frozen=True)
class RunStarted:
    model: str
    mode: Mode
    tools: tuple[str, ...]


@dataclass(frozen=True)
class ModelCallStarted:
    number: int  # 1 for the run's first model call


@dataclass(frozen=True)
class ModelCallFinished:
    number: int
    usage: ModelUsage | None  # None: the provider reported none
    stop_reason: StopReason
    tool_uses: int
    duration_s: float


@dataclass(frozen=True)
class ProgramStarted:
    number: int  # 1 for the run's first program
    code: str


@dataclass(frozen=True)
class ToolCallStarted:
    name: str
    source: CallSource
    program: int | None  # the program's number when a program made the call


@dataclass(frozen=True)
class ToolCallFinished:
    name: str
    source: CallSource
    program: int | None
    ok: bool
    error: str | None  # what went wrong, when not ok
    duration_s: float


@dataclass(frozen=True)
class ExecutionFinished:
    number: int
    execution: Execution | None  # None when the sandbox session was lost
    error: str | None  # the program's error or the loss, in one line; None when it ran clean


@dataclass(frozen=True)
class RunFinished:
    stop: str  # a ``runs.StopKind``, or "error" when the run raised
    model_calls: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    error: str | None = None


Event = (
    RunStarted
    | ModelCallStarted
    | ModelCallFinished
    | ProgramStarted
    | ToolCallStarted
    | ToolCallFinished
    | ExecutionFinished
    | RunFinished
)
EventSink = Callable[[Event], None]
"""Receives each event on the event loop, in order; it must not block (hand slow work off)."""

__all__ = [
    "CallSource",
    "Event",
    "EventSink",
    "ExecutionFinished",
    "ModelCallFinished",
    "ModelCallStarted",
    "ProgramStarted",
    "RunFinished",
    "RunStarted",
    "ToolCallFinished",
    "ToolCallStarted",
]
