"""What the Chat Completions and Responses adapters share: the client, names, errors, usage.

Every server that speaks OpenAI's wire goes through the ``openai`` SDK: api.openai.com and the
local ones (vLLM, Ollama, LiteLLM, llama.cpp) differ only in the key they need, the name of the
output limit, and how much of the usage they report. The SDK's own retries are off:
``retry.with_retries`` is the only policy. Credentials come from ``OPENAI_API_KEY`` unless passed
and are never put in a message.

Usage: OpenAI counts cached prompt tokens *inside* ``prompt_tokens``/``input_tokens``; the agent
adds ``cache_read_tokens`` and ``cache_write_tokens`` on top of ``input_tokens``, so
``ModelUsage.input_tokens`` is the uncached remainder and the sum is what the provider billed.
Reasoning tokens are part of the output count, as OpenAI reports them; a server that returns
reasoning text without a count (vLLM, Ollama) has it counted with the offline tokenizer.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import openai

from openptc.models.base import (
    Block,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    TextSink,
    ToolResultBlock,
    ToolUseBlock,
    tool_use_from_input,
)
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
from openptc.models.tokens import count_reasoning_tokens

# openptc's tool-choice modes in OpenAI's words (a named tool is an object of its own).
OPENAI_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
PROVIDER = "openai"
OPENAI_URL = "https://api.openai.com/v1"
LOCAL_API_KEY = "not-needed"
"""Sent to local servers when no key is set: most ignore it, the SDK insists on one."""
TOOL_ERROR_PREFIX = "Error: "
"""Neither API has an error flag on tool results, so the text itself says so."""

DEFAULT_RETRY = RetryPolicy()

T = TypeVar("T")


def _make_client(
    client: openai.AsyncOpenAI | None,
    base_url: str | None,
    api_key: str | None,
    local: bool,
    timeout_s: float,
) -> openai.AsyncOpenAI:
    """The SDK client with its own retries off; fails now, not at the first call, without a key."""
    if client is not None:
        return client.with_options(max_retries=0, timeout=timeout_s)
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if not local:
            raise ModelAuthError(
                "OPENAI_API_KEY is not set: export your OpenAI API key (or pass api_key=...)",
                provider=PROVIDER,
            )
        key = LOCAL_API_KEY
    return openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s)


class OpenAIModelBase:
    """What both APIs share: the client, names, and turning SDK errors into ``ModelError``."""

    # Set by subclasses: their model-string prefixes (OpenAI's, a local server's), API name.
    _prefix = _local_prefix = _api = ""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        local: bool = False,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout_s: float = 600,
    ) -> None:
        self._model = model
        self._local = local
        self._retry = retry
        self._timeout_s = timeout_s
        self._client = _make_client(client, base_url, api_key, local, timeout_s)
        self._owns_client = client is None
        # Fit to show (names, labels, error messages): a password in the URL becomes ``***``.
        self.base_url = redact_url(str(self._client.base_url).rstrip("/"))

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        args = self._arguments(request)
        if on_text is None:
            return await self._call(lambda: self._once(args))
        shown = ShownText(on_text)
        return await self._call(lambda: self._stream(args, shown), shown)

    # Each API fills these in: its request arguments, one whole response, one streamed response.
    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def _once(self, args: dict[str, Any]) -> ModelResponse:
        raise NotImplementedError

    async def _stream(self, args: dict[str, Any], on_text: TextSink) -> ModelResponse:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The model string that resolves to this model again.

        Except when the base URL carries credentials (``http://user:pw@host/v1``): the name
        shows the password as ``***`` and cannot be resolved back to a working model.
        """
        prefix = self._local_prefix if self._local else self._prefix
        if self._local or self.base_url != OPENAI_URL:
            return f"{prefix}:{self._model}@{self.base_url}"
        return f"{prefix}:{self._model}"

    @property
    def label(self) -> str:
        if self._local:
            return f"{self._model} at {self.base_url} (OpenAI-compatible server, {self._api})"
        if self.base_url != OPENAI_URL:
            return f"{self._model} at {self.base_url} ({self._api})"
        return f"OpenAI {self._model} ({self._api})"

    async def aclose(self) -> None:
        """Close the connections of a client this model made; a client passed in is borrowed."""
        if self._owns_client:
            await self._client.close()

    async def _call(self, attempt: Callable[[], Awaitable[T]], shown: ShownText | None = None) -> T:
        async def translated() -> T:
            try:
                return await attempt()
            except openai.OpenAIError as exc:
                raise self._translate(exc) from exc

        return await with_retries(translated, self._retry, shown=shown)

    def _translate(self, exc: openai.OpenAIError) -> ModelError:
        where = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            return ModelConnectionError(
                f"{where} did not answer within {self._timeout_s:g}s", provider=PROVIDER
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = f" ({redact_urls_in(str(exc.__cause__))})" if exc.__cause__ else ""
            return ModelConnectionError(f"could not reach {where}{cause}", provider=PROVIDER)
        if not isinstance(exc, openai.APIStatusError):
            # An error event inside a 200 stream, or a reply the SDK could not read.
            message = exc.message if isinstance(exc, openai.APIError) else str(exc)
            return ModelServerError(f"{where}: {message}", provider=PROVIDER, status=None)
        status = exc.status_code
        said = _provider_message(exc)
        if status in (401, 403):
            fix = (
                "check the API key this server expects (pass api_key=... or set OPENAI_API_KEY)"
                if self._local
                else "set OPENAI_API_KEY to a valid OpenAI API key"
            )
            return ModelAuthError(
                f"{where} rejected the credentials ({status}: {said}); {fix}",
                provider=PROVIDER,
                status=status,
            )
        if status == 429:
            if exc.code == "insufficient_quota":  # billing, not load: waiting cannot help
                return ModelError(f"{where}: {said}", provider=PROVIDER, status=status)
            return ModelRateLimited(
                f"{where} is rate limiting: {said}",
                provider=PROVIDER,
                retry_after_s=retry_after_from_headers(exc.response.headers),
            )
        if status >= 500:
            return ModelServerError(
                f"{where} failed ({status}): {said}",
                provider=PROVIDER,
                status=status,
                retry_after_s=retry_after_from_headers(exc.response.headers),
            )
        return ModelBadRequest(
            f"{where} rejected the request ({status}): {said}", provider=PROVIDER, status=status
        )


def _provider_message(exc: openai.APIStatusError) -> str:
    """The ``error.message`` of OpenAI's error body (the SDK keeps the inner object as body)."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


def call_arguments(use: ToolUseBlock) -> str:
    """Arguments as the model sent them: malformed ones verbatim, so the history stays true."""
    if use.raw_input is not None:
        return use.raw_input
    return json.dumps(use.input, separators=(",", ":"), ensure_ascii=False)


def result_text(result: ToolResultBlock) -> str:
    """A tool result's text, with ``TOOL_ERROR_PREFIX`` when it is an error."""
    return TOOL_ERROR_PREFIX + result.content if result.is_error else result.content


def tool_use(call_id: str | None, name: str, arguments: str) -> ToolUseBlock:
    """A tool call from its JSON-string arguments; some local servers send no call id."""
    return tool_use_from_input(call_id or f"call_{uuid.uuid4().hex[:24]}", name, arguments)


def split_usage(
    prompt: int,
    output: int,
    cached: int | None,
    written: int | None,
    reasoning: int | None = None,
    blocks: Iterable[Block] = (),
) -> ModelUsage:
    """Split OpenAI's inclusive prompt count so that the agent's sum counts each token once.

    ``reasoning`` is the provider's count; when it gave none (or a zero that reasoning text in
    ``blocks`` belies), the returned reasoning text is counted instead.
    """
    read, write = cached or 0, written or 0
    thought = reasoning or min(output, count_reasoning_tokens(blocks))
    return ModelUsage(max(0, prompt - read - write), output, read, write, thought)


__all__ = [
    "DEFAULT_RETRY",
    "LOCAL_API_KEY",
    "OPENAI_CHOICE",
    "OPENAI_URL",
    "PROVIDER",
    "TOOL_ERROR_PREFIX",
    "OpenAIModelBase",
    "call_arguments",
    "result_text",
    "split_usage",
    "tool_use",
]
