"""The one retry policy, and model strings."""

from __future__ import annotations

import pytest

from openptc.models import model_from_string
from openptc.models.errors import (
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelServerError,
    parse_retry_after,
    redact_url,
    redact_urls_in,
    retry_after_from_headers,
)
from openptc.models.resolve import split_base_url
from openptc.models.retry import RetryPolicy, ShownText, with_retries

FAST = RetryPolicy(attempts=3, base_delay_s=0.001)


class Flaky:
    """Fails with the given errors, in order, then answers."""

    def __init__(self, *errors: ModelError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_transient_errors_are_retried_until_success() -> None:
    flaky = Flaky(ModelRateLimited("slow down", retry_after_s=0), ModelServerError("oops"))
    waits: list[float] = []
    assert await with_retries(flaky, FAST, on_retry=lambda e, w: waits.append(w)) == "ok"
    assert flaky.calls == 3
    assert waits[0] == 0  # the provider's Retry-After wins over backoff


async def test_retries_are_bounded() -> None:
    flaky = Flaky(*(ModelServerError("down") for _ in range(5)))
    with pytest.raises(ModelServerError):
        await with_retries(flaky, FAST)
    assert flaky.calls == 3


async def test_auth_errors_are_not_retried() -> None:
    flaky = Flaky(ModelAuthError("set the key"))
    with pytest.raises(ModelAuthError):
        await with_retries(flaky, FAST)
    assert flaky.calls == 1


async def test_no_retry_once_text_was_shown() -> None:
    pieces: list[str] = []
    shown = ShownText(pieces.append)

    async def stream_then_fail() -> str:
        shown("")  # an empty piece shows nothing
        if len(pieces) < 2:
            raise ModelServerError("dropped before any text")
        shown("Part")
        raise ModelServerError("dropped after text")

    with pytest.raises(ModelServerError, match="after text") as raised:
        await with_retries(stream_then_fail, FAST, shown=shown)
    assert pieces == ["", "", "Part"]  # retried once before the text, never after it
    assert shown.shown and not raised.value.retryable


def test_retry_after_is_honoured_beyond_the_backoff_cap_up_to_its_own() -> None:
    policy = RetryPolicy(max_delay_s=5)
    assert policy.delay(1, ModelRateLimited("x", retry_after_s=90)) == 90
    assert policy.delay(1, ModelRateLimited("x", retry_after_s=600)) == 120
    assert RetryPolicy(max_retry_after_s=10).delay(1, ModelServerError("x")) <= 0.5
    assert RetryPolicy(max_retry_after_s=10).delay(1, ModelRateLimited("x", retry_after_s=60)) == 10


def test_retry_after_is_capped_and_parsed() -> None:
    policy = RetryPolicy(max_delay_s=5)
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
    backoff = [policy.delay(n, ModelServerError("x")) for n in (1, 2, 3)]
    assert backoff[0] <= 0.5 and backoff[2] <= 2.0 and backoff[2] >= 1.0


def test_base_url_is_split_from_model_ids_with_colons() -> None:
    assert split_base_url("anthropic.claude-v2:1") == ("anthropic.claude-v2:1", None)
    assert split_base_url("qwen3:8b@http://127.0.0.1:11434/v1") == (
        "qwen3:8b",
        "http://127.0.0.1:11434/v1",
    )


def test_unknown_model_strings_list_the_providers() -> None:
    with pytest.raises(ValueError, match="anthropic, bedrock") as raised:
        model_from_string("gemini:pro")
    assert "openai-compatible" in str(raised.value)
    with pytest.raises(ValueError, match="needs the server's address"):
        model_from_string("openai-compatible:qwen3")
    with pytest.raises(ValueError, match="unknown scripted model"):
        model_from_string("scripted:nope")


def test_retry_after_is_read_from_headers_milliseconds_first() -> None:
    assert retry_after_from_headers({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_from_headers({"retry-after": "3"}) == 3
    assert retry_after_from_headers({"retry-after-ms": "soon", "retry-after": "3"}) == 3
    assert retry_after_from_headers({}) is None


def test_urls_are_shown_without_their_password() -> None:
    assert redact_url("http://user:s3cr3t@host:8000/v1?x=1") == "http://user:***@host:8000/v1?x=1"
    assert redact_url("https://:s3cr3t@host/v1") == "https://:***@host/v1"
    assert redact_url("http://sk-token@host/v1") == "http://***@host/v1"  # a lone user is a token
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert redact_url("http://[::1") == "http://[::1"  # unparsable: as it is
    said = 'Could not connect to "http://u:s3cr3t@h:1/model/x" nor https://h/ok'
    assert (
        redact_urls_in(said) == 'Could not connect to "http://u:***@h:1/model/x" nor https://h/ok'
    )
