"""OpenTelemetry spans for agent runs, made from the run's events (``Agent.run(on_event=...)``).

A run is a tree: ``invoke_agent`` -> ``chat {model}`` per model call and ``execute_tool
execute_code`` per program -> ``execute_tool {tool}`` per tool call the program made; direct
tool calls hang off the run. Names and attributes follow the OpenTelemetry GenAI semantic
conventions (``gen_ai.*``); what is openptc's own is ``openptc.*``.

Spans carry counts and names, never payloads: no prompt, no answer, no tool arguments or
results, and by default no program code and no error messages (either may hold a user's data;
``record_programs`` and ``record_errors`` add them). ``error.type`` always says what kind of
failure it was, in few enough values to group by.

The observer reads events, so it needs no hook in the loop and works the same with any model
and sandbox. It follows one run at a time: give each concurrent run its own (they are cheap).
The run's span is a child of whatever span is current when the run starts, so a run inside a
traced web request shows up inside that request's trace.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING

from openptc.events import (
    Event,
    ExecutionFinished,
    ModelCallFinished,
    ModelCallStarted,
    ProgramStarted,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from openptc.prompts import CODE_TOOL_NAME
from openptc.sandbox.base import Execution

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

log = logging.getLogger("openptc.telemetry")

MISSING = "OtelObserver needs OpenTelemetry: pip install 'openptc[otel]'"

# Model-string prefixes as the conventions name their providers (``gen_ai.provider.name``).
PROVIDERS = {
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "bedrock-invoke": "aws.bedrock",
    "openai": "openai",
    "openai-responses": "openai",
}

_EXCEPTION_TYPE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def provider_and_model(model: str) -> tuple[str, str]:
    """``"bedrock:anthropic.claude-..."`` -> ``("aws.bedrock", "anthropic.claude-...")``; a
    local server's address (``...@http://host``) is left out: it is not the model's name."""
    prefix, sep, rest = model.partition(":")
    if not sep:
        return "_OTHER", model
    name = rest.split("@http", 1)[0]
    return PROVIDERS.get(prefix, prefix), name


def error_type(message: str | None, default: str) -> str:
    """A low-cardinality ``error.type``: the error's kind when the message starts with one, as
    events write them (``"KeyError: 'x'"``, ``"cancelled: ..."``), else ``default``; never the
    message itself."""
    found = _EXCEPTION_TYPE.match(message or "")
    return found.group(1) if found else default


class OtelObserver:
    """An ``EventSink`` that turns a run's events into spans: ``agent.run(p, on_event=obs)``.

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace``), so an app that
    already configured OpenTelemetry needs nothing else. ``record_programs`` puts each
    program's code on its span (``openptc.program.code``), ``record_errors`` the error messages
    in the spans' status; leave both off where traces leave the trust boundary of the data.
    ``agent_name`` names the run's span (``invoke_agent {name}``) to tell agents apart.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        record_programs: bool = False,
        record_errors: bool = False,
        agent_name: str | None = None,
    ) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise ImportError(MISSING) from exc
        self._kinds = trace.SpanKind
        self._error = trace.Status(trace.StatusCode.ERROR)
        self._status = trace.Status
        self._in_context = trace.set_span_in_context
        self._tracer: Tracer = trace.get_tracer("openptc", tracer_provider=tracer_provider)
        self._record_programs = record_programs
        self._record_errors = record_errors
        self._agent_name = agent_name
        self._reset()

    def _reset(self) -> None:
        self._run: Span | None = None
        self._provider = "_OTHER"
        self._model = ""
        self._model_calls: dict[int, Span] = {}
        self._executions: dict[int, Span] = {}
        self._program_calls: dict[int, int] = defaultdict(int)
        # When each tool call still running started, per (program, tool): calls carry no id,
        # so a call's span is made when it finishes, timed by its own duration.
        self._running: dict[tuple[int | None, str], deque[int]] = defaultdict(deque)
        self._cache_read = self._cache_write = self._reasoning = 0
        self._reported_usage = False
        self._programs = self._program_errors = 0

    def __call__(self, event: Event) -> None:
        match event:
            case RunStarted():
                self._run_started(event)
            case ModelCallStarted():
                self._model_call_started(event)
            case ModelCallFinished():
                self._model_call_finished(event)
            case ProgramStarted():
                self._program_started(event)
            case ToolCallStarted():
                self._running[(event.program, event.name)].append(time.time_ns())
            case ToolCallFinished():
                self._tool_call_finished(event)
            case ExecutionFinished():
                self._execution_finished(event)
            case RunFinished():
                self._run_finished(event)

    # -- the run ----------------------------------------------------------------------------------
    def _run_started(self, event: RunStarted) -> None:
        if self._run is not None:
            log.warning("a run started before the last one finished: one observer per run")
            self._close_open("superseded")
            self._run.end()
        self._reset()
        self._provider, self._model = provider_and_model(event.model)
        name = f"invoke_agent {self._agent_name}" if self._agent_name else "invoke_agent"
        self._run = self._tracer.start_span(name, kind=self._kinds.INTERNAL)
        self._run.set_attributes(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": self._provider,
                "gen_ai.request.model": self._model,
                "openptc.mode": event.mode,
                "openptc.tools": list(event.tools),
            }
        )
        if self._agent_name:
            self._run.set_attribute("gen_ai.agent.name", self._agent_name)

    def _run_finished(self, event: RunFinished) -> None:
        run = self._run
        if run is None:
            return
        self._close_open("run_ended")
        run.set_attributes(
            {
                "openptc.stop": event.stop,
                "openptc.model_calls": event.model_calls,
                "openptc.tool_calls": event.tool_calls,
                "openptc.programs": self._programs,
                "openptc.program_errors": self._program_errors,
                "gen_ai.usage.input_tokens": event.input_tokens,
                "gen_ai.usage.output_tokens": event.output_tokens,
            }
        )
        if self._reported_usage:
            run.set_attributes(self._cache_attributes())
        if event.error is not None or event.stop in ("error", "model_error"):
            self._fail(run, error_type(event.error, event.stop), event.error)
        run.end()
        self._run = None

    def _cache_attributes(self) -> dict[str, int]:
        return {
            "gen_ai.usage.cache_read.input_tokens": self._cache_read,
            "gen_ai.usage.cache_creation.input_tokens": self._cache_write,
            "gen_ai.usage.reasoning.output_tokens": self._reasoning,
        }

    def _close_open(self, why: str) -> None:
        """End what the run left open (it failed, or its events stopped short): each span
        marked as not finished, so a trace never hides a call that was cut off."""
        for span in self._model_calls.values():
            self._fail(span, why, None)
            span.end()
        self._model_calls.clear()
        for program in list(self._executions):
            self._end_program(program, None, None, cut_off=why)
        for owner, tool in list(self._running):
            self._unfinished_calls(owner, why, tool)

    # -- model calls ------------------------------------------------------------------------------
    def _model_call_started(self, event: ModelCallStarted) -> None:
        span = self._tracer.start_span(
            f"chat {self._model}" if self._model else "chat",
            context=self._inside(self._run),
            kind=self._kinds.CLIENT,
        )
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": self._provider,
                "gen_ai.request.model": self._model,
                "openptc.model_call": event.number,
            }
        )
        self._model_calls[event.number] = span

    def _model_call_finished(self, event: ModelCallFinished) -> None:
        span = self._model_calls.pop(event.number, None)
        if span is None:
            return
        span.set_attributes(
            {
                "gen_ai.response.finish_reasons": [event.stop_reason],
                "openptc.tool_uses": event.tool_uses,
            }
        )
        usage = event.usage
        if usage is not None:  # none reported: the run's totals count it with the tokenizer
            self._reported_usage = True
            self._cache_read += usage.cache_read_tokens
            self._cache_write += usage.cache_write_tokens
            self._reasoning += usage.reasoning_tokens
            span.set_attributes(
                {  # the conventions' input tokens include the cached ones
                    "gen_ai.usage.input_tokens": usage.input_tokens
                    + usage.cache_read_tokens
                    + usage.cache_write_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
                    "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
                    "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
                }
            )
        span.end()

    # -- programs and tool calls ------------------------------------------------------------------
    def _program_started(self, event: ProgramStarted) -> None:
        self._programs += 1
        span = self._tracer.start_span(
            f"execute_tool {CODE_TOOL_NAME}", context=self._inside(self._run)
        )
        span.set_attributes(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": CODE_TOOL_NAME,
                "gen_ai.tool.type": "function",
                "openptc.program": event.number,
            }
        )
        if self._record_programs:
            span.set_attribute("openptc.program.code", event.code)
        self._executions[event.number] = span

    def _execution_finished(self, event: ExecutionFinished) -> None:
        self._end_program(event.number, event.execution, event.error)

    def _end_program(
        self,
        number: int,
        execution: Execution | None,
        error: str | None,
        cut_off: str | None = None,
    ) -> None:
        """End a program's span; ``cut_off`` says why when the run ended before it did."""
        self._unfinished_calls(number, cut_off or "program_ended")
        span = self._executions.pop(number, None)
        if span is None:
            return
        failed = cut_off is not None or error is not None or not (execution and execution.ok)
        span.set_attributes(
            {
                "openptc.program.ok": not failed,
                "openptc.program.tool_calls": self._program_calls.pop(number, 0),
            }
        )
        if execution is not None:
            span.set_attribute("openptc.program.stdout_chars", len(execution.stdout))
        if failed:
            self._program_errors += 1
            kind = cut_off or ("session_lost" if execution is None else "program_error")
            if execution is not None and execution.error is not None:
                kind = execution.error.kind
            self._fail(span, kind, error)
        span.end()

    def _tool_call_finished(self, event: ToolCallFinished) -> None:
        started = self._running.get((event.program, event.name))
        if started:
            started.popleft()
        end = time.time_ns()
        span = self._tool_span(event.name, event.program, end - int(event.duration_s * 1e9))
        span.set_attribute("openptc.tool.ok", event.ok)
        if not event.ok:
            self._fail(span, error_type(event.error, "tool_error"), event.error)
        span.end(end_time=end)

    def _unfinished_calls(self, program: int | None, why: str, tool: str | None = None) -> None:
        """Calls that started and never finished, as failed spans from their start to now."""
        for (owner, name), starts in list(self._running.items()):
            if owner != program or (tool is not None and name != tool):
                continue
            while starts:
                span = self._tool_span(name, program, starts.popleft())
                span.set_attribute("openptc.tool.ok", False)
                self._fail(span, why, None)
                span.end()
            del self._running[(owner, name)]

    def _tool_span(self, name: str, program: int | None, start: int) -> Span:
        parent = self._executions.get(program) if program is not None else self._run
        span = self._tracer.start_span(
            f"execute_tool {name}", context=self._inside(parent or self._run), start_time=start
        )
        span.set_attributes(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.type": "function",
                "openptc.tool.source": "program" if program is not None else "direct",
            }
        )
        if program is not None:
            self._program_calls[program] += 1
            span.set_attribute("openptc.program", program)
        return span

    # -- helpers ----------------------------------------------------------------------------------
    def _inside(self, parent: Span | None) -> Context | None:
        return self._in_context(parent) if parent is not None else None

    def _fail(self, span: Span, kind: str, message: str | None) -> None:
        span.set_attribute("error.type", kind)
        if self._record_errors and message:
            span.set_status(self._status(self._error.status_code, message))
        else:
            span.set_status(self._error)


__all__ = ["OtelObserver", "error_type", "provider_and_model"]
