"""Sampling settings through Bedrock Converse: on the wire in Converse's words, stop sequences
named, and what a model cannot take refused before any request, saying what to do instead.

boto3 against the fake Bedrock (``fakes.bedrock_server``).
"""

from __future__ import annotations

from typing import Any

import pytest

from fakes.bedrock_session import FAST, LOOKUP, SONNET, bedrock, bodies, client
from openptc.models import (
    Message,
    ModelRequest,
    ModelSettings,
    Reasoning,
    ToolChoice,
    Turn,
    UnsupportedSetting,
)
from openptc.models.bedrock_converse import BedrockConverseModel
from openptc.models.bedrock_invoke import BedrockInvokeModel
from openptc.models.bedrock_models import bedrock_model, claude_thinking, prompt_cache_places

pytestmark = pytest.mark.usefixtures("no_ambient_aws")

LLAMA = "meta.llama3-1-70b-instruct-v1:0"
OPUS_4_1 = "anthropic.claude-opus-4-1-20250805-v1:0"  # takes temperature and top_p together
THINKING = Reasoning(budget_tokens=2048)


def talkative(_request: ModelRequest) -> Turn:
    return "Alpha. END Beta. STOP Gamma."


def ask(settings: ModelSettings, tool_choice: ToolChoice | None = None) -> ModelRequest:
    return ModelRequest("s", (Message.user("Go on."),), (LOOKUP,), 4096, tool_choice, settings)


async def test_sampling_settings_on_the_converse_wire() -> None:
    settings = ModelSettings(
        temperature=0.3,
        top_k=40,
        stop_sequences=("NEVER SAID",),
        user="alice@example.com",
        metadata={"team": "audit", "run": "q3 #7"},
        extra={"anthropic_beta": ["context-1m-2025-08-07"]},
        cache=False,
    )
    async with bedrock(talkative) as (url, recorder):
        model = BedrockConverseModel(SONNET, client=client(url), retry=FAST)
        response = await model.generate(ask(settings))

    assert response.text == talkative(ask(settings))  # no stop sequence in it: whole
    assert response.stop_reason == "end_turn" and response.stop_sequence is None
    (body,) = bodies(recorder)
    assert body["inferenceConfig"] == {
        "maxTokens": 4096,
        "temperature": 0.3,
        "stopSequences": ["NEVER SAID"],
    }
    assert body["additionalModelRequestFields"] == {
        "top_k": 40,
        "anthropic_beta": ["context-1m-2025-08-07"],
    }
    assert body["requestMetadata"] == {"team": "audit", "run": "q3 #7", "user": "alice@example.com"}
    assert body["additionalModelResponseFieldPaths"] == ["/stop_sequence"]


@pytest.mark.parametrize("model_class", [BedrockConverseModel, BedrockInvokeModel])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_stop_sequence_cuts_the_answer_and_is_named(
    model_class: type[BedrockConverseModel] | type[BedrockInvokeModel], stream: bool
) -> None:
    settings = ModelSettings(stop_sequences=("STOP", "END"))
    async with bedrock(talkative) as (url, _):
        model = model_class(SONNET, client=client(url), retry=FAST)
        shown: list[str] = []
        response = await model.generate(ask(settings), on_text=shown.append if stream else None)

    assert response.text == "Alpha. "
    assert response.stop_reason == "stop_sequence"
    assert response.stop_sequence == "END"  # the first one in the text, not the first listed
    assert "".join(shown) == ("Alpha. " if stream else "")


@pytest.mark.parametrize(("sequences", "named"), [(("STOP", "END"), None), (("END",), "END")])
async def test_which_stop_sequence_is_unknown_unless_the_model_says_or_there_was_one(
    sequences: tuple[str, ...], named: str | None
) -> None:
    """Converse does not say which sequence stopped a non-Claude model; with only one asked
    for, it was that one."""
    async with bedrock(talkative) as (url, recorder):
        model = BedrockConverseModel(LLAMA, client=client(url), retry=FAST)
        response = await model.generate(ask(ModelSettings(stop_sequences=sequences)))

    assert response.text == "Alpha. " and response.stop_reason == "stop_sequence"
    assert response.stop_sequence == named
    assert "additionalModelResponseFieldPaths" not in bodies(recorder)[0]


UNSUPPORTED: list[Any] = [
    (LLAMA, ModelSettings(reasoning=THINKING), None, "reasoning", r"ModelSettings\(extra="),
    (
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        ModelSettings(reasoning=THINKING),
        None,
        "reasoning",
        "no extended thinking",
    ),
    ("amazon.nova-pro-v1:0", ModelSettings(top_k=5), None, "top_k", r"ModelSettings\(extra="),
    (
        SONNET,
        ModelSettings(reasoning=THINKING, temperature=0.5),
        None,
        "temperature",
        "only temperature 1",
    ),
    (SONNET, ModelSettings(reasoning=THINKING, top_k=5), None, "top_k", "refuses top_k"),
    (SONNET, ModelSettings(reasoning=THINKING, top_p=0.5), None, "top_p", "0.95 to 1"),
    (
        SONNET,
        ModelSettings(reasoning=THINKING),
        ToolChoice("any"),
        "tool_choice",
        r"ToolChoice\('auto'\)",
    ),
    (SONNET, ModelSettings(temperature=1.5), None, "temperature=1.5", "0 to 1"),
    (
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        ModelSettings(temperature=0.5, top_p=0.9),
        None,
        "temperature with top_p",
        "one of the two",
    ),
    (
        "global.anthropic.claude-opus-4-7",
        ModelSettings(temperature=0.2),
        None,
        "temperature",
        "no sampling parameters",
    ),
    (SONNET, ModelSettings(metadata={"ticket": "a;b"}), None, "metadata value 'a;b'", "letters"),
    (
        SONNET,
        ModelSettings(metadata={f"k{i}": "v" for i in range(16)}, user="u"),
        None,
        "17 metadata pairs",
        "at most 16",
    ),
]


@pytest.mark.parametrize(("model_id", "settings", "choice", "setting", "why"), UNSUPPORTED)
async def test_unsupported_settings_are_refused_before_any_request(
    model_id: str, settings: ModelSettings, choice: ToolChoice | None, setting: str, why: str
) -> None:
    async with bedrock(talkative) as (url, recorder):
        model = BedrockConverseModel(model_id, client=client(url), retry=FAST)
        with pytest.raises(UnsupportedSetting, match=why) as refused:
            await model.generate(ask(settings, choice), on_text=lambda _: None)

    assert recorder.requests == []
    assert refused.value.setting == setting
    assert f"Bedrock Converse for {model_id!r}" in str(refused.value)
    assert refused.value.retryable is False


async def test_temperature_1_and_a_top_p_from_0_95_are_allowed_with_thinking() -> None:
    """Claude's rules with thinking on are those of Anthropic's API (``claude_models``)."""
    settings = ModelSettings(reasoning=THINKING, temperature=1, top_p=0.97)
    async with bedrock(talkative) as (url, recorder):
        model = BedrockConverseModel(OPUS_4_1, client=client(url), retry=FAST)
        response = await model.generate(ask(settings))

    assert response.stop_reason == "end_turn"
    (body,) = bodies(recorder)
    assert (body["inferenceConfig"]["temperature"], body["inferenceConfig"]["topP"]) == (1, 0.97)


@pytest.mark.parametrize(
    ("model_id", "provider", "version", "thinking", "cached"),
    [
        (SONNET, "anthropic", (4, 6), "both", {"system", "tools", "messages"}),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
            "us.anthropic.claude-opus-4-1-20250805-v1:0",
            "anthropic",
            (4, 1),
            "budget",
            {"system", "tools", "messages"},
        ),
        (
            "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "anthropic",
            (3, 7),
            "budget",
            {"system", "tools", "messages"},
        ),
        (
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "anthropic",
            (3, 5),
            "none",
            {"system", "tools", "messages"},
        ),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "anthropic", (3, 5), "none", set()),
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic", (3, 0), "none", set()),
        (
            "anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic",
            (4, 0),
            "budget",
            {"system", "tools", "messages"},
        ),
        (
            "global.anthropic.claude-opus-4-7",
            "anthropic",
            (4, 7),
            "adaptive",
            {"system", "tools", "messages"},
        ),
        (
            "anthropic.claude-mythos-preview",
            "anthropic",
            None,
            "adaptive",
            {"system", "tools", "messages"},
        ),
        ("anthropic.claude-v2:1", "anthropic", (2, 0), "none", set()),
        ("us.amazon.nova-pro-v1:0", "amazon", None, "adaptive", {"system", "messages"}),
        ("amazon.titan-text-express-v1", "amazon", None, "adaptive", set()),
        (LLAMA, "meta", None, "adaptive", set()),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
            "",
            None,
            "adaptive",
            set(),
        ),
    ],
)
def test_model_ids_name_their_family(
    model_id: str, provider: str, version: Any, thinking: str, cached: set[str]
) -> None:
    model = bedrock_model(model_id)
    assert model.provider == provider
    assert model.claude_version == version
    if model.is_claude:
        assert claude_thinking(model) == thinking
    assert prompt_cache_places(model_id) == cached
