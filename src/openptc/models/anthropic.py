"""Anthropic Messages API through the official ``anthropic`` SDK.

Translates the normalized request to the Messages wire format and the reply (or its stream of
events) back. The SDK's own retries are off: ``retry.with_retries`` is the only policy, so a 429
or an overload behaves as with every other provider. Credentials come from the SDK's usual
configuration (``ANTHROPIC_API_KEY``) unless passed; they are never logged or put in a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import anthropic
from anthropic import types as wire

from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    StopReason,
    TextBlock,
    TextSink,
    ToolSpec,
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

PROVIDER = "anthropic"
ANTHROPIC_URL = "https://api.anthropic.com"
DEFAULT_RETRY = RetryPolicy()

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    # openptc never sends stop_sequences; a stop is a finished turn all the same.
    "stop_sequence": "end_turn",
    "max_tokens": "max_tokens",
    # The answer was cut short, by the context window instead of max_tokens.
    "model_context_window_exceeded": "max_tokens",
    # Only server tools (web search, Anthropic's code execution) pause a turn, and openptc
    # offers none; should one appear, the turn is unfinished, like a truncated one.
    "pause_turn": "max_tokens",
    "refusal": "refusal",
}

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

        async def attempt() -> ModelResponse:
            if shown is None:
                return await self._create(request)
            return await self._stream(request, shown)

        return await with_retries(attempt, self._retry, shown=shown)

    async def _create(self, request: ModelRequest) -> ModelResponse:
        system, messages, tools = _wire_request(request)
        try:
            message = await self._client.messages.create(
                model=self._model,
                max_tokens=request.max_tokens,
                system=system,
                messages=messages,
                tools=tools,
                # Explicit, so the SDK does not refuse a large max_tokens without streaming.
                timeout=self._timeout_s,
            )
        except (anthropic.AnthropicError, TypeError) as exc:
            raise self._translate(exc) from exc
        return _from_message(message)

    async def _stream(self, request: ModelRequest, on_text: TextSink) -> ModelResponse:
        """Stream with ``create(stream=True)`` and assemble the turn from the raw events.

        Not ``messages.stream()``: its accumulator raises on tool input that is not valid JSON,
        which would lose the turn instead of letting the agent feed the error back.
        """
        system, messages, tools = _wire_request(request)
        turn = _StreamedTurn()
        try:
            events = await self._client.messages.create(
                model=self._model,
                max_tokens=request.max_tokens,
                system=system,
                messages=messages,
                tools=tools,
                stream=True,
                timeout=self._timeout_s,
            )
            async with events:
                async for event in events:
                    text = turn.add(event)
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


# --- request ------------------------------------------------------------------------------


def _wire_request(
    request: ModelRequest,
) -> tuple[str | anthropic.Omit, list[wire.MessageParam], list[wire.ToolParam] | anthropic.Omit]:
    system: str | anthropic.Omit = request.system or anthropic.omit
    tools = [_wire_tool(spec) for spec in request.tools]
    return system, _wire_messages(request.messages), tools or anthropic.omit


def _wire_tool(spec: ToolSpec) -> wire.ToolParam:
    param: wire.ToolParam = {"name": spec.name, "input_schema": spec.input_schema}
    if spec.description:
        param["description"] = spec.description
    return param


def _wire_messages(messages: Iterable[Message]) -> list[wire.MessageParam]:
    """Messages as the API accepts them: roles alternate and no block is empty.

    Consecutive turns of one role are merged into one turn (results first, as the API wants
    ``tool_result`` blocks to open a user turn); empty text blocks, which the API rejects, are
    dropped, and with them a turn that is left with nothing.
    """
    turns: list[tuple[str, list[wire.ContentBlockParam]]] = []
    for message in messages:
        blocks = [_wire_block(b) for b in message.content if not _is_empty_text(b)]
        if not blocks:
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message.role, blocks))
    wired: list[wire.MessageParam] = []
    for role, blocks in turns:
        if role == "user":
            blocks.sort(key=lambda b: b["type"] != "tool_result")  # stable: order kept otherwise
            wired.append({"role": "user", "content": blocks})
        else:
            wired.append({"role": "assistant", "content": blocks})
    return wired


def _is_empty_text(block: Block) -> bool:
    return isinstance(block, TextBlock) and not block.text


def _wire_block(block: Block) -> wire.ContentBlockParam:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        # A call whose arguments were not a JSON object goes back with ``{}``: the API accepts
        # only an object here (a string is a 400), and the paired error result says what was
        # wrong with the original.
        arguments = {} if block.raw_input is not None else dict(block.input)
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": arguments}
    result: wire.ToolResultBlockParam = {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
    }
    if block.is_error:
        result["is_error"] = True
    return result


# --- response -----------------------------------------------------------------------------


def _from_message(message: wire.Message) -> ModelResponse:
    blocks: list[Block] = []
    for item in message.content:
        if item.type == "text":
            blocks.append(TextBlock(item.text))
        elif item.type == "tool_use":
            blocks.append(tool_use_from_input(item.id, item.name, item.input))
        # Other block types (thinking, server tools) need features openptc does not request.
    return _response(blocks, message.stop_reason, _usage(message.usage), message.model)


def _response(
    blocks: list[Block], stop: str | None, usage: ModelUsage, model: str
) -> ModelResponse:
    has_tool_uses = any(isinstance(b, ToolUseBlock) for b in blocks)
    normalized = _STOP_REASONS.get(stop or "") or ("tool_use" if has_tool_uses else "end_turn")
    return ModelResponse(tuple(blocks), normalized, usage, model)


def _usage(usage: wire.Usage) -> ModelUsage:
    return ModelUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        cache_write_tokens=usage.cache_creation_input_tokens or 0,
    )


@dataclass
class _PartialTool:
    id: str
    name: str
    json_text: list[str] = field(default_factory=list)


@dataclass
class _StreamedTurn:
    """Accumulates one streamed message from its raw events, in the order they arrive."""

    model: str = ""
    blocks: dict[int, list[str] | _PartialTool] = field(default_factory=dict)
    stop_reason: str | None = None
    usage: ModelUsage = field(default_factory=lambda: ModelUsage(0, 0))
    finished: bool = False

    def add(self, event: wire.RawMessageStreamEvent) -> str:
        """Take in one event; returns the text it added (empty if none)."""
        if event.type == "message_start":
            self.model = event.message.model
            self.usage = _usage(event.message.usage)
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "text":
                self.blocks[event.index] = [block.text]
            elif block.type == "tool_use":
                self.blocks[event.index] = _PartialTool(block.id, block.name)
        elif event.type == "content_block_delta":
            target = self.blocks.get(event.index)
            delta = event.delta
            if delta.type == "text_delta" and isinstance(target, list):
                target.append(delta.text)
                return delta.text
            if delta.type == "input_json_delta" and isinstance(target, _PartialTool):
                target.json_text.append(delta.partial_json)
        elif event.type == "message_delta":
            self.stop_reason = event.delta.stop_reason
            self.usage = _delta_usage(self.usage, event.usage)
        elif event.type == "message_stop":
            self.finished = True
        return ""

    def response(self) -> ModelResponse:
        blocks: list[Block] = []
        for _, partial in sorted(self.blocks.items()):
            if isinstance(partial, _PartialTool):
                raw = "".join(partial.json_text)
                blocks.append(tool_use_from_input(partial.id, partial.name, raw))
            else:
                blocks.append(TextBlock("".join(partial)))
        return _response(blocks, self.stop_reason, self.usage, self.model)


def _delta_usage(usage: ModelUsage, delta: wire.MessageDeltaUsage) -> ModelUsage:
    """``message_delta`` usage is cumulative; a field it leaves out keeps its earlier value."""
    return ModelUsage(
        input_tokens=_or(delta.input_tokens, usage.input_tokens),
        output_tokens=delta.output_tokens,
        cache_read_tokens=_or(delta.cache_read_input_tokens, usage.cache_read_tokens),
        cache_write_tokens=_or(delta.cache_creation_input_tokens, usage.cache_write_tokens),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


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
