"""Reasoning through Bedrock Converse: asked for in each family's words, returned as reasoning
blocks, carried back unchanged through a tool loop, counted, recorded and replayed.

boto3 against the fake Bedrock (``fakes.bedrock_server``), which signs Claude's thinking and
refuses, as Claude does, a tool loop that lost or altered it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fakes.bedrock_session import FAST, LOOKUP, SONNET, bedrock, bodies, client, lookup_then_answer
from openptc.agent import Agent, RunResult
from openptc.models import (
    Message,
    ModelRequest,
    ModelSettings,
    Reasoning,
    ReasoningBlock,
    TextBlock,
    ToolResultBlock,
)
from openptc.models.bedrock_converse import BedrockConverseModel, converse_request
from openptc.models.bedrock_settings import INTERLEAVED_THINKING
from openptc.models.errors import ModelBadRequest
from openptc.models.tokens import count_reasoning_tokens
from openptc.recording import RecordingModel, load_transcript, replay_model
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import expense

pytestmark = pytest.mark.usefixtures("no_ambient_aws")

BUDGET = ModelSettings(reasoning=Reasoning(budget_tokens=2048))


def reasoning_tokens_of(result: RunResult) -> int:
    return sum(count_reasoning_tokens(m.content) for m in result.transcript)


def sent_reasoning(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The reasoning blocks of each assistant message of one Converse body."""
    return [
        [b["reasoningContent"] for b in m["content"] if "reasoningContent" in b]
        for m in body["messages"]
        if m["role"] == "assistant"
    ]


# --- the whole scenario ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ptc", "direct"])
async def test_expense_audit_reasons_and_caches_through_converse(
    sandbox: LocalSandbox, mode: Any
) -> None:
    async with bedrock() as (url, recorder):
        model = BedrockConverseModel(SONNET, client=client(url), retry=FAST)
        agent = Agent(
            model, expense.make_tools(), sandbox, mode=mode, max_turns=80, settings=BUDGET
        )
        result = await agent.run(expense.QUESTION)

    assert expense.is_correct(result.answer), result.answer
    members = len(expense.default_data().team("engineering"))
    assert result.usage.model_calls == (2 if mode == "ptc" else 2 + 2 * members)
    # Interleaved thinking: the model reasoned on every call, and each is kept in order.
    assert len(result.reasoning) == result.usage.model_calls
    assert all("tool result(s) so far" in text for text in result.reasoning)
    assert result.usage.reasoning_tokens == reasoning_tokens_of(result) > 0
    # The stable prefix was written to the cache once and read back after.
    assert result.usage.cache_write_tokens > 0 and result.usage.cache_read_tokens > 0
    assert result.usage.input_tokens > result.usage.cache_read_tokens

    sent = bodies(recorder)
    for body in sent:
        assert body["additionalModelRequestFields"] == {
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "anthropic_beta": [INTERLEAVED_THINKING],
        }
        assert body["inferenceConfig"] == {"maxTokens": 4096 + 2048}
    # The last request carried every earlier reasoning block back, first in its turn, as it came.
    returned = [m for m in result.transcript[:-1] if m.role == "assistant"]
    assert sent_reasoning(sent[-1]) == [
        [{"reasoningText": {"text": b.text, "signature": b.signature}} for b in m.reasoning]
        for m in returned
    ]
    assert all("reasoningContent" in m["content"][0] for m in sent[-1]["messages"][1::2])


async def test_streamed_reasoning_and_redacted_blocks_equal_the_plain_call(
    sandbox: LocalSandbox,
) -> None:
    async with bedrock(redacted_thinking=True) as (url, recorder):
        model = BedrockConverseModel(SONNET, client=client(url), retry=FAST)
        agent = Agent(model, expense.make_tools(), sandbox, settings=BUDGET)
        deltas: list[str] = []
        result = await agent.run(expense.QUESTION, on_text=deltas.append)

        assert expense.is_correct(result.answer), result.answer
        assert "".join(deltas) == result.answer  # reasoning is not shown as answer text
        first = result.transcript[1]
        hidden, shown = first.reasoning
        assert hidden.redacted is not None and hidden.text == "" and hidden.signature is None
        assert shown.text and shown.signature and shown.redacted is None
        # Redacted content went back as the same bytes (base64 on the wire, as AWS sends blobs).
        assert sent_reasoning(bodies(recorder)[1])[0] == [
            {"redactedContent": hidden.redacted},
            {"reasoningText": {"text": shown.text, "signature": shown.signature}},
        ]

        request = ModelRequest(
            agent.system, result.transcript[:1], agent.tool_specs, 4096, None, BUDGET
        )
        streamed = await model.generate(request, on_text=lambda _: None)
        plain = await model.generate(request)
    assert streamed == plain
    assert plain.reasoning == first.reasoning
    assert base64.b64decode(plain.reasoning[0].redacted or "")  # opaque bytes, kept whole


# --- Claude's rules on reasoning sent back -------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_loop_that_lost_or_altered_its_reasoning_is_refused(stream: bool) -> None:
    on_text = (lambda _: None) if stream else None
    async with bedrock(lookup_then_answer) as (url, recorder):
        model = BedrockConverseModel(SONNET, client=client(url), retry=FAST)
        question = Message.user("What is the number?")
        first = await model.generate(
            ModelRequest("s", (question,), (LOOKUP,), settings=BUDGET), on_text=on_text
        )
        (thought,) = first.reasoning
        (use,) = first.tool_uses
        results = Message.tool_results([ToolResultBlock(use.id, "42")])

        def asking(assistant: Message) -> ModelRequest:
            return ModelRequest("s", (question, assistant, results), (LOOKUP,), settings=BUDGET)

        answer = await model.generate(asking(first.to_message()), on_text=on_text)
        assert answer.text == "The number is 42."

        dropped = Message.assistant([use])
        with pytest.raises(ModelBadRequest) as lost:
            await model.generate(asking(dropped), on_text=on_text)
        edited = dataclasses.replace(thought, text=thought.text + " Or not.")
        with pytest.raises(ModelBadRequest) as altered:
            await model.generate(asking(Message.assistant([edited, use])), on_text=on_text)

    assert "ValidationException" in str(lost.value)
    assert "Expected `thinking` or `redacted_thinking`, but found `tool_use`" in str(lost.value)
    assert "cannot be modified" in str(altered.value)
    assert lost.value.status == altered.value.status == 400
    assert len(recorder.requests) == 4  # refusals are not retried


async def test_reasoning_of_other_apis_is_left_out() -> None:
    foreign = (
        ReasoningBlock("thought elsewhere", "anthropic", signature="sig-from-anthropic"),
        ReasoningBlock("", "openai-responses", id="rs_1", encrypted="gAAAA"),
        ReasoningBlock("unsigned", "bedrock"),  # DeepSeek R1 or gpt-oss: Bedrock refuses it back
    )
    history = (
        Message.user("hi"),
        Message.assistant([*foreign, TextBlock("Hello.")]),
        Message.user("What is the number?"),
    )
    async with bedrock(lookup_then_answer) as (url, recorder):
        model = BedrockConverseModel(SONNET, client=client(url), retry=FAST)
        response = await model.generate(ModelRequest("s", history, (LOOKUP,), settings=BUDGET))

    assert response.tool_uses and response.reasoning
    assert bodies(recorder)[0]["messages"][1]["content"] == [{"text": "Hello."}]


async def test_the_fake_refuses_unsigned_reasoning_sent_back() -> None:
    """What the previous test avoids is real: Bedrock refuses reasoning without a signature."""
    wire = [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "t"}}}]},
        {"role": "user", "content": [{"text": "and?"}]},
    ]
    async with bedrock(lookup_then_answer) as (url, _):
        with pytest.raises(ClientError, match="User messages cannot contain reasoning content"):
            await asyncio.to_thread(client(url).converse, modelId="deepseek.r1-v1:0", messages=wire)


# --- each family in its own words ------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "reasoning", "fields"),
    [
        # 4.6 takes a budget or an effort, said the way the setting says it.
        (
            SONNET,
            Reasoning(budget_tokens=3000),
            {"thinking": {"type": "enabled", "budget_tokens": 3000}},
        ),
        (
            "us.anthropic.claude-sonnet-4-6",
            Reasoning(effort="high"),
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}},
        ),
        # 4.7 and later take only adaptive thinking: a budget becomes its effort.
        (
            "global.anthropic.claude-opus-4-7",
            Reasoning(budget_tokens=5000),
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"}},
        ),
        # Claude 3.7 has no interleaved thinking, so no beta.
        (
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            Reasoning(effort="minimal"),
            {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        ),
        ("openai.gpt-oss-120b-1:0", Reasoning(effort="minimal"), {"reasoning_effort": "low"}),
        ("openai.gpt-oss-20b-1:0", Reasoning(budget_tokens=20000), {"reasoning_effort": "high"}),
        ("us.deepseek.r1-v1:0", Reasoning(effort="low"), None),  # it always reasons
    ],
)
def test_reasoning_in_each_familys_words(
    model_id: str, reasoning: Reasoning, fields: dict[str, Any] | None
) -> None:
    request = ModelRequest(
        "s", (Message.user("hi"),), settings=ModelSettings(reasoning=reasoning, cache=False)
    )
    kwargs = converse_request(model_id, request)
    assert kwargs.get("additionalModelRequestFields") == fields
    assert kwargs["inferenceConfig"] == {"maxTokens": 4096 + reasoning.budget()}


@pytest.mark.parametrize(
    ("model_id", "effort"), [("openai.gpt-oss-120b-1:0", "medium"), ("us.deepseek.r1-v1:0", None)]
)
async def test_unsigned_reasoning_is_read_and_not_sent_back(model_id: str, effort: Any) -> None:
    settings = ModelSettings(reasoning=Reasoning(effort=effort) if effort else None)
    async with bedrock(lookup_then_answer) as (url, recorder):
        model = BedrockConverseModel(model_id, client=client(url), retry=FAST)
        question = Message.user("What is the number?")
        first = await model.generate(ModelRequest("s", (question,), (LOOKUP,), settings=settings))
        (thought,) = first.reasoning
        results = Message.tool_results([ToolResultBlock(first.tool_uses[0].id, "42")])
        history = (question, first.to_message(), results)
        answer = await model.generate(
            ModelRequest("s", history, (LOOKUP,), settings=settings), on_text=lambda _: None
        )

    assert thought == ReasoningBlock(thought.text, "bedrock") and thought.text
    assert first.usage is not None and first.usage.reasoning_tokens == count_reasoning_tokens(
        [thought]
    )
    assert answer.text == "The number is 42." and answer.reasoning  # streamed: read too
    second = bodies(recorder)[1]
    assert second["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "toolu_001", "name": "lookup", "input": {}}}
    ]
    assert "cachePoint" not in json.dumps(second)  # neither model has prompt caching


# --- recorded and replayed -------------------------------------------------------------------


async def test_a_recorded_reasoning_run_replays_offline(
    tmp_path: Path, sandbox: LocalSandbox
) -> None:
    path = tmp_path / "bedrock-reasoning.jsonl"
    async with bedrock() as (url, _):
        live = BedrockConverseModel(SONNET, client=client(url), retry=FAST)
        recording = RecordingModel(live, path, mode="ptc", prompt=expense.QUESTION)
        agent = Agent(recording, expense.make_tools(), sandbox, settings=BUDGET)
        original = await agent.run(expense.QUESTION)
        await live.aclose()

    header, responses = load_transcript(path)
    assert header["model"] == f"bedrock:{SONNET}"
    assert [r.reasoning for r in responses] == [m.reasoning for m in original.transcript[1::2]]
    assert all(b.signature and b.wire == "bedrock" for r in responses for b in r.reasoning)

    # Offline: no server, no credentials; the same answer, programs and reasoning.
    replayed = await Agent(replay_model(path), expense.make_tools(), sandbox, settings=BUDGET).run(
        expense.QUESTION
    )
    assert expense.is_correct(replayed.answer)
    assert replayed.answer == original.answer
    assert replayed.programs == original.programs
    assert replayed.reasoning == original.reasoning and len(replayed.reasoning) == 2
    assert "replaying a transcript" in replayed.model_label
