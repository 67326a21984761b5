"""Prompt caching on Bedrock: cache points (Converse) and cache marks (InvokeModel) only where
the model has prompt caching, since the mark fails any other model's request; a repeated
prefix is written once, then read.

boto3 against the fake Bedrock (``fakes.bedrock_server``), which keeps marked prefixes and
refuses a mark on a model without prompt caching, in Bedrock's words.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from botocore.exceptions import ClientError

from fakes.bedrock_session import FAST, LOOKUP, SONNET, bedrock, bodies, client
from openptc.models import (
    Message,
    ModelRequest,
    ModelSettings,
    Turn,
    count_request_tokens,
)
from openptc.models.bedrock_converse import CACHE_POINT, BedrockConverseModel
from openptc.models.bedrock_invoke import BedrockInvokeModel

pytestmark = pytest.mark.usefixtures("no_ambient_aws")

UNSUPPORTED = "You invoked an unsupported model or your request did not allow prompt caching"
HOUSE_STYLE = "Answer in the house style: short sentences, numbers in full, no jargon. " * 80


def fine(_request: ModelRequest) -> Turn:
    return "Fine."


@pytest.mark.parametrize(
    ("model_id", "cache", "system", "tools", "messages"),
    [
        (SONNET, True, True, True, True),
        ("us.amazon.nova-pro-v1:0", True, True, False, True),  # Nova caches no tools
        ("meta.llama3-1-70b-instruct-v1:0", True, False, False, False),
        ("anthropic.claude-3-haiku-20240307-v1:0", True, False, False, False),
        (SONNET, False, False, False, False),  # asked not to
    ],
)
async def test_cache_points_go_only_where_the_model_caches(
    model_id: str, cache: bool, system: bool, tools: bool, messages: bool
) -> None:
    request = ModelRequest(
        "s", (Message.user("hi"),), (LOOKUP,), settings=ModelSettings(cache=cache)
    )
    async with bedrock(fine) as (url, recorder):
        model = BedrockConverseModel(model_id, client=client(url), retry=FAST)
        assert (await model.generate(request)).text == "Fine."  # the fake took the request

    (body,) = bodies(recorder)
    assert (CACHE_POINT in body["system"]) is system
    assert (CACHE_POINT in body["toolConfig"]["tools"]) is tools
    assert (CACHE_POINT in body["messages"][-1]["content"]) is messages


async def test_the_fake_refuses_a_cache_point_the_model_cannot_take() -> None:
    """What the previous test avoids is real: the mark fails the request."""
    async with bedrock(fine) as (url, _):
        with pytest.raises(ClientError, match=UNSUPPORTED):
            await asyncio.to_thread(
                client(url).converse,
                modelId="meta.llama3-1-70b-instruct-v1:0",
                messages=[{"role": "user", "content": [{"text": "hi"}, dict(CACHE_POINT)]}],
            )
        with pytest.raises(ClientError, match=UNSUPPORTED):
            body = {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 10,
                "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": "hi"}],
            }
            await asyncio.to_thread(
                client(url).invoke_model,
                modelId="anthropic.claude-3-haiku-20240307-v1:0",
                body=json.dumps(body),
                contentType="application/json",
            )


@pytest.mark.parametrize("model_class", [BedrockConverseModel, BedrockInvokeModel])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_repeated_prefix_is_written_once_then_read(
    model_class: type[BedrockConverseModel] | type[BedrockInvokeModel], stream: bool
) -> None:
    first = ModelRequest(HOUSE_STYLE, (Message.user("hi"),), (LOOKUP,))
    on_text = (lambda _: None) if stream else None
    async with bedrock(fine) as (url, _):
        model = model_class(SONNET, client=client(url), retry=FAST)
        opened = await model.generate(first, on_text=on_text)
        history = (*first.messages, opened.to_message(), Message.user("And then?"))
        second = ModelRequest(HOUSE_STYLE, history, (LOOKUP,))
        followed = await model.generate(second, on_text=on_text)

    before, after = count_request_tokens(first), count_request_tokens(second)
    assert before > 1024  # Claude caches no shorter prefix
    assert opened.usage is not None
    used = opened.usage
    assert (used.input_tokens, used.cache_read_tokens, used.cache_write_tokens) == (0, 0, before)
    # The next call reads all that was sent before and writes the rest up to its last mark.
    assert followed.usage is not None
    assert (followed.usage.cache_read_tokens, followed.usage.cache_write_tokens) == (
        before,
        after - before,
    )
    assert followed.usage.input_tokens == 0


async def test_invoke_model_leaves_cache_marks_out_for_a_model_without_caching() -> None:
    request = ModelRequest("s", (Message.user("hi"),), (LOOKUP,))
    async with bedrock(fine) as (url, recorder):
        model = BedrockInvokeModel("anthropic.claude-3-haiku-20240307-v1:0", client=client(url))
        assert (await model.generate(request)).text == "Fine."
    assert "cache_control" not in json.dumps(bodies(recorder)[0])
