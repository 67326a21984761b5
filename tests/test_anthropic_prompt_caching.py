"""Prompt caching through the real ``anthropic`` SDK against the fake, whose cache reads what a
request marked before and writes what is new, as the API does."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
import pytest_asyncio

from fakes.anthropic_cache import TURN_OPENING
from fakes.anthropic_fixture import Fake, running
from fakes.anthropic_server import FAKE_API_KEY
from openptc.models.base import Message, ModelRequest, ReasoningBlock, TextBlock, ToolSpec
from openptc.models.settings import ModelSettings
from openptc.models.tokens import count_request_tokens

pytestmark = pytest.mark.asyncio(loop_scope="module")

EPHEMERAL = {"type": "ephemeral"}
# Well over the 1024 tokens below which a prefix is not cached.
LONG_SYSTEM = "You audit expense reports. " + " ".join(f"Rule {n}: be exact." for n in range(400))


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[Fake]:
    async with running() as started:  # a cache of its own for each test
        yield started


def _tools(n: int = 2) -> tuple[ToolSpec, ...]:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    return tuple(ToolSpec(f"lookup_{k}", "Look a thing up.", schema) for k in range(n))


def _request(system: str = LONG_SYSTEM, *messages: Message, **settings: Any) -> ModelRequest:
    return ModelRequest(
        system,
        messages or (Message.user("hi"),),
        _tools(),
        1024,
        settings=ModelSettings(**settings),
    )


def _marks(body: dict[str, Any]) -> int:
    return json.dumps(body).count('"cache_control"')


async def test_a_prefix_is_written_once_then_read_as_the_conversation_grows(fake: Fake) -> None:
    model = fake.model()
    first_request = _request()
    first = await model.generate(first_request)
    again = await model.generate(first_request, on_text=lambda _t: None)  # streamed
    grown = dataclasses.replace(
        first_request,
        messages=(*first_request.messages, first.to_message(), Message.user("and then?")),
    )
    later = await model.generate(grown)

    total, grown_total = count_request_tokens(first_request), count_request_tokens(grown)
    assert first.usage is not None and again.usage is not None and later.usage is not None
    # The mark on the last message puts the whole prompt in the cache; only the few tokens
    # that open the model's turn are fresh.
    assert (first.usage.cache_write_tokens, first.usage.cache_read_tokens) == (total, 0)
    assert first.usage.input_tokens == again.usage.input_tokens == TURN_OPENING
    assert (again.usage.cache_write_tokens, again.usage.cache_read_tokens) == (0, total)
    assert later.usage.cache_read_tokens == total  # the earlier conversation, read back
    assert later.usage.cache_write_tokens == grown_total - total  # the two new turns
    for body in fake.bodies:
        assert body["tools"][0].get("cache_control") is None
        assert body["tools"][-1]["cache_control"] == EPHEMERAL
        assert body["system"] == [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPHEMERAL}]
        assert body["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL
        assert _marks(body) == 3  # of the four the API allows


async def test_a_prompt_too_short_to_cache_is_all_fresh_input(fake: Fake) -> None:
    request = _request("Be brief.")

    response = await fake.model().generate(request)

    assert response.usage is not None
    assert response.usage.input_tokens == count_request_tokens(request) + TURN_OPENING
    assert response.usage.cache_write_tokens == response.usage.cache_read_tokens == 0
    assert _marks(fake.bodies[0]) == 3  # marked all the same: asking is free


async def test_with_caching_off_nothing_is_marked_or_cached(fake: Fake) -> None:
    request = _request(cache=False)

    first = await fake.model().generate(request)
    again = await fake.model().generate(request)

    assert again.usage is not None and first.usage is not None
    fresh = count_request_tokens(request) + TURN_OPENING
    assert again.usage.input_tokens == first.usage.input_tokens == fresh
    assert again.usage.cache_read_tokens == 0
    assert all(_marks(body) == 0 for body in fake.bodies)
    assert fake.bodies[0]["system"] == LONG_SYSTEM


async def test_the_mark_skips_thinking_blocks_which_the_api_will_not_take_one_on(
    fake: Fake,
) -> None:
    thought = ReasoningBlock("Let me think.", "anthropic", signature="c2ln")
    request = _request(
        LONG_SYSTEM,
        Message.user("hi"),
        Message.assistant([TextBlock("Sure:"), thought]),  # a prefill that ends in thinking
    )

    await fake.model().generate(request)

    (body,) = fake.bodies
    assert body["messages"][-1]["content"] == [
        {"type": "text", "text": "Sure:", "cache_control": EPHEMERAL},
        {"type": "thinking", "thinking": "Let me think.", "signature": "c2ln"},
    ]


async def _send(fake: Fake, **body: Any) -> anthropic.types.Message:
    client = anthropic.AsyncAnthropic(api_key=FAKE_API_KEY, base_url=fake.url, max_retries=0)
    async with client:
        reply: anthropic.types.Message = await client.messages.create(
            model="claude-x", max_tokens=64, **body
        )
    return reply


async def test_the_fake_refuses_a_fifth_mark_and_a_marked_thinking_block(fake: Fake) -> None:
    marked = [
        {"name": f"t{k}", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}
        for k in range(5)
    ]
    thinking = {"type": "thinking", "thinking": "x", "signature": "s", "cache_control": EPHEMERAL}
    hello = {"role": "user", "content": "hi"}

    with pytest.raises(anthropic.BadRequestError) as five:
        await _send(fake, tools=marked, messages=[hello])
    with pytest.raises(anthropic.BadRequestError) as on_thinking:
        await _send(fake, messages=[hello, {"role": "assistant", "content": [thinking]}])
    four = await _send(fake, tools=marked[:4], messages=[hello])

    assert "A maximum of 4 blocks with cache_control may be provided. Found 5." in (
        five.value.message
    )
    assert "messages.1.content.0.thinking.cache_control: Extra inputs are not permitted" in (
        on_thinking.value.message
    )
    assert four.content[0].type == "text"
