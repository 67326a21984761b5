"""Reasoning through Bedrock InvokeModel: Anthropic's thinking in the native Messages body,
with what Bedrock does its own way (betas in the body, the model id deciding the kind of
thinking), carried back unchanged through a tool loop.

The Messages mapping itself is ``anthropic_wire``'s; these tests drive it through boto3 against
the fake Bedrock (``fakes.bedrock_server``), which signs thinking and refuses a tool loop that
lost it, as Claude does.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakes.bedrock_session import FAST, LOOKUP, SONNET, bedrock, bodies, client, lookup_then_answer
from openptc.agent import Agent
from openptc.models import (
    Message,
    ModelRequest,
    ModelSettings,
    Reasoning,
    ToolResultBlock,
    UnsupportedSetting,
)
from openptc.models.bedrock_invoke import BedrockInvokeModel, invoke_body
from openptc.models.bedrock_settings import INTERLEAVED_THINKING
from openptc.models.errors import ModelBadRequest
from openptc.models.tokens import count_reasoning_tokens
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import expense

pytestmark = pytest.mark.usefixtures("no_ambient_aws")

BUDGET = ModelSettings(reasoning=Reasoning(budget_tokens=2048))


@pytest.mark.parametrize(("mode", "stream"), [("ptc", False), ("direct", False), ("ptc", True)])
async def test_expense_audit_reasons_through_invoke_model(
    sandbox: LocalSandbox, mode: Any, stream: bool
) -> None:
    async with bedrock(redacted_thinking=stream) as (url, recorder):
        model = BedrockInvokeModel(SONNET, client=client(url), retry=FAST)
        agent = Agent(
            model, expense.make_tools(), sandbox, mode=mode, max_turns=80, settings=BUDGET
        )
        shown: list[str] = []
        result = await agent.run(expense.QUESTION, on_text=shown.append if stream else None)

    assert expense.is_correct(result.answer), result.answer
    assert "".join(shown) == (result.answer if stream else "")
    assert len(result.reasoning) == result.usage.model_calls  # interleaved: every call
    expected = sum(count_reasoning_tokens(m.content) for m in result.transcript)
    assert result.usage.reasoning_tokens == expected > 0
    assert result.usage.cache_write_tokens > 0 and result.usage.cache_read_tokens > 0

    for _, headers, body in recorder.requests:
        assert "anthropic-beta" not in headers  # Bedrock takes betas in the body
        assert body["anthropic_beta"] == [INTERLEAVED_THINKING]
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert body["max_tokens"] == 4096 + 2048
        assert "model" not in body and "stream" not in body
    # Thinking went back first in each assistant turn, as it came (the fake checks signatures).
    last = bodies(recorder)[-1]["messages"]
    kinds = {"redacted_thinking", "thinking"} if stream else {"thinking"}
    assert all(m["content"][0]["type"] in kinds for m in last if m["role"] == "assistant")
    if stream:
        assert any(b["type"] == "redacted_thinking" for m in last for b in m["content"])


async def test_a_tool_loop_that_lost_its_thinking_is_refused() -> None:
    async with bedrock(lookup_then_answer) as (url, recorder):
        model = BedrockInvokeModel(SONNET, client=client(url), retry=FAST)
        question = Message.user("What is the number?")
        first = await model.generate(ModelRequest("s", (question,), (LOOKUP,), settings=BUDGET))
        (use,) = first.tool_uses
        assert first.reasoning and first.reasoning[0].wire == "anthropic"
        results = Message.tool_results([ToolResultBlock(use.id, "42")])
        kept = (question, first.to_message(), results)
        answer = await model.generate(ModelRequest("s", kept, (LOOKUP,), settings=BUDGET))
        lost = (question, Message.assistant([use]), results)
        with pytest.raises(ModelBadRequest, match="Expected `thinking` or `redacted_thinking`"):
            await model.generate(ModelRequest("s", lost, (LOOKUP,), settings=BUDGET))

    assert answer.text == "The number is 42."
    assert len(recorder.requests) == 3


@pytest.mark.parametrize(
    ("model_id", "reasoning", "thinking", "extra"),
    [
        (
            "global.anthropic.claude-opus-4-7",
            Reasoning(budget_tokens=20000),
            {"type": "adaptive"},
            {"output_config": {"effort": "high"}},
        ),
        (
            "us.anthropic.claude-sonnet-4-6",
            Reasoning(effort="low"),
            {"type": "adaptive"},
            {"output_config": {"effort": "low"}},
        ),
        (
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            Reasoning(budget_tokens=4000),
            {"type": "enabled", "budget_tokens": 4000},
            {},  # no interleaved thinking before Claude 4: no beta
        ),
    ],
)
def test_the_model_id_decides_the_kind_of_thinking(
    model_id: str, reasoning: Reasoning, thinking: dict[str, Any], extra: dict[str, Any]
) -> None:
    request = ModelRequest(
        "s", (Message.user("hi"),), (LOOKUP,), settings=ModelSettings(reasoning=reasoning)
    )
    body = invoke_body(model_id, request)
    assert body["thinking"] == thinking
    assert {k: body[k] for k in extra} == extra
    assert "anthropic_beta" not in body
    assert body["max_tokens"] == 4096 + reasoning.budget()


async def test_thinking_on_a_model_without_it_is_refused_before_any_request() -> None:
    request = ModelRequest("s", (Message.user("hi"),), settings=BUDGET)
    async with bedrock(lookup_then_answer) as (url, recorder):
        model = BedrockInvokeModel("anthropic.claude-3-5-haiku-20241022-v1:0", client=client(url))
        with pytest.raises(UnsupportedSetting, match="no extended thinking") as refused:
            await model.generate(request)
    assert recorder.requests == []
    assert "Bedrock InvokeModel for 'anthropic.claude-3-5-haiku-20241022-v1:0'" in str(
        refused.value
    )


async def test_claude_rules_follow_the_model_named_in_the_id() -> None:
    """The model id is read as Anthropic's API names the model, so its rules apply."""
    request = ModelRequest(
        "s", (Message.user("hi"),), settings=ModelSettings(temperature=0.5, top_p=0.9)
    )
    async with bedrock(lookup_then_answer) as (url, recorder):
        model = BedrockInvokeModel("anthropic.claude-haiku-4-5-20251001-v1:0", client=client(url))
        with pytest.raises(UnsupportedSetting, match="one of the two"):
            await model.generate(request)
    assert recorder.requests == []
