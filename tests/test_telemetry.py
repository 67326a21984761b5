"""OpenTelemetry spans from a run's events: names, nesting, counts, and no payloads by default.

The spans go to the SDK's in-memory exporter; the events are fed in the order ``events.py``
promises (an end-to-end run of the expense audit is in ``test_telemetry_agent``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

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
from openptc.models.base import ModelUsage
from openptc.sandbox.base import Execution, ExecutionError, Isolation
from openptc.telemetry import OtelObserver, error_type, provider_and_model

SECRET_CODE = "rows = await get_expenses(user_id='u-4711-secret', quarter='Q3')\nprint(rows)"
SECRET_ERROR = "ValueError: no user 'u-4711-secret'"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    yield found
    found.clear()


def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    return made


def execution(stdout: str, error: ExecutionError | None = None) -> Execution:
    return Execution(
        stdout=stdout,
        stderr="",
        error=error,
        tool_calls=(),
        duration_ms=12.0,
        isolation=Isolation(level="none"),
    )


def audit_events() -> list[Event]:
    """Two model calls around one program (three calls, two in flight at once, one failing),
    then a direct call and the answer."""
    return [
        RunStarted("bedrock:anthropic.claude-sonnet-4-6", "hybrid", ("get_expenses", "notify")),
        ModelCallStarted(1),
        ModelCallFinished(1, ModelUsage(100, 40, 900, 50, 12), "tool_use", 1, 0.5),
        ProgramStarted(1, SECRET_CODE),
        ToolCallStarted("get_expenses", "program", 1),
        ToolCallStarted("get_expenses", "program", 1),
        ToolCallFinished("get_expenses", "program", 1, True, None, 0.02),
        ToolCallFinished("get_expenses", "program", 1, False, SECRET_ERROR, 0.03),
        ToolCallStarted("notify", "program", 1),
        ToolCallFinished("notify", "program", 1, True, None, 0.01),
        ExecutionFinished(1, execution("2 over budget\n"), None),
        ModelCallStarted(2),
        ModelCallFinished(2, ModelUsage(30, 20, 1000, 0, 0), "tool_use", 1, 0.4),
        ToolCallStarted("notify", "direct", None),
        ToolCallFinished("notify", "direct", None, True, None, 0.01),
        RunFinished("answered", 2, 4, 2080, 60),
    ]


def by_name(spans: Sequence[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    grouped: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        grouped.setdefault(span.name, []).append(span)
    return grouped


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context is not None and s.context == span.parent)


def every_value(spans: Sequence[ReadableSpan]) -> str:
    texts = [str(v) for s in spans for v in (s.attributes or {}).values()]
    texts += [s.status.description or "" for s in spans]
    return "\n".join(texts)


def test_spans_nest_run_model_calls_programs_and_tool_calls(
    exporter: InMemorySpanExporter,
) -> None:
    observer = OtelObserver(provider(exporter))
    for event in audit_events():
        observer(event)
    spans = exporter.get_finished_spans()
    named = by_name(spans)
    assert sorted((n, len(s)) for n, s in named.items()) == [
        ("chat anthropic.claude-sonnet-4-6", 2),
        ("execute_tool execute_code", 1),
        ("execute_tool get_expenses", 2),
        ("execute_tool notify", 2),
        ("invoke_agent", 1),
    ]
    (run,) = named["invoke_agent"]
    (program,) = named["execute_tool execute_code"]
    assert run.parent is None
    for span in named["chat anthropic.claude-sonnet-4-6"] + [program]:
        assert parent_of(span, spans) is run
    for span in named["execute_tool get_expenses"]:
        assert parent_of(span, spans) is program
    direct = [
        s for s in named["execute_tool notify"] if s.attributes["openptc.tool.source"] == "direct"
    ]
    assert [parent_of(s, spans) for s in direct] == [run]
    assert {s.context.trace_id for s in spans if s.context} == {run.context.trace_id}


def test_attributes_carry_the_counts_of_the_run(exporter: InMemorySpanExporter) -> None:
    observer = OtelObserver(provider(exporter))
    for event in audit_events():
        observer(event)
    named = by_name(exporter.get_finished_spans())
    (run,) = named["invoke_agent"]
    assert run.attributes is not None
    assert dict(run.attributes) | {"openptc.tools": list(run.attributes["openptc.tools"])} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "aws.bedrock",
        "gen_ai.request.model": "anthropic.claude-sonnet-4-6",
        "openptc.mode": "hybrid",
        "openptc.tools": ["get_expenses", "notify"],
        "openptc.stop": "answered",
        "openptc.model_calls": 2,
        "openptc.tool_calls": 4,
        "openptc.programs": 1,
        "openptc.program_errors": 0,
        "gen_ai.usage.input_tokens": 2080,
        "gen_ai.usage.output_tokens": 60,
        "gen_ai.usage.cache_read.input_tokens": 1900,
        "gen_ai.usage.cache_creation.input_tokens": 50,
        "gen_ai.usage.reasoning.output_tokens": 12,
    }
    assert run.status.status_code is StatusCode.UNSET
    first = next(
        s
        for s in named["chat anthropic.claude-sonnet-4-6"]
        if s.attributes["openptc.model_call"] == 1
    )
    assert first.attributes is not None
    assert first.attributes["gen_ai.usage.input_tokens"] == 100 + 900 + 50  # cached included
    assert first.attributes["gen_ai.usage.output_tokens"] == 40
    assert first.attributes["gen_ai.usage.cache_read.input_tokens"] == 900
    assert first.attributes["gen_ai.usage.cache_creation.input_tokens"] == 50
    assert first.attributes["gen_ai.usage.reasoning.output_tokens"] == 12
    assert tuple(first.attributes["gen_ai.response.finish_reasons"]) == ("tool_use",)
    assert first.attributes["openptc.tool_uses"] == 1
    (program,) = named["execute_tool execute_code"]
    assert program.attributes is not None
    assert program.attributes["openptc.program"] == 1
    assert program.attributes["openptc.program.tool_calls"] == 3
    assert program.attributes["openptc.program.ok"] is True
    assert program.attributes["openptc.program.stdout_chars"] == len("2 over budget\n")


def test_a_failed_tool_call_is_an_error_span_with_its_type_but_not_its_message(
    exporter: InMemorySpanExporter,
) -> None:
    observer = OtelObserver(provider(exporter))
    for event in audit_events():
        observer(event)
    calls = by_name(exporter.get_finished_spans())["execute_tool get_expenses"]
    failed = [s for s in calls if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1
    assert failed[0].attributes is not None
    assert failed[0].attributes["error.type"] == "ValueError"
    assert failed[0].attributes["openptc.tool.ok"] is False
    assert failed[0].status.description is None
    durations = sorted((s.end_time or 0) - (s.start_time or 0) for s in calls)
    assert durations == [pytest.approx(20_000_000, rel=0.05), pytest.approx(30_000_000, rel=0.05)]


def test_no_program_code_tool_argument_or_error_message_by_default(
    exporter: InMemorySpanExporter,
) -> None:
    observer = OtelObserver(provider(exporter))
    for event in audit_events():
        observer(event)
    recorded = every_value(exporter.get_finished_spans())
    assert "u-4711-secret" not in recorded
    assert "get_expenses(" not in recorded


def test_program_code_and_error_messages_only_when_asked(exporter: InMemorySpanExporter) -> None:
    observer = OtelObserver(provider(exporter), record_programs=True, record_errors=True)
    for event in audit_events():
        observer(event)
    named = by_name(exporter.get_finished_spans())
    (program,) = named["execute_tool execute_code"]
    assert program.attributes is not None
    assert program.attributes["openptc.program.code"] == SECRET_CODE
    failed = next(
        s for s in named["execute_tool get_expenses"] if s.status.status_code is StatusCode.ERROR
    )
    assert failed.status.description == SECRET_ERROR


def test_a_failing_run_ends_every_open_span_as_cut_off(exporter: InMemorySpanExporter) -> None:
    """The run raised while a program waited on a tool: nothing is left open, all say why."""
    observer = OtelObserver(provider(exporter), agent_name="auditor")
    for event in [
        RunStarted("scripted:expense-audit", "ptc", ("get_expenses",)),
        ModelCallStarted(1),
        ModelCallFinished(1, None, "tool_use", 1, 0.1),
        ProgramStarted(1, SECRET_CODE),
        ToolCallStarted("get_expenses", "program", 1),
        RunFinished("error", 1, 0, 300, 20, error="ModelError: the backend failed"),
    ]:
        observer(event)
    named = by_name(exporter.get_finished_spans())
    (run,) = named["invoke_agent auditor"]
    assert run.attributes is not None
    assert run.attributes["gen_ai.agent.name"] == "auditor"
    assert run.attributes["gen_ai.provider.name"] == "scripted"
    assert run.attributes["error.type"] == "ModelError"
    assert "gen_ai.usage.cache_read.input_tokens" not in run.attributes  # none reported
    assert run.status.status_code is StatusCode.ERROR
    (chat,) = named["chat expense-audit"]
    assert chat.attributes is not None
    assert "gen_ai.usage.input_tokens" not in chat.attributes
    (program,) = named["execute_tool execute_code"]
    (call,) = named["execute_tool get_expenses"]
    for span in (program, call):
        assert span.attributes is not None
        assert span.attributes["error.type"] == "run_ended"
        assert span.status.status_code is StatusCode.ERROR
    assert program.attributes is not None
    assert program.attributes["openptc.program.tool_calls"] == 1


def test_a_program_that_failed_or_lost_its_session_is_an_error(
    exporter: InMemorySpanExporter,
) -> None:
    observer = OtelObserver(provider(exporter))
    crash = ExecutionError(kind="exception", type="KeyError", message="'amt'")
    for event in [
        RunStarted("openai:gpt-4.1", "ptc", ()),
        ProgramStarted(1, "print(1)"),
        ExecutionFinished(1, execution("", crash), "KeyError: 'amt'"),
        ProgramStarted(2, "print(2)"),
        ExecutionFinished(2, None, "the sandbox session was lost"),
        RunFinished("program_errors", 0, 0, 0, 0),
    ]:
        observer(event)
    named = by_name(exporter.get_finished_spans())
    kinds = sorted(
        str((s.attributes or {})["error.type"]) for s in named["execute_tool execute_code"]
    )
    assert kinds == ["exception", "session_lost"]
    (run,) = named["invoke_agent"]
    assert run.attributes is not None
    assert run.attributes["openptc.program_errors"] == 2
    assert run.status.status_code is StatusCode.UNSET  # the run itself ended as it should


def test_one_observer_serves_runs_one_after_another(exporter: InMemorySpanExporter) -> None:
    observer = OtelObserver(provider(exporter))
    for _ in range(2):
        for event in audit_events():
            observer(event)
    runs = by_name(exporter.get_finished_spans())["invoke_agent"]
    assert len(runs) == 2
    assert runs[0].context is not None and runs[1].context is not None
    assert runs[0].context.trace_id != runs[1].context.trace_id
    assert all((r.attributes or {})["openptc.programs"] == 1 for r in runs)


def test_names_for_the_conventions() -> None:
    assert provider_and_model("anthropic:claude-sonnet-4-6") == ("anthropic", "claude-sonnet-4-6")
    assert provider_and_model("openai-compatible:qwen3@http://10.0.0.2:8000/v1") == (
        "openai-compatible",
        "qwen3",
    )
    assert provider_and_model("my-model") == ("_OTHER", "my-model")
    assert error_type("TimeoutError: slow", "tool_error") == "TimeoutError"
    assert error_type("no such user 'x'", "tool_error") == "tool_error"
    assert error_type(None, "run_ended") == "run_ended"


def test_without_opentelemetry_the_error_names_the_extra() -> None:
    """A fresh interpreter where ``opentelemetry`` cannot be imported (``sys.modules`` set to
    None is how Python spells "not installed")."""
    script = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from openptc.telemetry import OtelObserver\n"
        "try:\n    OtelObserver()\nexcept ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "OtelObserver needs OpenTelemetry: pip install 'openptc[otel]'"
