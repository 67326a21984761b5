"""Amazon Bedrock through boto3: Converse for every model, InvokeModel for Anthropic's own body.

InvokeModel's body, reply and stream events are mapped by ``anthropic_wire``, as for Anthropic's
own API; this module adds ``anthropic_version``, the tool placeholders below, Bedrock's own stop
reasons and the event stream's ``chunk.bytes``.

Credentials come from the usual AWS chain (environment, profile, SSO, instance or task role,
``AWS_BEARER_TOKEN_BEDROCK``), found by botocore and never touched or logged here; the region
from ``region=``, the profile, ``AWS_DEFAULT_REGION`` or ``AWS_REGION``. boto3 is synchronous, so
each call runs in a worker thread. botocore's own retries are off (``total_max_attempts=1``):
``retry.with_retries`` is the one retry policy. A ``client`` passed in is used as it is, so give
it ``Config(retries={"total_max_attempts": 1})`` too.

Mapping decisions, shared by both APIs:
- usage: input, output, cache read and cache write tokens as the provider reports them (Bedrock's
  input count excludes cached tokens; the agent adds them back);
- a tool use whose input is not a JSON object gets ``input_error`` and the agent answers it with
  an error; a string input is taken as JSON text the provider could not parse. Later requests
  carry that call with input ``{}``, the only shape every model accepts back;
- Converse refuses ``toolUse``/``toolResult`` blocks without a ``toolConfig`` (and Anthropic
  without ``tools``), so a request without tools whose history holds tool calls declares the
  tools named there, as inert placeholders;
- ``stop_sequence`` -> end_turn, ``model_context_window_exceeded`` -> max_tokens,
  ``guardrail_intervened``/``content_filtered`` -> refusal; ``malformed_tool_use`` and
  ``malformed_model_output`` -> tool_use when a tool use came back (its input error is fed back),
  else a retryable ``ModelServerError``: the text would be a broken answer, a new sample may not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.eventstream import ParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoRegionError,
    ParamValidationError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from openptc.aws import AUTH_ERROR_CODES, CREDENTIAL_ERRORS, LazyClient
from openptc.models import anthropic_wire
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

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.client import BedrockRuntimeClient

PROVIDER = "bedrock"
ANTHROPIC_VERSION = "bedrock-2023-05-31"

_FILTERED = frozenset({"guardrail_intervened", "content_filtered"})
_MALFORMED = frozenset({"malformed_tool_use", "malformed_model_output"})

# Error codes, compared lower-cased: errors inside an event stream use the member name
# ("throttlingException"), HTTP errors the shape name ("ThrottlingException").
_RATE_LIMITED = frozenset({"throttlingexception", "servicequotaexceededexception"})
_TRANSIENT = frozenset(
    {
        "serviceunavailableexception",
        "internalserverexception",
        "modelnotreadyexception",
        "modeltimeoutexception",
        "modelerrorexception",
        "modelstreamerrorexception",
    }
)
_BAD_REQUEST = frozenset({"validationexception", "resourcenotfoundexception"})
_SDK_ERRORS = (ClientError, BotoCoreError, ParserError)


# --- requests ----------------------------------------------------------------------------------


def _offered_tools(request: ModelRequest) -> tuple[ToolSpec, ...]:
    """The request's tools, or placeholders for the tools its history used when it has none."""
    if request.tools:
        return request.tools
    used = dict.fromkeys(u.name for m in request.messages for u in m.tool_uses)
    note = "Not available in this conversation any more."
    return tuple(ToolSpec(name, note, {"type": "object"}) for name in used)


def _converse_block(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"text": block.text}
    if isinstance(block, ToolUseBlock):
        sent = {} if block.input_error is not None else dict(block.input)
        return {"toolUse": {"toolUseId": block.id, "name": block.name, "input": sent}}
    return {
        "toolResult": {
            "toolUseId": block.tool_use_id,
            "content": [{"text": block.content}],
            "status": "error" if block.is_error else "success",
        }
    }


def _converse_blocks(message: Message) -> list[Any]:
    # Converse refuses blank text blocks; an empty text carries nothing anyway.
    blocks = message.content
    return [_converse_block(b) for b in blocks if not (isinstance(b, TextBlock) and not b.text)]


def converse_request(model_id: str, request: ModelRequest) -> dict[str, Any]:
    """Keyword arguments of ``converse``/``converse_stream`` for one request."""
    kwargs: dict[str, Any] = {
        "modelId": model_id,
        "messages": [{"role": m.role, "content": _converse_blocks(m)} for m in request.messages],
        "inferenceConfig": {"maxTokens": request.max_tokens},
    }
    if request.system:
        kwargs["system"] = [{"text": request.system}]
    tools = _offered_tools(request)
    if tools:
        specs = []
        for t in tools:
            spec: dict[str, Any] = {"name": t.name, "inputSchema": {"json": t.input_schema}}
            if t.description:  # Converse refuses an empty description
                spec["description"] = t.description
            specs.append({"toolSpec": spec})
        kwargs["toolConfig"] = {"tools": specs}
        choice = request.tool_choice
        # Converse has no "none": the tools stay declared (history may need them) and the
        # model chooses, as with "auto".
        if choice is not None and choice.mode in ("any", "tool") and request.tools:
            kwargs["toolConfig"]["toolChoice"] = (
                {"tool": {"name": choice.name}} if choice.mode == "tool" else {"any": {}}
            )
    return kwargs


def invoke_body(request: ModelRequest) -> dict[str, Any]:
    """The native Anthropic Messages body InvokeModel takes (no ``model``, no ``stream``)."""
    body = anthropic_wire.request_body(request, _offered_tools(request))
    return {"anthropic_version": ANTHROPIC_VERSION, **body}


# --- responses ---------------------------------------------------------------------------------


def _stop_reason(reason: str | None, blocks: Sequence[Block]) -> StopReason:
    """Bedrock's own stop reasons first, then Anthropic's (which Converse's names follow)."""
    if reason in _FILTERED:
        return "refusal"
    if reason in _MALFORMED:
        if any(isinstance(b, ToolUseBlock) for b in blocks):
            return "tool_use"
        raise ModelServerError(
            f"the model's output could not be read by Bedrock (stopReason {reason!r}) and no "
            "tool call came back; asking again",
            provider=PROVIDER,
            status=None,
        )
    return anthropic_wire.stop_reason(reason, blocks)


def _converse_stop(reason: str, blocks: Sequence[Block]) -> StopReason:
    # An unknown stopReason is a finished turn, whatever blocks came with it.
    known = reason in anthropic_wire.STOP_REASONS or reason in _FILTERED | _MALFORMED
    return _stop_reason(reason if known else "end_turn", blocks)


def _converse_usage(usage: Mapping[str, Any] | None) -> ModelUsage | None:
    if not usage:
        return None
    return ModelUsage(
        input_tokens=usage.get("inputTokens", 0),
        output_tokens=usage.get("outputTokens", 0),
        cache_read_tokens=usage.get("cacheReadInputTokens", 0),
        cache_write_tokens=usage.get("cacheWriteInputTokens", 0),
    )


def converse_response(response: Mapping[str, Any], model_id: str) -> ModelResponse:
    """A ``converse`` response, normalized."""
    blocks: list[Block] = []
    for item in response.get("output", {}).get("message", {}).get("content", []):
        if "text" in item:
            blocks.append(TextBlock(item["text"]))
        elif "toolUse" in item:
            use = item["toolUse"]
            blocks.append(tool_use_from_input(use["toolUseId"], use["name"], use.get("input")))
        # reasoningContent, citations, images: not part of the normalized model
    stop = _converse_stop(response.get("stopReason", "end_turn"), blocks)
    return ModelResponse(tuple(blocks), stop, _converse_usage(response.get("usage")), model_id)


def anthropic_response(message: Mapping[str, Any], model_id: str) -> ModelResponse:
    """An Anthropic Message (the InvokeModel response body), normalized."""
    return anthropic_wire.response(message, model_id, _stop_reason)


class _Turn(Protocol):
    """A streamed response being put together from its events."""

    finished: bool
    """Set by the stream's last event (``messageStop``, ``message_stop``): the answer is whole."""

    def add(self, event: Mapping[str, Any]) -> str:
        """Take in one event; returns the text it carried (empty if none)."""
        ...

    def response(self, model: str | None = None) -> ModelResponse: ...


@dataclass
class _ConverseTurn:
    """A ``converse_stream`` response, block by block in index order."""

    texts: dict[int, list[str]] = field(default_factory=dict)
    tools: dict[int, tuple[str, str, list[str]]] = field(default_factory=dict)
    stop: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    finished: bool = False

    def add(self, event: Mapping[str, Any]) -> str:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            use = start.get("start", {}).get("toolUse")
            if use is not None:
                self.tools[start["contentBlockIndex"]] = (use["toolUseId"], use["name"], [])
        elif "contentBlockDelta" in event:
            index = event["contentBlockDelta"]["contentBlockIndex"]
            delta = event["contentBlockDelta"]["delta"]
            if "text" in delta:
                self.texts.setdefault(index, []).append(delta["text"])
                return str(delta["text"])
            if "toolUse" in delta and index in self.tools:  # no start, no name: nothing to call
                self.tools[index][2].append(delta["toolUse"].get("input", ""))
        elif "messageStop" in event:
            self.stop = event["messageStop"]["stopReason"]
            self.finished = True
        elif "metadata" in event:
            self.usage = dict(event["metadata"].get("usage", {}))
        return ""

    def response(self, model: str | None = None) -> ModelResponse:
        found: dict[int, Block] = {i: TextBlock("".join(t)) for i, t in self.texts.items()}
        for i, (tool_use_id, name, parts) in self.tools.items():
            found[i] = tool_use_from_input(tool_use_id, name, "".join(parts))
        blocks = tuple(found[i] for i in sorted(found))
        stop = _converse_stop(self.stop or "end_turn", blocks)
        return ModelResponse(blocks, stop, _converse_usage(self.usage), model or "")


class _InvokeTurn(anthropic_wire.StreamedTurn):
    """An ``invoke_model_with_response_stream`` response: Anthropic events in ``chunk.bytes``."""

    def add(self, event: Mapping[str, Any]) -> str:
        return super().add(json.loads(event["chunk"]["bytes"])) if "chunk" in event else ""

    def response(
        self, model: str | None = None, stop: anthropic_wire.StopMapping = _stop_reason
    ) -> ModelResponse:
        return super().response(model, stop)


# --- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """What an error message names: the model, the endpoint, the region."""

    model_id: str
    endpoint: str
    region: str


def _client_error(exc: ClientError, where: _Where) -> ModelError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or str(exc)
    meta = exc.response.get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode")
    headers = {k.lower(): v for k, v in meta.get("HTTPHeaders", {}).items()}
    said = f"{code}: {message}" if code else message
    key = code.lower()
    if key in _RATE_LIMITED or (status == 429 and key not in _TRANSIENT):
        return ModelRateLimited(
            f"Bedrock is throttling requests to {where.model_id!r} ({said})",
            provider=PROVIDER,
            status=status,
            retry_after_s=retry_after_from_headers(headers),
        )
    if key in _TRANSIENT or (status is not None and (status >= 500 or status == 408)):
        return ModelServerError(
            f"Bedrock could not answer for {where.model_id!r} right now ({said})",
            provider=PROVIDER,
            status=status,
            retry_after_s=retry_after_from_headers(headers),
        )
    if key in AUTH_ERROR_CODES or status in (401, 403):
        return ModelAuthError(
            f"Bedrock refused the request ({said}). Check the AWS credentials "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE or the "
            f"instance role, and that they have not expired), the region ({where.region}), and "
            f"that access to model {where.model_id!r} is granted in the Bedrock console for "
            "that region.",
            provider=PROVIDER,
            status=status,
        )
    if key in _BAD_REQUEST or (status is not None and 400 <= status < 500):
        return ModelBadRequest(
            f"Bedrock rejected the request for {where.model_id!r} ({said})",
            provider=PROVIDER,
            status=status,
        )
    return ModelError(f"Bedrock error for {where.model_id!r} ({said})", provider=PROVIDER)


def _model_error(exc: Exception, where: _Where) -> ModelError:
    """One of the SDK's exceptions, in openptc's words (which say what to do about it)."""
    if isinstance(exc, ClientError):
        return _client_error(exc, where)
    if isinstance(exc, CREDENTIAL_ERRORS):
        return ModelAuthError(
            f"no usable AWS credentials ({exc}). Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or AWS_BEARER_TOKEN_BEDROCK), or run where an "
            "instance or task role applies.",
            provider=PROVIDER,
        )
    if isinstance(exc, NoRegionError):
        return ModelError(
            "no AWS region for Bedrock: set AWS_REGION or AWS_DEFAULT_REGION (or region in "
            "~/.aws/config for your profile), or pass region=...",
            provider=PROVIDER,
        )
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return ModelConnectionError(
            f"could not reach Bedrock at {where.endpoint} ({redact_urls_in(str(exc))})",
            provider=PROVIDER,
        )
    if isinstance(exc, ParamValidationError):
        return ModelBadRequest(f"invalid Bedrock request: {exc}", provider=PROVIDER)
    if isinstance(exc, ParserError):
        return ModelServerError(
            f"corrupt event stream from {where.endpoint} ({exc})", provider=PROVIDER, status=None
        )
    return ModelError(f"Bedrock call failed: {redact_urls_in(str(exc))}", provider=PROVIDER)


# --- models ------------------------------------------------------------------------------------


def _next(events: Iterator[Any]) -> Any:
    return next(events, None)


class _BedrockModel:
    """What Converse and InvokeModel share: the client, the thread hop, errors, retries."""

    prefix = "bedrock"
    api = "Converse"

    def __init__(
        self,
        model_id: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        client: BedrockRuntimeClient | None = None,
        retry: RetryPolicy | None = None,
        read_timeout_s: float = 600,
        connect_timeout_s: float = 10,
    ) -> None:
        self.model_id = model_id
        self._clients = LazyClient(
            "bedrock-runtime",
            client=client,
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            read_timeout_s=read_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
        self._retry = retry or RetryPolicy()

    @property
    def name(self) -> str:
        return f"{self.prefix}:{self.model_id}"

    @property
    def label(self) -> str:
        return f"Amazon Bedrock {self.api}: {self.model_id}"

    def client(self) -> BedrockRuntimeClient:
        """The boto3 client, created on first use (reading AWS configuration is blocking I/O)."""
        client: BedrockRuntimeClient = self._clients.get()
        return client

    def _where(self) -> _Where:
        if self._clients.made is not None:
            meta = self._clients.made.meta
            return _Where(self.model_id, redact_url(meta.endpoint_url), meta.region_name)
        region = self._clients.region or "from your AWS configuration"
        endpoint_url = self._clients.endpoint_url
        endpoint = redact_url(endpoint_url) if endpoint_url else None
        return _Where(self.model_id, endpoint or f"Bedrock in {region}", region)

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        shown = ShownText(on_text) if on_text is not None else None

        async def attempt() -> ModelResponse:
            try:
                if shown is None:
                    return await asyncio.to_thread(self._complete, request)
                return await self._stream(request, shown)
            except _SDK_ERRORS as exc:
                raise _model_error(exc, self._where()) from exc

        return await with_retries(attempt, self._retry, shown=shown)

    async def _stream(self, request: ModelRequest, on_text: TextSink) -> ModelResponse:
        events = await asyncio.to_thread(self._open_stream, request)
        iterator, turn = iter(events), self._turn()
        try:
            # One thread hop per event, so on_text runs on the event loop and may raise.
            while (event := await asyncio.to_thread(_next, iterator)) is not None:
                text = turn.add(event)
                if text:
                    on_text(text)
        finally:
            events.close()
        if not turn.finished:  # a dropped connection is not a finished answer
            raise ModelServerError(
                f"Bedrock ({self._where().endpoint}): the stream for {self.model_id!r} ended "
                "before the response was complete",
                provider=PROVIDER,
                status=None,
            )
        return turn.response(self.model_id)

    # What each API does differently.
    def _complete(self, request: ModelRequest) -> ModelResponse:
        raise NotImplementedError

    def _open_stream(self, request: ModelRequest) -> Any:
        raise NotImplementedError

    def _turn(self) -> _Turn:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r})"


class BedrockConverseModel(_BedrockModel):
    """Any Bedrock model through the provider-neutral Converse API (streamed with on_text)."""

    def _complete(self, request: ModelRequest) -> ModelResponse:
        response = self.client().converse(**converse_request(self.model_id, request))
        return converse_response(response, self.model_id)

    def _open_stream(self, request: ModelRequest) -> Any:
        return self.client().converse_stream(**converse_request(self.model_id, request))["stream"]

    def _turn(self) -> _Turn:
        return _ConverseTurn()


class BedrockInvokeModel(_BedrockModel):
    """An Anthropic model through InvokeModel with the native Messages body."""

    prefix = "bedrock-invoke"
    api = "InvokeModel"

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "body": json.dumps(invoke_body(request)).encode(),
            "contentType": "application/json",
            "accept": "application/json",
        }

    def _complete(self, request: ModelRequest) -> ModelResponse:
        response = self.client().invoke_model(**self._body(request))
        return anthropic_response(json.loads(response["body"].read()), self.model_id)

    def _open_stream(self, request: ModelRequest) -> Any:
        return self.client().invoke_model_with_response_stream(**self._body(request))["body"]

    def _turn(self) -> _Turn:
        return _InvokeTurn()


__all__ = [
    "ANTHROPIC_VERSION",
    "BedrockConverseModel",
    "BedrockInvokeModel",
    "anthropic_response",
    "converse_request",
    "converse_response",
    "invoke_body",
]
