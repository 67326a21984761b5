"""What Bedrock's Converse and InvokeModel adapters share: client, threads, errors, stop reasons.

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
  tools named there, as inert placeholders (``offered_tools``);
- ``stop_sequence`` -> stop_sequence, ``model_context_window_exceeded`` -> max_tokens,
  ``guardrail_intervened``/``content_filtered`` -> refusal; ``malformed_tool_use`` and
  ``malformed_model_output`` -> tool_use when a tool use came back (its input error is fed back),
  else a retryable ``ModelServerError``: the text would be a broken answer, a new sample may not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    ModelRequest,
    ModelResponse,
    StopReason,
    TextSink,
    ToolSpec,
    ToolUseBlock,
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

FILTERED_STOPS = frozenset({"guardrail_intervened", "content_filtered"})
MALFORMED_STOPS = frozenset({"malformed_tool_use", "malformed_model_output"})

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


# --- requests and responses --------------------------------------------------------------------


def offered_tools(request: ModelRequest) -> tuple[ToolSpec, ...]:
    """The request's tools, or placeholders for the tools its history used when it has none."""
    if request.tools:
        return request.tools
    used = dict.fromkeys(u.name for m in request.messages for u in m.tool_uses)
    note = "Not available in this conversation any more."
    return tuple(ToolSpec(name, note, {"type": "object"}) for name in used)


def stop_reason(reason: str | None, blocks: Sequence[Block]) -> StopReason:
    """Bedrock's own stop reasons first, then Anthropic's (which Converse's names follow)."""
    if reason in FILTERED_STOPS:
        return "refusal"
    if reason in MALFORMED_STOPS:
        if any(isinstance(b, ToolUseBlock) for b in blocks):
            return "tool_use"
        raise ModelServerError(
            f"the model's output could not be read by Bedrock (stopReason {reason!r}) and no "
            "tool call came back; asking again",
            provider=PROVIDER,
            status=None,
        )
    return anthropic_wire.stop_reason(reason, blocks)


@dataclass(frozen=True)
class Call:
    """One request in the API's words, made once before the first attempt: a setting the
    model cannot take fails there, before anything is sent, and is not retried."""

    kwargs: dict[str, Any]
    request: ModelRequest


class TurnBuilder(Protocol):
    """A streamed response being put together from its events."""

    finished: bool
    """Set by the stream's last event (``messageStop``, ``message_stop``): the answer is whole."""

    def add(self, event: Mapping[str, Any]) -> str:
        """Take in one event; returns the text it carried (empty if none)."""
        ...

    def response(self, model: str | None = None) -> ModelResponse: ...


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


# --- the model ---------------------------------------------------------------------------------


def _next(events: Iterator[Any]) -> Any:
    return next(events, None)


class BedrockModelBase:
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
        call = Call(self._prepare(request), request)

        async def attempt() -> ModelResponse:
            try:
                if shown is None:
                    return await asyncio.to_thread(self._complete, call)
                return await self._stream(call, shown)
            except _SDK_ERRORS as exc:
                raise _model_error(exc, self._where()) from exc

        return await with_retries(attempt, self._retry, shown=shown)

    async def _stream(self, call: Call, on_text: TextSink) -> ModelResponse:
        events = await asyncio.to_thread(self._open_stream, call)
        iterator, turn = iter(events), self._turn(call)
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
    def _prepare(self, request: ModelRequest) -> dict[str, Any]:
        """The call's keyword arguments; raises ``UnsupportedSetting`` for what the model
        cannot take."""
        raise NotImplementedError

    def _complete(self, call: Call) -> ModelResponse:
        raise NotImplementedError

    def _open_stream(self, call: Call) -> Any:
        raise NotImplementedError

    def _turn(self, call: Call) -> TurnBuilder:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the boto3 client this model made (its connection pool); one passed in is
        borrowed."""
        self._clients.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r})"


__all__ = [
    "FILTERED_STOPS",
    "MALFORMED_STOPS",
    "PROVIDER",
    "BedrockModelBase",
    "Call",
    "TurnBuilder",
    "offered_tools",
    "stop_reason",
]
