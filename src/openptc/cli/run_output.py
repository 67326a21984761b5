"""What ``ptc run`` shows while a run works, driven by the run's events.

After each program, a few lines: what it printed (the first lines, marked when cut) and the
tool calls that failed, so a user sees what the model saw without ``--show-programs``. On a
terminal, a progress line below the streamed text says what the run is doing right now
("model call 2 … | program 1: 24 tool calls | 3.2 s"); it is transient, so nothing of it is
left in the scrollback, and it is not drawn at all when stdout is a file or a pipe.

Everything is printed as ``Text`` (never parsed as markup): programs print brackets.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from openptc.events import (
    Event,
    ExecutionFinished,
    ModelCallFinished,
    ModelCallStarted,
    ProgramStarted,
    RunStarted,
    ToolCallFinished,
)

OUTPUT_LINES = 6  # of a program's stdout, shown after it ran
FAILED_TOOLS = 3  # tools whose failed calls are listed; the rest are counted


class RunDisplay:
    """Streams the model's text, summarises each program, and keeps a live progress line.

    Use as a context manager around the run: leaving it stops the progress line and ends a
    streamed line that the model left open.
    """

    def __init__(self, console: Console, *, stream: bool, live: bool | None = None) -> None:
        self._console = console
        self._stream = stream
        self._live_wanted = console.is_terminal if live is None else live
        self._live: Live | None = None
        self._spinner = Spinner("dots")
        self._started = time.perf_counter()
        self._model_call = 0
        self._thinking = False  # a model call is in flight
        self._program: int | None = None  # the program running now
        self._program_calls = 0
        self._failures: list[tuple[str, str]] = []  # (tool, error) of the running program
        self._direct_calls = 0
        self._text_open = False  # streamed text ended without a newline

    def __enter__(self) -> RunDisplay:
        self._show_progress()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._hide_progress()
        self._end_text_line()

    # -- what the run reports ------------------------------------------------------------------
    def on_text(self, text: str) -> None:
        """Model text as it arrives: printed as is, with the progress line out of its way."""
        if not self._stream or not text:
            return
        self._hide_progress()
        self._console.file.write(text)
        self._console.file.flush()
        self._text_open = not text.endswith("\n")

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started = time.perf_counter()
        elif isinstance(event, ModelCallStarted):
            self._model_call, self._thinking = event.number, True
        elif isinstance(event, ModelCallFinished):
            self._thinking = False
            self._end_text_line()
            self._show_progress()
        elif isinstance(event, ProgramStarted):
            self._program, self._program_calls, self._failures = event.number, 0, []
        elif isinstance(event, ToolCallFinished):
            self._count_call(event)
        elif isinstance(event, ExecutionFinished):
            self._console.print(self.program_summary(event))
            self._program = None

    def _count_call(self, event: ToolCallFinished) -> None:
        if event.source == "direct":
            self._direct_calls += 1
            return
        self._program_calls += 1
        if not event.ok:
            self._failures.append((event.name, event.error or "failed"))

    # -- what is shown -------------------------------------------------------------------------
    def progress_line(self) -> str:
        """The run right now: model call, program or tool calls, time."""
        if self._model_call == 0:
            parts = ["starting …"]
        else:
            parts = [f"model call {self._model_call}" + (" …" if self._thinking else "")]
        if self._program is not None:
            failed = f", {len(self._failures)} failed" if self._failures else ""
            parts.append(f"program {self._program}: {self._program_calls} tool calls{failed}")
        elif self._direct_calls:
            parts.append(f"{self._direct_calls} tool calls")
        parts.append(f"{time.perf_counter() - self._started:.1f} s")
        return " | ".join(parts)

    def program_summary(self, event: ExecutionFinished) -> Text:
        """A program's outcome in a few lines: calls, time, first lines of output, failures."""
        width = max(20, self._console.width - 4)
        execution = event.execution
        summary = Text()
        head = f"program {event.number}: {self._program_calls} tool calls"
        if execution is not None:
            head += f", {execution.duration_ms / 1000:.1f} s"
        summary.append(head, style="bold cyan")
        if execution is not None:
            lines = execution.stdout.rstrip("\n").splitlines()
            if not lines:
                summary.append("\n  (printed nothing)", style="dim")
            for line in lines[:OUTPUT_LINES]:
                summary.append("\n  │ " + _cut(line, width), style="dim")
            more = len(lines) - OUTPUT_LINES
            if more > 0:
                summary.append(f"\n  │ … {more} more lines", style="dim italic")
            if execution.stdout_truncated:
                summary.append("\n  │ … (the sandbox cut the output)", style="dim italic")
        for line in _failure_lines(self._failures, width):
            summary.append("\n  " + line, style="yellow")
        if event.error is not None:
            what = "error" if execution is not None else "session lost"
            summary.append(f"\n  {what}: " + _cut(event.error, width), style="red")
        return summary

    # -- the live line -------------------------------------------------------------------------
    def _render(self) -> Spinner:
        self._spinner.update(text=Text(self.progress_line(), style="dim"))
        return self._spinner

    def _show_progress(self) -> None:
        if not self._live_wanted or self._live is not None:
            return
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def _hide_progress(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def _end_text_line(self) -> None:
        if self._text_open:
            self._console.file.write("\n")
            self._console.file.flush()
            self._text_open = False


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def _failure_lines(failures: list[tuple[str, str]], width: int) -> list[str]:
    """Failed calls per tool, with the first error: ``failed: get_x ×3: ToolError: ...``."""
    per_tool: dict[str, list[str]] = {}
    for tool, error in failures:
        per_tool.setdefault(tool, []).append(error)
    lines = []
    for tool, errors in list(per_tool.items())[:FAILED_TOOLS]:
        repeat = f" ×{len(errors)}" if len(errors) > 1 else ""
        lines.append(_cut(f"failed: {tool}{repeat}: {errors[0]}", width))
    rest = sum(len(errors) for errors in list(per_tool.values())[FAILED_TOOLS:])
    if rest:
        lines.append(f"… and {rest} more failed calls")
    return lines
