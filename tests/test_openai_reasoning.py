"""Reasoning through OpenAI's two APIs and OpenAI-compatible servers, with the real ``openai``
SDK against the fake (``fakes.openai_server``): asked for in each API's words, kept in the
transcript, counted in usage, and sent back unchanged where the API needs it back.

The fake refuses, as the real APIs do, a Responses request that drops or alters a reasoning
item before the function call it led to, and (playing DeepSeek) a Chat request whose tool-calling
turn lost its ``reasoning_content``: a run that completes is a run whose reasoning went back.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import openai
import pytest

from fakes.openai_chat_server import DEEPSEEK, VLLM, Local
from fakes.openai_client import KEY, REASONING_ROUTES, fake
from openptc.agent import Agent, RunResult
from openptc.models import (
    Message,
    Model,
    ModelRequest,
    ModelSettings,
    Reasoning,
    ReasoningBlock,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.errors import ModelBadRequest
from openptc.models.tokens import count_text
from openptc.prompts import Mode
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import expense

LOW = ModelSettings(reasoning=Reasoning(effort="low"))
LOOKUP = ToolSpec("lookup", "Look a thing up.", {"type": "object", "properties": {}})


async def _audit(model: Model, mode: Mode, sandbox: LocalSandbox, **kw: Any) -> RunResult:
    agent = Agent(model, expense.make_tools(), sandbox, mode=mode, max_turns=80, settings=LOW)
    return await agent.run(expense.QUESTION, **kw)


def _returned_texts(api: str, reasoning: list[Any]) -> list[str]:
    """The reasoning texts the fake returned, in order: one per summary part, or whole."""
    if api == "responses":
        return [part["text"] for item in reasoning for part in item["summary"]]
    return list(reasoning)


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("mode", ["ptc", "direct"])
@pytest.mark.parametrize("route", REASONING_ROUTES)
async def test_the_audit_reasons_and_every_reasoning_goes_back_unchanged(
    route: str, mode: Mode, streaming: bool, sandbox: LocalSandbox
) -> None:
    api, local = REASONING_ROUTES[route]
    pieces: list[str] = []
    async with fake(local=local) as server:
        on_text = pieces.append if streaming else None
        result = await _audit(server.model(api), mode, sandbox, on_text=on_text)

    assert result.stop == "answered" and expense.is_correct(result.answer), result.answer
    served, returned = server.served, server.reasoning
    assert len(returned) == result.usage.model_calls  # every turn reasoned
    assert list(result.reasoning) == _returned_texts(api, returned)
    assert any("I will call" in text for text in result.reasoning)
    # Usage as the provider billed it: reasoning inside the output, cached prefix reads apart.
    assert result.usage.reasoning_tokens == sum(s["reasoning"] for s in served) > 0
    assert result.usage.output_tokens == sum(s["completion"] for s in served)
    assert result.usage.cache_read_tokens == sum(s["cached"] for s in served) > 0
    assert result.usage.tokens_counted == "provider"
    if streaming:  # the answer streams; the reasoning is not passed off as answer text
        assert "".join(pieces) == result.answer
        assert not any("Deciding" in piece for piece in pieces)

    first, last = server.bodies[0], server.bodies[-1]
    if api == "responses":
        assert first["reasoning"] == {"effort": "low", "summary": "auto"}
        assert first["include"] == ["reasoning.encrypted_content"]
        # Every reasoning item of the tool-calling turns, exactly as the fake sent it, right
        # before the function call it led to.
        items = last["input"]
        sent = [i for i in items if i["type"] == "reasoning"]
        assert sent == returned[:-1]
        after = [items[items.index(i) + 1]["type"] for i in sent]
        assert after == ["function_call"] * len(sent)
    else:
        assert first["reasoning_effort"] == "low"
        calling = [m for m in last["messages"] if m.get("tool_calls")]
        assert [m["reasoning_content"] for m in calling] == returned[:-1]
        assert all("reasoning_content" not in m for m in last["messages"] if m not in calling)


async def _tool_turn(model: Model) -> tuple[ModelRequest, Message]:
    """One reasoning turn that calls ``lookup``; the request, and the turn as the agent keeps it."""
    request = ModelRequest("Be brief.", (Message.user("hi"),), (LOOKUP,), 256, settings=LOW)
    response = await model.generate(request)
    assert response.tool_uses and response.reasoning
    return request, response.to_message()


def _next(request: ModelRequest, turn: Message) -> ModelRequest:
    answer = Message.tool_results([ToolResultBlock(turn.tool_uses[0].id, "42")])
    return replace(request, messages=(*request.messages, turn, answer))


def _lookup_then_answer(request: ModelRequest) -> Any:
    if request.messages[-1].results:
        return "It is 42."
    return [ToolUseBlock("t1", "lookup", {})]


async def test_responses_reasoning_is_one_block_per_summary_part_and_round_trips() -> None:
    async with fake(_lookup_then_answer) as server:
        model = server.model("responses")
        request, turn = await _tool_turn(model)
        final = await model.generate(_next(request, turn))

    item = server.reasoning[0]
    parts = [p["text"] for p in item["summary"]]
    assert len(parts) == 2 and all("\n\n" in p for p in parts)  # no separator survives a join
    assert [b.text for b in turn.reasoning] == parts
    assert {b.id for b in turn.reasoning} == {item["id"]} and item["id"].startswith("rs_")
    assert [b.encrypted for b in turn.reasoning] == [item["encrypted_content"], None]
    assert all(b.wire == "openai-responses" for b in turn.reasoning)
    assert final.text == "It is 42." and final.reasoning
    sent = server.bodies[1]["input"]
    assert sent[1] == {
        "type": "reasoning",
        "id": item["id"],
        "summary": item["summary"],
        "encrypted_content": item["encrypted_content"],
    }
    assert sent[2]["type"] == "function_call"


async def test_a_dropped_reasoning_item_is_refused_as_the_real_api_refuses_it() -> None:
    async with fake(_lookup_then_answer) as server:
        model = server.model("responses")
        request, turn = await _tool_turn(model)
        kept = tuple(b for b in turn.content if not isinstance(b, ReasoningBlock))
        dropped = Message("assistant", kept)
        with pytest.raises(ModelBadRequest) as raised:
            await model.generate(_next(request, dropped))

    message = str(raised.value)
    assert "Item 'fc_" in message
    assert "of type 'function_call' was provided without its required 'reasoning' item" in message
    assert f"'{server.reasoning[0]['id']}'" in message and raised.value.status == 400
    assert len(server.recorder.requests) == 2  # a 400 is not retried


async def test_an_altered_reasoning_item_does_not_verify() -> None:
    async with fake(_lookup_then_answer) as server:
        model = server.model("responses")
        request, turn = await _tool_turn(model)
        altered = Message(
            "assistant",
            tuple(
                replace(b, text=b.text + " (edited)") if isinstance(b, ReasoningBlock) else b
                for b in turn.content
            ),
        )
        with pytest.raises(ModelBadRequest, match="could not be verified") as raised:
            await model.generate(_next(request, altered))
    assert raised.value.status == 400


async def test_reasoning_without_encrypted_content_is_left_out_not_sent_to_fail() -> None:
    """An item that came back without encrypted content cannot be resolved with store=False
    (the API answers 404): the adapter leaves it out rather than send it."""
    async with fake(lambda _r: "fine") as server:
        stale = ReasoningBlock("old thoughts", "openai-responses", id="rs_" + "0" * 48)
        request = ModelRequest(
            "",
            (
                Message.user("hi"),
                Message("assistant", (stale, TextBlock("hello"))),
                Message.user("and?"),
            ),
            settings=LOW,
        )
        response = await server.model("responses").generate(request)

    assert response.text == "fine"
    assert [i["type"] for i in server.bodies[0]["input"]] == ["message", "message", "message"]


async def test_the_fake_holds_the_store_false_rules_of_the_real_api() -> None:
    """What the tests above lean on, checked with the bare SDK: the fake refuses as OpenAI does."""
    async with fake(_lookup_then_answer) as server:
        client = openai.AsyncOpenAI(base_url=server.url, api_key=KEY, max_retries=0)
        async with client:
            first = await client.responses.create(
                model="gpt-5",
                input="hi",
                tools=[{"type": "function", "name": "lookup", "parameters": {}, "strict": False}],
                reasoning={"effort": "low", "summary": "auto"},
                store=False,
            )
            item = first.output[0]
            assert item.type == "reasoning" and item.encrypted_content is None  # not included
            call = first.output[1]
            assert call.type == "function_call"
            resent: Any = [
                {"type": "message", "role": "user", "content": "hi"},
                {"type": "reasoning", "id": item.id, "summary": [], "encrypted_content": None},
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": "lookup",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": "42"},
            ]
            with pytest.raises(openai.NotFoundError, match="Items are not persisted when `store`"):
                await client.responses.create(model="gpt-5", input=resent, store=False)
            resent[1]["encrypted_content"] = "gAAAAAforged.0000"
            with pytest.raises(openai.BadRequestError, match="could not be verified") as raised:
                await client.responses.create(model="gpt-5", input=resent, store=False)
            assert raised.value.code == "invalid_encrypted_content"


async def test_openai_chat_bills_reasoning_it_does_not_show() -> None:
    async with fake(lambda _r: "fine") as server:
        response = await server.model("chat").generate(
            ModelRequest("", (Message.user("hi"),), settings=LOW)
        )

    assert server.bodies[0]["reasoning_effort"] == "low"
    assert response.text == "fine" and response.reasoning == ()
    assert response.usage is not None
    assert response.usage.reasoning_tokens == server.served[0]["reasoning"] > 0


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    "local",
    [VLLM, Local(("reasoning_content", "reasoning"), reports_reasoning_tokens=False)],
    ids=["reasoning", "both-fields"],
)
async def test_local_reasoning_text_is_read_from_either_field_and_counted_when_unreported(
    local: Local, streaming: bool
) -> None:
    async with fake(_lookup_then_answer, local=local) as server:
        model = server.model("chat", name="qwen3:8b")
        request = ModelRequest("Be brief.", (Message.user("hi"),), (LOOKUP,), 256, settings=LOW)
        response = await model.generate(request, on_text=(lambda _t: None) if streaming else None)
        follow = await model.generate(_next(request, response.to_message()))

    text = server.reasoning[0]
    assert [(b.text, b.wire) for b in response.reasoning] == [(text, "openai-chat")]  # not doubled
    assert response.usage is not None and server.served[0]["reasoning"] == count_text(text)
    assert response.usage.reasoning_tokens == count_text(text)  # counted: none was reported
    assert server.bodies[1]["messages"][2]["reasoning_content"] == text
    assert follow.text == "It is 42."


async def test_reasoning_of_other_apis_is_left_out() -> None:
    foreign = (
        ReasoningBlock("claude's thoughts", "anthropic", signature="sig"),
        ReasoningBlock("responses thoughts", "openai-responses", id="rs_1", encrypted="gAAAA"),
    )
    turn = Message("assistant", (*foreign, ToolUseBlock("call_1", "lookup", {})))
    answer = Message.tool_results([ToolResultBlock("call_1", "42")])
    request = ModelRequest("", (Message.user("hi"), turn, answer), (LOOKUP,))
    async with fake(lambda _r: "fine", local=DEEPSEEK) as server:
        assert (await server.model("chat").generate(request)).text == "fine"

    assistant = server.bodies[0]["messages"][1]
    assert "reasoning_content" not in assistant and "thoughts" not in str(server.bodies[0])
