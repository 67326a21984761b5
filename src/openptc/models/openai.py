"""OpenAI Chat Completions and Responses, and any OpenAI-compatible server, via the ``openai`` SDK.

One module for every server that speaks OpenAI's wire: api.openai.com and the local ones (vLLM,
Ollama, LiteLLM, llama.cpp) differ only in the key they need, the name of the output limit, and
how much of the usage they report. The SDK's own retries are off: ``retry.with_retries`` is the
only policy. Credentials come from ``OPENAI_API_KEY`` unless passed and are never put in a message.

Usage: OpenAI counts cached prompt tokens *inside* ``prompt_tokens``/``input_tokens``; the agent
adds ``cache_read_tokens`` and ``cache_write_tokens`` on top of ``input_tokens``, so
``ModelUsage.input_tokens`` is the uncached remainder and the sum is what the provider billed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInputItemParam,
    ResponseRefusalDeltaEvent,
    ResponseTextDeltaEvent,
    ResponseUsage,
)

from openptc.models.base import (
    Block,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    StopReason,
    TextBlock,
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

# openptc's tool-choice modes in OpenAI's words (a named tool is an object of its own).
_OPENAI_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
PROVIDER = "openai"
OPENAI_URL = "https://api.openai.com/v1"
LOCAL_API_KEY = "not-needed"
"""Sent to local servers when no key is set: most ignore it, the SDK insists on one."""
TOOL_ERROR_PREFIX = "Error: "
"""Neither API has an error flag on tool results, so the text itself says so."""

_FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}

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


class _OpenAIModel:
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


def _arguments(use: ToolUseBlock) -> str:
    """Arguments as the model sent them: malformed ones verbatim, so the history stays true."""
    if use.raw_input is not None:
        return use.raw_input
    return json.dumps(use.input, separators=(",", ":"), ensure_ascii=False)


def _result_text(result: ToolResultBlock) -> str:
    return TOOL_ERROR_PREFIX + result.content if result.is_error else result.content


def _tool_use(call_id: str | None, name: str, arguments: str) -> ToolUseBlock:
    """A tool call from its JSON-string arguments; some local servers send no call id."""
    return tool_use_from_input(call_id or f"call_{uuid.uuid4().hex[:24]}", name, arguments)


def _usage(prompt: int, output: int, cached: int | None, written: int | None) -> ModelUsage:
    """Split OpenAI's inclusive prompt count so that the agent's sum counts each token once."""
    read, write = cached or 0, written or 0
    return ModelUsage(max(0, prompt - read - write), output, read, write)


# --- Chat Completions ------------------------------------------------------------------------


class OpenAIChatModel(_OpenAIModel):
    """Chat Completions: OpenAI itself, or any OpenAI-compatible server with ``local=True``."""

    _prefix, _local_prefix, _api = "openai", "openai-compatible", "Chat Completions"

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        args = self._arguments(request)
        if on_text is None:
            return await self._call(lambda: self._complete(args))
        shown = ShownText(on_text)
        return await self._call(lambda: self._stream(args, shown), shown)

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        tools: list[ChatCompletionFunctionToolParam] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in request.tools
        ]
        # Older local servers only know max_tokens; OpenAI deprecated it for reasoning models.
        limit = "max_tokens" if self._local else "max_completion_tokens"
        args: dict[str, Any] = {
            "model": self._model,
            "messages": chat_messages(request),
            limit: request.max_tokens,
        }
        if tools:  # an empty list is rejected by OpenAI
            args["tools"] = tools
            choice = request.tool_choice
            if choice is not None:
                args["tool_choice"] = (
                    {"type": "function", "function": {"name": choice.name}}
                    if choice.mode == "tool"
                    else _OPENAI_CHOICE[choice.mode]
                )
        return args

    async def _complete(self, args: dict[str, Any]) -> ModelResponse:
        completion: ChatCompletion = await self._client.chat.completions.create(**args)
        if not completion.choices:
            raise ModelServerError(f"{self.base_url} returned no choices", provider=PROVIDER)
        choice = completion.choices[0]
        message = choice.message
        turn = _ChatTurn(
            text=message.content or "",
            refusal=message.refusal or "",
            finish_reason=choice.finish_reason,
            usage=completion.usage,
            model=completion.model or self._model,
        )
        for call in message.tool_calls or ():
            if call.type == "function":
                turn.calls.append(_Call(call.id, call.function.name, call.function.arguments))
        return turn.response()

    async def _stream(self, args: dict[str, Any], on_text: TextSink) -> ModelResponse:
        stream = await self._client.chat.completions.create(
            **args, stream=True, stream_options={"include_usage": True}
        )
        turn = _ChatTurn(model=self._model)
        calls: dict[int, _Call] = {}  # by index: a call's pieces share it
        async with stream:
            async for chunk in stream:
                turn.add_chunk(chunk, calls, on_text)
        if turn.finish_reason is None:
            # The SDK swallows ``data: [DONE]``; a finish_reason is what every complete
            # stream carries, and a dropped connection is not a finished answer.
            raise ModelServerError(
                f"{self.base_url}: the stream ended before the response was complete "
                "(no finish_reason)",
                provider=PROVIDER,
                status=None,
            )
        turn.calls = [calls[i] for i in sorted(calls)]
        return turn.response()


@dataclass
class _Call:
    """One tool call, possibly still arriving in pieces."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _ChatTurn:
    """One assistant turn as Chat Completions describes it, whole or assembled from chunks."""

    model: str
    text: str = ""
    refusal: str = ""
    calls: list[_Call] = field(default_factory=list)
    finish_reason: str | None = None
    usage: CompletionUsage | None = None

    def add_chunk(
        self, chunk: ChatCompletionChunk, calls: dict[int, _Call], on_text: TextSink
    ) -> None:
        self.model = chunk.model or self.model
        self.usage = chunk.usage or self.usage  # the last chunk, with include_usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                self.text += delta.content
                on_text(delta.content)
            if delta.refusal:
                self.refusal += delta.refusal
                on_text(delta.refusal)
            for piece in delta.tool_calls or ():
                call = calls.setdefault(piece.index, _Call())
                call.id = piece.id or call.id
                if piece.function is not None:
                    call.name += piece.function.name or ""
                    call.arguments += piece.function.arguments or ""
            self.finish_reason = choice.finish_reason or self.finish_reason

    def response(self) -> ModelResponse:
        blocks: list[Block] = [TextBlock(t) for t in (self.text, self.refusal) if t]
        blocks += [_tool_use(c.id, c.name, c.arguments) for c in self.calls]
        stop = _FINISH_REASONS.get(self.finish_reason or "stop", "end_turn")
        if self.refusal:
            stop = "refusal"
        elif self.calls and stop == "end_turn":  # some local servers say "stop" for tool calls
            stop = "tool_use"
        usage = None
        if self.usage is not None:
            details = self.usage.prompt_tokens_details
            usage = _usage(
                self.usage.prompt_tokens,
                self.usage.completion_tokens,
                details.cached_tokens if details else None,
                details.cache_write_tokens if details else None,
            )
        return ModelResponse(tuple(blocks), stop, usage, self.model)


def chat_messages(request: ModelRequest) -> list[ChatCompletionMessageParam]:
    """The conversation as Chat Completions messages: tool results become ``role: tool``."""
    messages: list[ChatCompletionMessageParam] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "assistant":
            calls: list[ChatCompletionMessageFunctionToolCallParam] = [
                {
                    "id": use.id,
                    "type": "function",
                    "function": {"name": use.name, "arguments": _arguments(use)},
                }
                for use in message.tool_uses
            ]
            if calls:
                messages.append(
                    {"role": "assistant", "content": message.text or None, "tool_calls": calls}
                )
            else:
                messages.append({"role": "assistant", "content": message.text})
            continue
        # Tool messages must directly follow the assistant turn that asked for them.
        for result in message.results:
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": result.tool_use_id,
                    "content": _result_text(result),
                }
            )
        if message.text:
            messages.append({"role": "user", "content": message.text})
    return messages


# --- Responses -------------------------------------------------------------------------------


class OpenAIResponsesModel(_OpenAIModel):
    """The Responses API, stateless (``store=False``): the whole conversation goes each time."""

    _prefix = _local_prefix = "openai-responses"
    _api = "Responses API"

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        args = self._arguments(request)
        if on_text is None:
            return await self._call(lambda: self._create(args))
        shown = ShownText(on_text)
        return await self._call(lambda: self._stream(args, shown), shown)

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        tools: list[FunctionToolParam] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
                "strict": False,  # strict mode needs every property required; ours may be optional
            }
            for t in request.tools
        ]
        args: dict[str, Any] = {
            "model": self._model,
            "input": responses_input(request),
            "max_output_tokens": request.max_tokens,
            "store": False,
        }
        if request.system:
            args["instructions"] = request.system
        if tools:
            args["tools"] = tools
            choice = request.tool_choice
            if choice is not None:
                args["tool_choice"] = (
                    {"type": "function", "name": choice.name}
                    if choice.mode == "tool"
                    else _OPENAI_CHOICE[choice.mode]
                )
        return args

    async def _create(self, args: dict[str, Any]) -> ModelResponse:
        response: Response = await self._client.responses.create(**args)
        return self._to_model_response(response)

    async def _stream(self, args: dict[str, Any], on_text: TextSink) -> ModelResponse:
        stream = await self._client.responses.create(**args, stream=True)
        final: Response | None = None
        async with stream:
            async for event in stream:
                if isinstance(event, ResponseTextDeltaEvent | ResponseRefusalDeltaEvent):
                    on_text(event.delta)
                elif isinstance(
                    event, ResponseCompletedEvent | ResponseIncompleteEvent | ResponseFailedEvent
                ):
                    final = event.response
                elif isinstance(event, ResponseErrorEvent):
                    raise ModelServerError(
                        f"{self.base_url}: {event.message} ({event.code})",
                        provider=PROVIDER,
                        status=None,
                    )
        if final is None:
            raise ModelServerError(
                f"{self.base_url}: the stream ended before the response was complete "
                "(no response.completed)",
                provider=PROVIDER,
                status=None,
            )
        return self._to_model_response(final)

    def _to_model_response(self, response: Response) -> ModelResponse:
        if response.status in ("failed", "cancelled"):
            said = response.error.message if response.error else "no reason given"
            raise ModelServerError(
                f"{self.base_url}: the response {response.status}: {said}",
                provider=PROVIDER,
                status=None,
            )
        blocks: list[Block] = []
        refused = False
        for item in response.output:
            if item.type == "message":
                for part in item.content:
                    if part.type == "output_text":
                        blocks.append(TextBlock(part.text))
                    else:
                        blocks.append(TextBlock(part.refusal))
                        refused = True
            elif item.type == "function_call":
                blocks.append(_tool_use(item.call_id, item.name, item.arguments))
        stop: StopReason = "end_turn"
        reason = response.incomplete_details.reason if response.incomplete_details else None
        if refused or reason == "content_filter":
            stop = "refusal"
        elif response.status == "incomplete":
            stop = "max_tokens"  # cut short, whatever the limit that did it
        elif any(isinstance(b, ToolUseBlock) for b in blocks):
            stop = "tool_use"
        return ModelResponse(tuple(blocks), stop, _responses_usage(response.usage), response.model)


def _responses_usage(usage: ResponseUsage | None) -> ModelUsage | None:
    if usage is None:
        return None
    details = usage.input_tokens_details
    return _usage(
        usage.input_tokens,
        usage.output_tokens,
        details.cached_tokens if details else None,
        details.cache_write_tokens if details else None,
    )


def responses_input(request: ModelRequest) -> list[ResponseInputItemParam]:
    """The conversation as Responses input items, in block order."""
    items: list[ResponseInputItemParam] = []
    for message in request.messages:
        for block in message.content:
            if isinstance(block, TextBlock):
                items.append({"type": "message", "role": message.role, "content": block.text})
            elif isinstance(block, ToolUseBlock):
                items.append(
                    {
                        "type": "function_call",
                        "call_id": block.id,
                        "name": block.name,
                        "arguments": _arguments(block),
                    }
                )
            else:
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": block.tool_use_id,
                        "output": _result_text(block),
                    }
                )
    return items


__all__ = [
    "LOCAL_API_KEY",
    "TOOL_ERROR_PREFIX",
    "OpenAIChatModel",
    "OpenAIResponsesModel",
    "chat_messages",
    "responses_input",
]
