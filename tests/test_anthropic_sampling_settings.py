"""Sampling settings reach the Messages API as its own fields, through the real ``anthropic`` SDK
against the fake; what the API has no field for is refused before any request."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from fakes import anthropic_fixture
from fakes.anthropic_fixture import Fake
from fakes.anthropic_server import FAKE_API_KEY
from openptc.agent import Agent
from openptc.models.base import Message, ModelRequest
from openptc.models.settings import ModelSettings, UnsupportedSetting

pytestmark = pytest.mark.asyncio(loop_scope="module")
server, fake = anthropic_fixture.server, anthropic_fixture.fake  # the fixtures


def _request(settings: ModelSettings) -> ModelRequest:
    return ModelRequest("Be brief.", (Message.user("hi"),), (), 256, settings=settings)


@pytest.mark.parametrize("stream", [False, True])
async def test_sampling_settings_reach_the_wire_as_the_apis_fields(
    fake: Fake, stream: bool
) -> None:
    settings = ModelSettings(
        temperature=0.3, top_p=0.9, top_k=40, stop_sequences=("###",), user="user-42"
    )

    response = await fake.model().generate(
        _request(settings), on_text=(lambda _t: None) if stream else None
    )

    (body,) = fake.bodies
    assert response.text == "You said: hi" and response.stop_reason == "end_turn"
    assert response.stop_sequence is None
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.3, 0.9, 40)
    assert body["stop_sequences"] == ["###"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert body["max_tokens"] == 256 and "thinking" not in body


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stop_sequence_ends_the_answer_and_is_named(fake: Fake, stream: bool) -> None:
    fake.answer_with(lambda _r: "Total: 42 USD.\nEND\nNotes nobody asked for.")
    settings = ModelSettings(stop_sequences=("NEVER", "END"))
    pieces: list[str] = []

    response = await fake.model().generate(
        _request(settings), on_text=pieces.append if stream else None
    )

    assert response.text == "Total: 42 USD.\n"
    assert response.stop_reason == "stop_sequence" and response.stop_sequence == "END"
    if stream:
        assert "".join(pieces) == response.text


async def test_an_agent_takes_a_stopped_answer_as_its_answer(fake: Fake) -> None:
    fake.answer_with(lambda _r: "The answer.</final> trailing")
    settings = ModelSettings(stop_sequences=("</final>",))
    agent = Agent(fake.model(), [], mode="direct", settings=settings)

    result = await agent.run("What is it?")

    assert result.answer == "The answer." and result.stop == "answered"


async def test_a_metadata_user_id_is_the_user(fake: Fake) -> None:
    await fake.model().generate(_request(ModelSettings(metadata={"user_id": "u-7"})))

    assert fake.bodies[0]["metadata"] == {"user_id": "u-7"}


async def test_extra_fields_are_merged_into_the_body_and_win(fake: Fake) -> None:
    settings = ModelSettings(top_k=3, extra={"top_k": 7, "service_tier": "standard_only"})

    await fake.model().generate(_request(settings))

    (body,) = fake.bodies
    assert body["top_k"] == 7 and body["service_tier"] == "standard_only"


@pytest.mark.parametrize(
    ("settings", "setting", "advice"),
    [
        (ModelSettings(temperature=1.5), "temperature", "from 0 to 1"),
        (ModelSettings(metadata={"team": "audit"}), "metadata", "ModelSettings(user=...)"),
        (
            ModelSettings(user="a", metadata={"user_id": "b"}),
            "metadata",
            "pass it once",
        ),
    ],
)
async def test_settings_the_api_has_no_field_for_are_refused_before_any_request(
    fake: Fake, settings: ModelSettings, setting: str, advice: str
) -> None:
    with pytest.raises(UnsupportedSetting) as caught:
        await fake.model().generate(_request(settings))

    assert fake.bodies == []
    assert caught.value.setting == setting and advice in str(caught.value)
    assert str(caught.value).startswith(f"{setting} is not supported by anthropic")


@pytest.mark.parametrize(
    ("model", "settings", "setting", "said"),
    [
        ("claude-opus-4-8", ModelSettings(temperature=0.2), "temperature", "deprecated"),
        ("claude-fable-5", ModelSettings(top_k=5), "top_k", "no sampling parameters"),
        (
            "claude-sonnet-4-5-20250929",
            ModelSettings(temperature=0.2, top_p=0.9),
            "temperature with top_p",
            "one of the two, not both",
        ),
    ],
)
async def test_sampling_the_named_model_refuses_is_refused_before_any_request(
    fake: Fake, model: str, settings: ModelSettings, setting: str, said: str
) -> None:
    with pytest.raises(UnsupportedSetting) as caught:
        await fake.model(model).generate(_request(settings))

    assert fake.bodies == []
    assert caught.value.setting == setting and said in str(caught.value)
    assert model in str(caught.value)


async def test_a_model_whose_name_says_nothing_gets_the_settings_as_given(fake: Fake) -> None:
    settings = ModelSettings(temperature=0.2, top_p=0.9)

    await fake.model("my-gateway-model").generate(_request(settings))
    await fake.model("claude-sonnet-4-5").generate(_request(ModelSettings(temperature=0.2)))

    assert (fake.bodies[0]["temperature"], fake.bodies[0]["top_p"]) == (0.2, 0.9)
    assert fake.bodies[1]["temperature"] == 0.2


async def test_the_fake_refuses_metadata_beyond_user_id(fake: Fake) -> None:
    client = anthropic.AsyncAnthropic(api_key=FAKE_API_KEY, base_url=fake.url, max_retries=0)
    metadata: Any = {"user_id": "u", "team": "audit"}
    async with client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                model="claude-x",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
                metadata=metadata,
            )

    assert "metadata.team: Extra inputs are not permitted" in caught.value.message
