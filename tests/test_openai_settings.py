"""``ModelSettings`` on the wire of OpenAI's two APIs and of OpenAI-compatible servers, with the
real ``openai`` SDK against the fake: each setting in the API's own words, the prompt cache key,
stop sequences, and the settings an API has no equivalent for refused before any request.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from fakes.openai_chat_server import DEEPSEEK, VLLM, Local
from fakes.openai_client import fake
from openptc.models import (
    Message,
    ModelRequest,
    ModelSettings,
    Reasoning,
    ToolSpec,
    UnsupportedSetting,
)
from openptc.models.openai_settings import prompt_cache_key

LOOKUP = ToolSpec("lookup", "Look a thing up.", {"type": "object", "properties": {}})
FIVE_STOPS = ("END", "STOP", "DONE", "FIN", "OVER")


def _request(settings: ModelSettings, system: str = "Be brief.") -> ModelRequest:
    return ModelRequest(system, (Message.user("hi"),), (LOOKUP,), 256, settings=settings)


async def _sent(api: str, settings: ModelSettings, local: Local | None = None) -> dict[str, Any]:
    """The body the fake received for one call with ``settings`` (which it answered)."""
    async with fake(lambda _r: "fine", local=local) as server:
        response = await server.model(api).generate(_request(settings))
    assert response.text == "fine"
    body: dict[str, Any] = server.bodies[0]
    return body


SAMPLING = ModelSettings(temperature=0.2, top_p=0.9, user="user-42", extra={"seed": 7})


async def test_openai_chat_gets_sampling_in_its_words() -> None:
    body = await _sent("chat", replace(SAMPLING, stop_sequences=("END",)))
    assert (body["temperature"], body["top_p"], body["stop"], body["seed"]) == (
        0.2,
        0.9,
        ["END"],
        7,
    )
    assert body["safety_identifier"] == "user-42" and "user" not in body  # `user` is deprecated
    assert body["prompt_cache_key"] == prompt_cache_key(_request(SAMPLING))
    assert "top_k" not in body and "metadata" not in body


async def test_a_local_server_gets_what_openai_would_refuse() -> None:
    settings = replace(SAMPLING, top_k=20, stop_sequences=FIVE_STOPS, metadata={"run": "r1"})
    body = await _sent("chat", settings, local=VLLM)
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.2, 0.9, 7)
    assert body["top_k"] == 20 and body["stop"] == list(FIVE_STOPS)
    assert body["metadata"] == {"run": "r1"} and body["user"] == "user-42"
    assert "safety_identifier" not in body
    assert "prompt_cache_key" not in body  # a field a local server may not know


async def test_responses_gets_sampling_and_metadata_in_its_words() -> None:
    body = await _sent("responses", replace(SAMPLING, metadata={"run": "r1"}))
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.2, 0.9, 7)
    assert body["safety_identifier"] == "user-42" and body["metadata"] == {"run": "r1"}
    assert body["prompt_cache_key"].startswith("openptc-") and body["store"] is False
    assert "stop" not in body and "reasoning" not in body and "include" not in body


@pytest.mark.parametrize(
    ("api", "local", "expected"),
    [
        ("chat", None, {"reasoning_effort": "medium"}),
        ("chat", DEEPSEEK, {"reasoning_effort": "medium"}),
        (
            "responses",
            None,
            {
                "reasoning": {"effort": "medium", "summary": "auto"},
                "include": ["reasoning.encrypted_content"],
            },
        ),
    ],
    ids=["openai-chat", "local-chat", "responses"],
)
async def test_a_reasoning_budget_is_asked_for_as_the_effort_that_holds_it(
    api: str, local: Local | None, expected: dict[str, Any]
) -> None:
    body = await _sent(api, ModelSettings(reasoning=Reasoning(budget_tokens=5000)), local)
    assert {k: body[k] for k in expected} == expected


@pytest.mark.parametrize(("local", "expected"), [(None, "minimal"), (VLLM, "low")])
async def test_minimal_effort_is_openais_own_and_a_local_server_gets_low(
    local: Local | None, expected: str
) -> None:
    body = await _sent("chat", ModelSettings(reasoning=Reasoning(effort="minimal")), local)
    assert body["reasoning_effort"] == expected


async def test_one_prompt_cache_key_per_prefix_and_the_cache_it_buys() -> None:
    async with fake(lambda _r: "fine") as server:
        model = server.model("responses")
        for settings, system in [
            (ModelSettings(), "Be brief."),
            (ModelSettings(temperature=0.5), "Be brief."),  # sampling is not part of the prefix
            (ModelSettings(), "Be thorough."),
            (ModelSettings(cache=False), "Be brief."),
        ]:
            await model.generate(_request(settings, system))
        bodies, served = server.bodies, server.served

    keys = [body.get("prompt_cache_key") for body in bodies]
    assert keys[0] == keys[1] != keys[2] and keys[3] is None
    assert all(k.startswith("openptc-") for k in keys[:3] if k)
    # The fake's cache, like OpenAI's, is per key: the same prefix under the same key is a hit.
    assert [s["cached"] > 0 for s in served] == [False, True, False, False]


REFUSED = [
    ("chat", None, ModelSettings(top_k=5), "top_k", "OpenAI has no top_k"),
    ("chat", None, ModelSettings(stop_sequences=FIVE_STOPS), "stop_sequences", "at most 4"),
    ("chat", None, ModelSettings(metadata={"a": "b"}), "metadata", "store"),
    (
        "chat",
        None,
        ModelSettings(reasoning=Reasoning(effort="low"), temperature=0.3),
        "temperature",
        "reasoning models refuse it",
    ),
    (
        "chat",
        None,
        ModelSettings(reasoning=Reasoning(effort="low"), stop_sequences=("END",)),
        "stop_sequences",
        "reasoning models refuse it",
    ),
    (
        "responses",
        None,
        ModelSettings(stop_sequences=("END",)),
        "stop_sequences",
        "no stop sequences",
    ),
    ("responses", None, ModelSettings(top_k=5), "top_k", "no top_k"),
    (
        "responses",
        None,
        ModelSettings(reasoning=Reasoning(effort="high"), top_p=0.5),
        "top_p",
        "reasoning models refuse it",
    ),
    (
        "responses",
        None,
        ModelSettings(metadata={f"k{i}": "v" for i in range(17)}),
        "metadata",
        "at most 16",
    ),
    ("responses", None, ModelSettings(metadata={"k" * 65: "v"}), "metadata", "at most 64"),
]


@pytest.mark.parametrize(("api", "local", "settings", "setting", "why"), REFUSED)
async def test_settings_an_api_cannot_take_are_refused_before_any_request(
    api: str, local: Local | None, settings: ModelSettings, setting: str, why: str
) -> None:
    async with fake(lambda _r: "never", local=local) as server:
        with pytest.raises(UnsupportedSetting) as raised:
            await server.model(api).generate(_request(settings))
        assert server.recorder.requests == []  # refused before anything went out

    assert raised.value.setting == setting and raised.value.status is None
    message = str(raised.value)
    assert message.startswith(f"{setting} is not supported by ") and why in message
    assert ("Responses API" if api == "responses" else "Chat Completions") in message


async def test_a_local_server_samples_while_reasoning() -> None:
    settings = ModelSettings(reasoning=Reasoning(effort="low"), temperature=0.6, top_k=20)
    body = await _sent("chat", settings, local=DEEPSEEK)
    assert (body["reasoning_effort"], body["temperature"], body["top_k"]) == ("low", 0.6, 20)


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("local", [None, VLLM], ids=["openai", "vllm"])
async def test_a_stop_sequence_cuts_the_answer_and_is_named_where_the_server_says(
    local: Local | None, streaming: bool
) -> None:
    pieces: list[str] = []
    settings = ModelSettings(stop_sequences=("END", "STOP"))
    async with fake(lambda _r: "The total is 42. END of the report.", local=local) as server:
        response = await server.model("chat").generate(
            _request(settings), on_text=pieces.append if streaming else None
        )

    assert response.text == "The total is 42. "
    if streaming:
        assert "".join(pieces) == response.text
    if local is None:  # finish_reason "stop" does not say which stop it was, or whether any
        assert (response.stop_reason, response.stop_sequence) == ("end_turn", None)
    else:  # vLLM names the stop string in choices[].stop_reason
        assert (response.stop_reason, response.stop_sequence) == ("stop_sequence", "END")
