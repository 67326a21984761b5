"""Extended thinking through the real ``anthropic`` SDK against the fake, which signs its
thinking and refuses a tool loop whose thinking did not come back unchanged, as the API does."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import pytest_asyncio

from fakes import anthropic_fixture
from fakes.anthropic_fixture import Fake, running
from fakes.anthropic_server import FAKE_API_KEY
from openptc.agent import Agent, RunResult
from openptc.models.base import (
    Message,
    ModelRequest,
    ModelResponse,
    ReasoningBlock,
    TextBlock,
    ToolChoice,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.errors import ModelBadRequest
from openptc.models.settings import ModelSettings, Reasoning, UnsupportedSetting
from openptc.models.tokens import count_reasoning_tokens
from openptc.prompts import Mode
from openptc.recording import RecordingModel, load_transcript, replay_model
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import expense

pytestmark = pytest.mark.asyncio(loop_scope="module")
server, fake = anthropic_fixture.server, anthropic_fixture.fake  # the fixtures

LOW = ModelSettings(reasoning=Reasoning(effort="low"))  # a budget of 2048 tokens
INTERLEAVED = "interleaved-thinking-2025-05-14"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(pool_size=1) as sb:
        yield sb


async def _audit(model: Any, sandbox: LocalSandbox | None, mode: Mode, **run: Any) -> RunResult:
    agent = Agent(model, expense.make_tools(), sandbox, mode=mode, max_turns=80, settings=LOW)
    return await agent.run(expense.QUESTION, **run)


def _lookup() -> ToolSpec:
    return ToolSpec("lookup", "Look a thing up.", {"type": "object", "properties": {}})


def _wire(block: ReasoningBlock) -> dict[str, Any]:
    if block.redacted is not None:
        return {"type": "redacted_thinking", "data": block.redacted}
    return {"type": "thinking", "thinking": block.text, "signature": block.signature}


def _sent_back_unchanged(result: RunResult, bodies: list[dict[str, Any]]) -> None:
    """Each request carried every earlier assistant turn's thinking first, exactly as it came."""
    turns = [m for m in result.transcript if m.role == "assistant"]
    assert len(bodies) == len(turns)
    for k, body in enumerate(bodies):
        sent = [m for m in body["messages"] if m["role"] == "assistant"]
        assert len(sent) == k
        for wired, turn in zip(sent, turns, strict=False):
            expected = [_wire(b) for b in turn.reasoning]
            assert expected and wired["content"][: len(expected)] == expected


# --- the whole scenario -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["ptc", "direct"])
async def test_expense_audit_reasons_between_tool_calls_and_answers_correctly(
    fake: Fake, sandbox: LocalSandbox, mode: Mode, stream: bool
) -> None:
    pieces: list[str] = []
    result = await _audit(fake.model(), sandbox, mode, on_text=pieces.append if stream else None)

    assert expense.is_correct(result.answer), result.answer
    assert result.usage.tokens_counted == "provider"
    # One thinking block per call, each counted from its text.
    assert len(result.reasoning) == result.usage.model_calls
    assert all("The user asked" in thought for thought in result.reasoning)
    assert 0 < result.usage.reasoning_tokens < result.usage.output_tokens
    assert result.usage.reasoning_tokens == sum(
        count_reasoning_tokens(m.reasoning) for m in result.transcript
    )
    if stream:
        assert "".join(pieces) == result.answer
    assert result.usage.cache_read_tokens > 0  # the growing conversation is read back
    _sent_back_unchanged(result, fake.bodies)
    for body, headers in zip(fake.bodies, fake.headers, strict=True):
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert body["max_tokens"] == 4096 + 2048  # the answer keeps its room
        assert headers["anthropic-beta"] == INTERLEAVED
        assert body.get("stream") is (True if stream else None)


async def test_in_ptc_mode_the_second_call_reads_the_first_from_the_cache(
    sandbox: LocalSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    async with running() as fresh:  # a cache that has seen nothing yet
        model = RecordingModel(fresh.model(), path, mode="ptc", prompt=expense.QUESTION)
        result = await _audit(model, sandbox, "ptc")

    _, responses = load_transcript(path)
    first, second = (r.usage for r in responses)
    assert first is not None and second is not None
    assert first.cache_read_tokens == 0 and first.cache_write_tokens > 1024
    assert second.cache_read_tokens == first.cache_write_tokens  # all of the first request
    assert second.cache_write_tokens > 0  # its thinking, tool use and result, now marked
    assert result.usage.cache_read_tokens == second.cache_read_tokens


async def test_a_streamed_thinking_turn_equals_the_same_turn_unstreamed() -> None:
    async with running(redacted_thinking=True) as fake:
        fake.answer_with(lambda _r: [TextBlock("Looking."), ToolUseBlock("toolu_a", "lookup")])
        model = fake.model()
        request = ModelRequest("Be brief.", (Message.user("hi"),), (_lookup(),), 1024, settings=LOW)
        pieces: list[str] = []
        streamed = await model.generate(request, on_text=pieces.append)
        plain = await model.generate(request)

    assert streamed == plain
    thought, redacted, text, use = streamed.content
    assert isinstance(thought, ReasoningBlock) and thought.wire == "anthropic"
    assert thought.text.startswith("The user asked") and thought.signature
    assert isinstance(redacted, ReasoningBlock) and redacted.redacted and not redacted.text
    assert text == TextBlock("Looking.") and isinstance(use, ToolUseBlock)
    assert "".join(pieces) == "Looking."  # thinking is never handed over as text
    assert streamed.usage is not None
    assert streamed.usage.reasoning_tokens == count_reasoning_tokens([thought]) > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_redacted_thinking_goes_back_unchanged_at_its_place(
    sandbox: LocalSandbox, stream: bool
) -> None:
    async with running(redacted_thinking=True) as fake:
        on_text = (lambda _t: None) if stream else None
        result = await _audit(fake.model(), sandbox, "ptc", on_text=on_text)
        bodies = fake.bodies

    assert expense.is_correct(result.answer)
    thought, redacted = result.transcript[1].reasoning
    assert redacted.redacted and not redacted.text
    assert len(result.reasoning) == 2  # the readable thinking of both calls; redacted has none
    _, wired, _ = bodies[1]["messages"]
    assert [b["type"] for b in wired["content"]] == ["thinking", "redacted_thinking", "tool_use"]
    assert wired["content"][:2] == [_wire(thought), _wire(redacted)]


# --- the fake's checks: what the API refuses ----------------------------------------------


def _call_then_answer(request: ModelRequest) -> list[Any] | str:
    return "done" if request.messages[-1].results else [ToolUseBlock("toolu_1", "lookup")]


async def _first_turn(
    fake: Fake, settings: ModelSettings = LOW, model: str = "claude-x"
) -> tuple[ModelRequest, ModelResponse]:
    """A request with reasoning on, and the fake's first answer: thinking, then a tool use."""
    fake.answer_with(_call_then_answer)
    request = ModelRequest("Be brief.", (Message.user("hi"),), (_lookup(),), 1024)
    request = dataclasses.replace(request, settings=settings)
    return request, await fake.model(model).generate(request)


def _continue(request: ModelRequest, *assistant: Any) -> ModelRequest:
    results = Message.tool_results([ToolResultBlock("toolu_1", "found")])
    messages = (*request.messages, Message.assistant(assistant), results)
    return dataclasses.replace(request, messages=messages)


async def test_the_loop_continues_when_the_thinking_comes_back(fake: Fake) -> None:
    request, first = await _first_turn(fake)

    answer = await fake.model().generate(_continue(request, *first.content))

    assert answer.text == "done" and len(answer.reasoning) == 1


async def test_dropping_the_thinking_of_a_tool_loop_is_refused_by_the_fake(fake: Fake) -> None:
    request, first = await _first_turn(fake)

    with pytest.raises(ModelBadRequest) as caught:
        await fake.model().generate(_continue(request, *first.tool_uses))

    said = str(caught.value)
    assert "400 invalid_request_error" in said
    assert "Expected `thinking` or `redacted_thinking`, but found `tool_use`" in said


async def test_altering_a_thinking_block_is_refused_by_the_fake(fake: Fake) -> None:
    request, first = await _first_turn(fake)
    (thought,) = first.reasoning
    altered = dataclasses.replace(thought, text=thought.text + " (edited)")

    with pytest.raises(ModelBadRequest, match="cannot be modified"):
        await fake.model().generate(_continue(request, altered, *first.tool_uses))


async def test_a_forged_thinking_block_in_an_earlier_turn_is_refused(fake: Fake) -> None:
    request, first = await _first_turn(fake)
    forged = ReasoningBlock("I thought so.", "anthropic", signature="c2lnbmF0dXJl")
    earlier = (Message.user("before"), Message.assistant([forged, TextBlock("ok")]))
    request = dataclasses.replace(request, messages=(*earlier, *request.messages))

    with pytest.raises(ModelBadRequest, match="Invalid `signature` in `thinking` block"):
        await fake.model().generate(_continue(request, *first.content))


async def test_reasoning_of_other_apis_is_left_out_and_ours_kept_in_place(fake: Fake) -> None:
    request, first = await _first_turn(fake)
    theirs = ReasoningBlock("o-series summary", "openai-responses", id="rs_1", encrypted="x")
    converse = ReasoningBlock("converse", "bedrock", signature="sig")

    answer = await fake.model().generate(_continue(request, theirs, *first.content, converse))

    assert answer.text == "done"
    (thought,) = first.reasoning
    _, wired, _ = fake.bodies[-1]["messages"]
    assert [b["type"] for b in wired["content"]] == ["thinking", "tool_use"]
    assert wired["content"][0] == _wire(thought)


async def _send(fake: Fake, beta: str | None = None, **change: Any) -> anthropic.types.Message:
    """A request with thinking on, straight through the SDK; ``change`` replaces its fields.

    Only the required fields are keyword arguments: the SDK no longer names ``temperature``,
    ``top_p`` and ``top_k``, so every other field goes as ``extra_body``, the same JSON.
    """
    optional: dict[str, Any] = {
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
    }
    optional.update(change)
    required = {k: optional.pop(k, v) for k, v in (("max_tokens", 4096), ("model", "claude-x"))}
    headers = {"anthropic-beta": beta} if beta else None
    client = anthropic.AsyncAnthropic(api_key=FAKE_API_KEY, base_url=fake.url, max_retries=0)
    async with client:
        reply: anthropic.types.Message = await client.messages.create(
            **required,
            messages=[{"role": "user", "content": "hi"}],
            extra_body=optional,
            extra_headers=headers,
        )
    return reply


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"temperature": 0.2}, "`temperature` may only be set to 1 when thinking is enabled"),
        ({"top_k": 5}, "`top_k` must be unset when thinking is enabled"),
        ({"top_p": 0.5}, "`top_p` must be unset or at least 0.95 when thinking is enabled"),
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 2048},
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            {"tool_choice": {"type": "any"}},
            "Thinking may not be enabled when tool_choice forces tool use",
        ),
    ],
)
async def test_the_fake_refuses_what_the_api_refuses_with_thinking(
    fake: Fake, change: dict[str, Any], said: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await _send(fake, **change)

    assert said in caught.value.message


async def test_with_interleaved_thinking_the_budget_may_exceed_max_tokens(fake: Fake) -> None:
    large = {"type": "enabled", "budget_tokens": 8000}
    with pytest.raises(anthropic.BadRequestError, match="must be greater than"):
        await _send(fake, thinking=large)

    accepted = await _send(fake, beta=INTERLEAVED, thinking=large)

    assert [b.type for b in accepted.content] == ["thinking", "text"]


# --- refused before any request -----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "choice", "setting", "advice"),
    [
        (dict(temperature=0.2), None, "temperature", "leave temperature unset"),
        (dict(top_k=40), None, "top_k", "leave it unset"),
        (dict(top_p=0.5), None, "top_p", "from 0.95 to 1"),
        ({}, ToolChoice("any"), "tool_choice", "ToolChoice('auto')"),
        ({}, ToolChoice("tool", "lookup"), "tool_choice", "ToolChoice('auto')"),
    ],
)
async def test_settings_thinking_cannot_take_are_refused_before_any_request(
    fake: Fake, settings: dict[str, Any], choice: ToolChoice | None, setting: str, advice: str
) -> None:
    chosen = ModelSettings(reasoning=Reasoning(effort="high"), **settings)
    request = ModelRequest("s", (Message.user("hi"),), (_lookup(),), 1024, choice, chosen)

    with pytest.raises(UnsupportedSetting) as caught:
        await fake.model().generate(request, on_text=lambda _t: None)

    assert fake.bodies == []
    assert caught.value.setting == setting
    message = str(caught.value)
    assert message.startswith(f"{setting} is not supported by anthropic")
    assert advice in message and "reasoning" in message


async def test_top_p_of_at_least_0_95_and_temperature_1_are_allowed_with_thinking(
    fake: Fake,
) -> None:
    settings = ModelSettings(reasoning=Reasoning(budget_tokens=1500), top_p=0.97, temperature=1)
    request = ModelRequest("s", (Message.user("hi"),), (), 100, settings=settings)

    response = await fake.model().generate(request)

    (body,) = fake.bodies
    assert response.text == "You said: hi" and len(response.reasoning) == 1
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    assert body["max_tokens"] == 1600 and body["top_p"] == 0.97 and body["temperature"] == 1


async def test_adaptive_thinking_asked_through_extra_round_trips_the_same(fake: Fake) -> None:
    adaptive = ModelSettings(
        extra={"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}
    )
    request, first = await _first_turn(fake, adaptive)

    answer = await fake.model().generate(_continue(request, *first.content))

    assert answer.text == "done" and len(first.reasoning) == 1
    body = fake.bodies[-1]
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "low"}
    assert body["max_tokens"] == 1024  # no budget: the model decides
    assert "anthropic-beta" not in fake.headers[-1]  # adaptive thinking interleaves by itself


@pytest.mark.parametrize(
    ("model", "reasoning", "thinking"),
    [
        # Claude 4.7 and later take only adaptive thinking: the effort says how much.
        ("claude-opus-4-8", Reasoning(effort="medium"), {"type": "adaptive"}),
        ("claude-sonnet-5", Reasoning(budget_tokens=3000), {"type": "adaptive"}),
        ("claude-mythos-5", Reasoning(effort="minimal"), {"type": "adaptive"}),
        # Claude 4.6 takes both: an effort asks adaptively, a budget manually.
        ("claude-sonnet-4-6", Reasoning(effort="high"), {"type": "adaptive"}),
        ("claude-sonnet-4-6", Reasoning(budget_tokens=3000), {"type": "enabled"}),
        # Up to 4.5, and names openptc does not know, take a budget.
        ("claude-sonnet-4-5-20250929", Reasoning(effort="high"), {"type": "enabled"}),
        ("claude-3-7-sonnet-20250219", Reasoning(effort="low"), {"type": "enabled"}),
    ],
)
async def test_the_model_name_picks_adaptive_or_budgeted_thinking(
    fake: Fake, model: str, reasoning: Reasoning, thinking: dict[str, str]
) -> None:
    request, first = await _first_turn(fake, ModelSettings(reasoning=reasoning), model)

    answer = await fake.model(model).generate(_continue(request, *first.content))

    assert answer.text == "done" and len(first.reasoning) == 1
    body, headers = fake.bodies[-1], fake.headers[-1]
    assert body["max_tokens"] == 1024 + reasoning.budget()
    if thinking["type"] == "adaptive":
        effort = {"minimal": "low"}.get(reasoning.level(), reasoning.level())
        assert body["thinking"] == thinking and body["output_config"] == {"effort": effort}
        assert "anthropic-beta" not in headers  # adaptive thinking interleaves by itself
    else:
        assert body["thinking"] == {**thinking, "budget_tokens": reasoning.budget()}
        assert "output_config" not in body and headers["anthropic-beta"] == INTERLEAVED


# --- a recorded transcript, replayed offline ----------------------------------------------


async def test_a_recorded_reasoning_run_replays_offline_with_the_same_reasoning(
    fake: Fake, sandbox: LocalSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "reasoning.jsonl"
    recording = RecordingModel(fake.model(), path, mode="ptc", prompt=expense.QUESTION)
    original = await _audit(recording, sandbox, "ptc")
    served = len(fake.bodies)

    replayed = await _audit(replay_model(path), sandbox, "ptc")

    assert len(fake.bodies) == served == 2  # the replay never reached the provider
    assert replayed.answer == original.answer and expense.is_correct(replayed.answer)
    assert replayed.programs == original.programs
    assert replayed.reasoning == original.reasoning and len(original.reasoning) == 2
    _, responses = load_transcript(path)
    saved = [b for r in responses for b in r.reasoning]
    assert saved == [b for m in original.transcript for b in m.reasoning]
    assert all(b.signature for b in saved)  # kept to be sent back, were the run resumed
    lines = path.read_text().splitlines()
    assert json.loads(lines[1])["content"][0]["type"] == "reasoning"
