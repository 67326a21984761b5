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
)
from openptc.models.resolve import split_base_url
from openptc.models.retry import RetryPolicy, with_retries

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


def test_retry_after_is_capped_and_parsed() -> None:
    policy = RetryPolicy(max_delay_s=5)
    assert policy.delay(1, ModelRateLimited("x", retry_after_s=120)) == 5
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
