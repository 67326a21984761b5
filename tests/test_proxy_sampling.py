"""Sampling and control settings through the proxy: what the client sets reaches the backend's
request, a setting the backend refuses is the client's 400, and a stop sequence is reported."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from fakes.proxy_setup import config, running_proxy, scripted
from openptc.models.base import ModelRequest, ModelResponse, TextBlock
from openptc.models.scripted import ScriptedModel, Turn
from openptc.models.settings import UnsupportedSetting

BACKEND = "scripted:expense-audit"  # what the test config maps every model name to
HI: dict[str, Any] = {
    "model": "m",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_sampling_settings_reach_the_backend() -> None:
    backend = scripted("one", "two", "three")
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        older = proxy.client(default_headers={"anthropic-version": "2023-06-01"})
        await older.messages.create(
            **HI,
            stop_sequences=["###", "END"],
            metadata={"user_id": "user-42"},
            extra_body={"temperature": 0.3, "top_p": 0.9, "top_k": 40},  # gone from SDK 2.x
        )
        # The SDK's own version refuses sampling fields, as the API does; the rest pass on.
        newer = proxy.client()
        with pytest.raises(anthropic.BadRequestError, match="temperature"):
            await newer.messages.create(**HI, extra_body={"temperature": 0.3})
        await newer.messages.create(**HI, stop_sequences=["STOP"], metadata={"user_id": "u-7"})
        await newer.messages.create(**HI)
    sampled, controlled, plain = (r.settings for r in backend.requests)
    assert (sampled.temperature, sampled.top_p, sampled.top_k) == (0.3, 0.9, 40)
    assert sampled.stop_sequences == ("###", "END") and sampled.user == "user-42"
    assert controlled.temperature is None and controlled.stop_sequences == ("STOP",)
    assert controlled.user == "u-7"
    assert (plain.temperature, plain.top_p, plain.top_k, plain.user) == (None, None, None, None)
    assert plain.stop_sequences == ()


async def test_out_of_range_settings_are_400s_naming_the_field() -> None:
    async with running_proxy(config()) as proxy:
        client = proxy.client(default_headers={"anthropic-version": "2023-06-01"})
        for field, value in (("temperature", 1.5), ("top_p", 0), ("top_k", 0)):
            with pytest.raises(anthropic.BadRequestError, match=field):
                await client.messages.create(**HI, extra_body={field: value})
        with pytest.raises(anthropic.BadRequestError, match=r"stop_sequences\.0"):
            await client.messages.create(**HI, stop_sequences=[""])


def _stopped(text: str) -> ModelResponse:
    return ModelResponse(
        (TextBlock(text),), "stop_sequence", None, "scripted:test", stop_sequence="###"
    )


async def test_a_stop_sequence_is_reported_plain_and_streamed() -> None:
    backend = scripted(_stopped("Counting: 1, 2"), _stopped("Counting: 1, 2"))
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        plain = await client.messages.create(**HI, stop_sequences=["###"])
        async with client.messages.stream(**HI, stop_sequences=["###"]) as events:
            streamed = await events.get_final_message()
    for message in (plain, streamed):
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")
        assert message.content[0].text == "Counting: 1, 2"


def _refuses_top_k(request: ModelRequest) -> Turn:
    if request.settings.top_k is not None:
        raise UnsupportedSetting("top_k", "openai-chat", "Chat Completions has no top_k")
    return "fine"


async def test_a_setting_the_backend_refuses_is_a_400_with_its_message() -> None:
    backend = ScriptedModel(_refuses_top_k, name="scripted:picky", about="refuses top_k")
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client(default_headers={"anthropic-version": "2023-06-01"})
        with pytest.raises(anthropic.BadRequestError) as plain:
            await client.messages.create(**HI, extra_body={"top_k": 5})
        with pytest.raises(anthropic.BadRequestError) as streamed:
            async with client.messages.stream(**HI, extra_body={"top_k": 5}) as events:
                await events.get_final_message()
        for caught in (plain, streamed):
            assert caught.value.status_code == 400
            body = caught.value.body
            assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
            message = body["error"]["message"]
            assert "top_k is not supported by openai-chat: Chat Completions has no top_k" in message
        answer = await client.messages.create(**HI)  # without it, the same backend answers
        assert answer.content[0].text == "fine"
