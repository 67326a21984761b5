"""Anthropic Messages API through the official ``anthropic`` SDK.

Translates the normalized request to the Messages wire format and the reply (or its stream of
events) back, through ``anthropic_wire`` (shared with Bedrock's InvokeModel); the model's name
says which form of thinking it takes and which sampling settings it refuses
(``anthropic_settings``), and betas a setting needs (interleaved thinking) travel in the
``anthropic-beta`` header. The SDK's own
retries are off: ``retry.with_retries`` is the only policy, so a 429 or an overload behaves as
with every other provider. Credentials come from the SDK's usual configuration
(``ANTHROPIC_API_KEY``) unless passed; they are never logged or put in a message.
"""

from __future__ import annotations

from typing import Any

import anthropic

from openptc.models import anthropic_wire
from openptc.models.base import ModelRequest, ModelResponse, TextSink
from openptc.models.errors import (
    ModelAuthError,
    ModelBadRequest,
    ModelConnectionError,
    ModelError,
    ModelRateLimited,
    ModelServerError,
    redact_url,
    redact_urls_in,
    retry_after_from_headers,
)
from openptc.models.retry import RetryPolicy, ShownText, with_retries

PROVIDER = "anthropic"
ANTHROPIC_URL = "https://api.anthropic.com"
DEFAULT_RETRY = RetryPolicy()
_SDK_NAMED = frozenset(
    {"max_tokens", "messages", "system", "tools", "tool_choice", "thinking", "metadata"}
    | {"stop_sequences", "output_config"}
)

# An error event inside a 200 stream carries no HTTP status; its type says what it would be.
_STATUS_OF_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicModel:
    """A Claude model behind the Messages API (or any server that speaks it, via ``base_url``)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: anthropic.AsyncAnthropic | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout_s: float = 600,
    ) -> None:
        client_given = client
        try:
            if client is None:
                client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0)
            else:  # a copy: the caller's client keeps its own settings
                client = client.with_options(api_key=api_key, base_url=base_url, max_retries=0)
        except anthropic.CredentialsError as exc:  # a configured profile that does not load
            raise ModelAuthError(
                f"Anthropic credentials could not be loaded: {exc}", provider=PROVIDER
            ) from exc
        self._client = client
        self._owns_client = client_given is None
        self._model = model
        self._retry = retry
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        """``anthropic:<model>``: the endpoint is not part of it, so no credential is either."""
        return f"{PROVIDER}:{self._model}"

    @property
    def label(self) -> str:
        """Names the endpoint too when it is not Anthropic's own (a proxy, a fake, a gateway)."""
        where = f" at {self.base_url}" if self.base_url != ANTHROPIC_URL else ""
        return f"{PROVIDER} {self._model}{where}"

    @property
    def base_url(self) -> str:
        """The endpoint, fit to show: a password in the URL is replaced by ``***``."""
        return redact_url(str(self._client.base_url).rstrip("/"))

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        shown = ShownText(on_text) if on_text is not None else None
        arguments = self._arguments(request)  # a setting the API refuses fails here, unsent

        async def attempt() -> ModelResponse:
            if shown is None:
                return await self._create(arguments)
            return await self._stream(arguments, shown)

        return await with_retries(attempt, self._retry, shown=shown)

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        """``messages.create`` keyword arguments, but ``stream``.

        Fields the SDK does not name (``temperature``, ``top_p`` and ``top_k``, which it
        dropped from its signature in 1.0 while the API still takes them on the models that
        sample; anything in ``settings.extra``) travel in ``extra_body``: the same JSON.
        """
        body = anthropic_wire.request_body(request, provider=PROVIDER, model=self._model)
        arguments: dict[str, Any] = {
            "model": self._model,
            **{k: v for k, v in body.items() if k in _SDK_NAMED},
            # Explicit, so the SDK does not refuse a large max_tokens without streaming.
            "timeout": self._timeout_s,
        }
        unnamed = {k: v for k, v in body.items() if k not in _SDK_NAMED}
        if unnamed:
            arguments["extra_body"] = unnamed
        betas = anthropic_wire.beta_flags(request.settings, self._model)
        if betas:
            arguments["extra_headers"] = {"anthropic-beta": ",".join(betas)}
        return arguments

    async def _create(self, arguments: dict[str, Any]) -> ModelResponse:
        try:
            message: anthropic.types.Message = await self._client.messages.create(**arguments)
        except (anthropic.AnthropicError, TypeError) as exc:
            raise self._translate(exc) from exc
        return anthropic_wire.response(message.to_dict(warnings=False), message.model)

    async def _stream(self, arguments: dict[str, Any], on_text: TextSink) -> ModelResponse:
        """Stream with ``create(stream=True)`` and assemble the turn from the raw events.

        Not ``messages.stream()``: its accumulator raises on tool input that is not valid JSON,
        which would lose the turn instead of letting the agent feed the error back.
        """
        turn = anthropic_wire.StreamedTurn()
        try:
            events: anthropic.AsyncStream[anthropic.types.RawMessageStreamEvent]
            events = await self._client.messages.create(**arguments, stream=True)
            async with events:
                async for event in events:
                    text = turn.add(event.to_dict(warnings=False))
                    if text:
                        on_text(text)
        except (anthropic.AnthropicError, TypeError) as exc:
            raise self._translate(exc) from exc
        if not turn.finished:  # a dropped connection is not a finished answer
            raise ModelServerError(
                f"Anthropic at {self.base_url}: the stream ended before the response was "
                "complete (no message_stop)",
                provider=PROVIDER,
                status=None,
            )
        return turn.response()

    async def aclose(self) -> None:
        """Close the connections of a client this model made; a client passed in is borrowed
        (``with_options`` copies share its connection pool)."""
        if self._owns_client:
            await self._client.close()

    def _translate(self, exc: Exception) -> ModelError:
        """The SDK's exception as an openptc error that says what to do about it."""
        if isinstance(exc, anthropic.APITimeoutError):
            return ModelConnectionError(
                f"Anthropic at {self.base_url} did not answer within {self._timeout_s:g} s",
                provider=PROVIDER,
            )
        if isinstance(exc, anthropic.APIConnectionError):
            cause = redact_urls_in(str(exc.__cause__ or exc))
            return ModelConnectionError(
                f"Could not reach Anthropic at {self.base_url}: {cause}", provider=PROVIDER
            )
        if isinstance(exc, anthropic.APIStatusError):
            return _status_error(exc)
        if isinstance(exc, anthropic.CredentialsError) or (
            # The SDK's words when it finds no key anywhere, raised before any request.
            isinstance(exc, TypeError) and "Could not resolve authentication method" in str(exc)
        ):
            return ModelAuthError(
                "No Anthropic credentials found: set ANTHROPIC_API_KEY (or pass api_key=...).",
                provider=PROVIDER,
            )
        if isinstance(exc, TypeError):
            raise exc  # a programming error, not the provider's: keep it as it is
        return ModelError(f"Anthropic call failed: {exc}", provider=PROVIDER)

    def __repr__(self) -> str:
        return f"AnthropicModel({self._model!r}, base_url={self.base_url!r})"


# --- errors -------------------------------------------------------------------------------


def _status_error(exc: anthropic.APIStatusError) -> ModelError:
    kind, message = _provider_error(exc)
    status = exc.status_code
    if status < 400:  # an error event in the middle of a stream
        status = _STATUS_OF_ERROR_TYPE.get(kind, 500)
    said = f"(HTTP {status} {kind}): {message}" if kind else f"(HTTP {status}): {message}"
    if status in (401, 403):
        return ModelAuthError(
            f"Anthropic rejected the credentials {said}. Set ANTHROPIC_API_KEY to a valid API "
            "key (or check the key passed as api_key).",
            provider=PROVIDER,
            status=status,
        )
    retry_after = retry_after_from_headers(exc.response.headers)
    if status == 429:
        return ModelRateLimited(
            f"Anthropic rate limit {said}", provider=PROVIDER, retry_after_s=retry_after
        )
    if status >= 500 or status in (408, 409):
        return ModelServerError(
            f"Anthropic server error {said}",
            provider=PROVIDER,
            status=status,
            retry_after_s=retry_after,
        )
    return ModelBadRequest(
        f"Anthropic rejected the request {said}", provider=PROVIDER, status=status
    )


def _provider_error(exc: anthropic.APIStatusError) -> tuple[str, str]:
    """``error.type`` and ``error.message`` of the provider's envelope, else the raw text."""
    body = exc.body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error.get("type") or ""), error["message"]
    return "", str(body) if body else exc.message
