"""Spans of real agent runs: the expense audit with the offline scripted model, real tools and
the real local sandbox, observed through ``Agent.run(on_event=OtelObserver(...))``."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from fakes.proxy_setup import MeteredModel
from openptc.agent import Agent, RunResult
from openptc.models.base import ModelResponse, ModelUsage, TextBlock, ToolUseBlock
from openptc.prompts import CODE_TOOL_NAME
from openptc.scenarios import expense
from openptc.telemetry import OtelObserver

QUESTION = "Which engineering team members exceeded their Q3 travel budget?"


def observed() -> tuple[OtelObserver, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelObserver(provider), exporter


async def audit(agent: Agent, observer: OtelObserver) -> RunResult:
    try:
        return await agent.run(QUESTION, on_event=observer)
    finally:
        await agent.aclose()


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def children(parent: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent == parent.context]


async def test_the_audit_run_is_one_trace_of_model_calls_program_and_tool_calls() -> None:
    observer, exporter = observed()
    result = await audit(Agent("scripted:expense-audit", expense.make_tools()), observer)
    assert expense.is_correct(result.answer)
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.parent is None]
    assert run.name == "invoke_agent"
    under_run = children(run, spans)
    chats = [s for s in under_run if s.name == "chat expense-audit"]
    (program,) = [s for s in under_run if s.name == f"execute_tool {CODE_TOOL_NAME}"]
    assert len(chats) == result.usage.model_calls == 2
    assert len(under_run) == 3  # the program's tool calls are not the run's children
    calls = children(program, spans)
    assert len(calls) == result.usage.tool_calls == len(result.executions[0].tool_calls)
    assert len(spans) == 1 + 2 + 1 + len(calls)
    assert sorted({s.name for s in calls}) == [
        "execute_tool get_custom_budget",
        "execute_tool get_expenses",
        "execute_tool get_team_members",
    ]
    for call in calls:
        assert attrs(call)["openptc.tool.source"] == "program"
        assert attrs(call)["openptc.program"] == 1
        assert attrs(call)["openptc.tool.ok"] is True
        assert (call.start_time or 0) >= (program.start_time or 0)
    assert attrs(run) | {"openptc.tools": None} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "expense-audit",
        "openptc.mode": "ptc",
        "openptc.tools": None,
        "openptc.stop": result.stop,
        "openptc.model_calls": result.usage.model_calls,
        "openptc.tool_calls": result.usage.tool_calls,
        "openptc.programs": result.usage.executions,
        "openptc.program_errors": result.usage.program_errors,
        "gen_ai.usage.input_tokens": result.usage.input_tokens,
        "gen_ai.usage.output_tokens": result.usage.output_tokens,
    }
    assert attrs(program)["openptc.program.tool_calls"] == len(calls)
    assert attrs(program)["openptc.program.stdout_chars"] == len(result.executions[0].stdout)
    assert [tuple(attrs(c)["gen_ai.response.finish_reasons"]) for c in chats] == [
        ("tool_use",),
        ("end_turn",),
    ]


async def test_nothing_the_program_or_its_tools_handled_is_in_any_attribute() -> None:
    observer, exporter = observed()
    result = await audit(Agent("scripted:expense-audit", expense.make_tools()), observer)
    recorded = "\n".join(
        str(v) for s in exporter.get_finished_spans() for v in (s.attributes or {}).values()
    )
    (program,) = result.programs
    assert program.strip() and program.strip() not in recorded
    code_lines = [line.strip() for line in program.splitlines() if len(line.strip()) > 12]
    assert code_lines and not [line for line in code_lines if line in recorded]
    arguments = {
        str(v) for e in result.executions for c in e.tool_calls for v in c.arguments.values()
    }
    assert arguments and not [a for a in arguments if a in recorded]
    assert QUESTION not in recorded and result.answer not in recorded


async def test_direct_calls_hang_off_the_run() -> None:
    observer, exporter = observed()
    agent = Agent("scripted:expense-audit", expense.make_tools(), mode="direct")
    result = await audit(agent, observer)
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.parent is None]
    calls = [s for s in children(run, spans) if s.name.startswith("execute_tool ")]
    assert len(calls) == result.usage.tool_calls > 1
    assert {attrs(c)["openptc.tool.source"] for c in calls} == {"direct"}
    assert all("openptc.program" not in attrs(c) for c in calls)
    assert attrs(run)["openptc.programs"] == 0


async def test_token_counts_per_model_call_add_up_to_the_run() -> None:
    """A backend that reports usage, cache reads and writes and reasoning included."""
    observer, exporter = observed()
    model = MeteredModel(
        ModelResponse(
            (ToolUseBlock("toolu_1", CODE_TOOL_NAME, {"code": expense.REFERENCE_PROGRAM}),),
            "tool_use",
            ModelUsage(
                120, 80, cache_read_tokens=2000, cache_write_tokens=300, reasoning_tokens=25
            ),
            "metered",
        ),
        ModelResponse(
            (TextBlock("Done."),),
            "end_turn",
            ModelUsage(400, 30, cache_read_tokens=2300, reasoning_tokens=5),
            "metered",
        ),
    )
    result = await audit(Agent(model, expense.make_tools()), observer)
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.parent is None]
    chats = sorted(
        (s for s in spans if s.name == "chat metered"),
        key=lambda s: int(attrs(s)["openptc.model_call"]),
    )
    assert [attrs(c)["gen_ai.usage.input_tokens"] for c in chats] == [2420, 2700]
    usage = result.usage
    assert attrs(run)["gen_ai.usage.input_tokens"] == usage.input_tokens == 2420 + 2700
    assert attrs(run)["gen_ai.usage.output_tokens"] == usage.output_tokens == 110
    assert attrs(run)["gen_ai.usage.cache_read.input_tokens"] == usage.cache_read_tokens == 4300
    assert attrs(run)["gen_ai.usage.cache_creation.input_tokens"] == usage.cache_write_tokens
    assert attrs(run)["gen_ai.usage.reasoning.output_tokens"] == usage.reasoning_tokens == 30
    assert run.status.status_code is StatusCode.UNSET


async def test_a_run_that_raises_still_ends_its_span_as_an_error() -> None:
    """The first model call fails (no turn left): the run raises, its span says why."""
    observer, exporter = observed()
    agent = Agent(MeteredModel(), expense.make_tools())
    try:
        await audit(agent, observer)
    except Exception as exc:
        raised = type(exc).__name__
    else:
        raise AssertionError("the run should have raised")
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.parent is None]
    assert run.status.status_code is StatusCode.ERROR
    assert attrs(run)["error.type"] == raised
    assert attrs(run)["openptc.stop"] == "error"
    (chat,) = children(run, spans)
    assert chat.status.status_code is StatusCode.ERROR
