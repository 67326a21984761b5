"""A wire-faithful Amazon Bedrock Runtime for the real boto3 client (REST-JSON protocol).

Serves ``POST /model/{modelId}/converse``, ``/converse-stream`` (AWS event-stream binary
framing), ``/invoke`` and ``/invoke-with-response-stream`` (Anthropic body in, Anthropic message
or Anthropic stream events out). It checks that requests are SigV4-signed for the ``bedrock``
service, validates what real Bedrock validates and the adapter could get wrong, and answers in
AWS's error shape (``x-amzn-errortype`` header, ``{"message": ...}`` body), which is how
botocore finds ``Error.Code``.

The wire is read into normalized types by this module's own small parser, never by the adapter's
mapping, so a mapping bug on one side cannot hide behind the same bug on the other. Usage is
counted with ``openptc.models.tokens``, as a provider counts its own tokens.
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openptc.models import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    Policy,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    count_response_tokens,
)
from openptc.models.tokens import count_message_tokens, count_spec_tokens, count_text

from .anthropic_server import parse_block
from .harness import Fault, Recorder

EVENT_STREAM = "application/vnd.amazon.eventstream"
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
SIGV4_PREFIX = "AWS4-HMAC-SHA256 Credential="
CUT = "cut"
"""A stream fault: the stream just ends after the first text delta, without its last event."""
CUT_BEFORE_TEXT = "cut-before-text"
"""A stream fault: the stream just ends after its first event, before any text."""
ANTHROPIC_KEYS = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "system",
        "messages",
        "tools",
        "tool_choice",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "thinking",
    }
)


# --- the event-stream encoding -----------------------------------------------------------------


def _header(name: str, value: str) -> bytes:
    """One header of type 7 (string): name length (u8), name, type, value length (u16), value."""
    key, text = name.encode(), value.encode()
    return struct.pack(">B", len(key)) + key + b"\x07" + struct.pack(">H", len(text)) + text


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32 of the two),
    headers, payload, then the CRC32 of everything before it."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def encode_event(event_type: str, body: dict[str, Any]) -> bytes:
    # AWS pads every event with a "p" field so that lengths do not leak content; clients ignore it.
    payload = json.dumps({**body, "p": "abcdefghijklmnopqrstuvwxyzABCDEF"[: 1 + len(body) * 7]})
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, payload.encode())


def encode_exception(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())


def aws_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Fault:
    """An error as Bedrock sends it; usable as a recorder fault."""
    wire_headers = {"x-amzn-errortype": f"{code}:{ERROR_NAMESPACE}", **(headers or {})}
    return Fault(status, {"message": message}, wire_headers)


class _Invalid(Exception):
    """The request breaks a rule Bedrock enforces: answered with 400 ValidationException."""


# --- wire -> normalized (this module's own reading) ---------------------------------------------


def _converse_block(block: dict[str, Any]) -> Block:
    if "text" in block:
        return TextBlock(block["text"])
    if "toolUse" in block:
        use = block["toolUse"]
        if not isinstance(use.get("input"), dict):
            raise _Invalid("The value at toolUse.input must be a JSON object.")
        return ToolUseBlock(use["toolUseId"], use["name"], use["input"])
    if "toolResult" in block:
        result = block["toolResult"]
        parts = [c["text"] if "text" in c else json.dumps(c["json"]) for c in result["content"]]
        return ToolResultBlock(result["toolUseId"], "".join(parts), result.get("status") == "error")
    raise _Invalid(f"Unsupported content block: {sorted(block)}")


def _check_turns(messages: tuple[Message, ...], tools_declared: bool) -> None:
    if not messages or messages[0].role != "user":
        raise _Invalid(
            "A conversation must start with a user message. Try again with a conversation that "
            "starts with a user message."
        )
    for i, (before, after) in enumerate(itertools.pairwise(messages), start=1):
        if before.role == after.role:
            raise _Invalid(
                f"A conversation must alternate between user and assistant roles (messages.{i})."
            )
        asked = {u.id for u in before.tool_uses}
        unknown = [r.tool_use_id for r in after.results if r.tool_use_id not in asked]
        if unknown:
            raise _Invalid(
                f"The toolResult blocks at messages.{i}.content answer toolUse ids {unknown} "
                "that the previous turn did not use."
            )
    if not tools_declared and any(m.tool_uses or m.results for m in messages):
        raise _Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )


def read_converse(body: dict[str, Any]) -> ModelRequest:
    """A Converse request body, normalized."""
    system = "\n".join(b["text"] for b in body.get("system", []) if "text" in b)
    messages = tuple(
        Message(m["role"], tuple(_converse_block(b) for b in m["content"]))
        for m in body.get("messages", [])
    )
    tools = tuple(
        ToolSpec(
            t["toolSpec"]["name"],
            t["toolSpec"].get("description", ""),
            t["toolSpec"]["inputSchema"]["json"],
        )
        for t in body.get("toolConfig", {}).get("tools", [])
        if "toolSpec" in t
    )
    _check_turns(messages, "toolConfig" in body)
    return ModelRequest(
        system, messages, tools, body.get("inferenceConfig", {}).get("maxTokens", 0)
    )


def _anthropic_block(block: dict[str, Any]) -> Block:
    try:
        return parse_block(block)
    except ValueError:
        raise _Invalid(f"messages: unsupported content type {block.get('type')!r}") from None


def read_anthropic(body: dict[str, Any]) -> ModelRequest:
    """An InvokeModel body for an Anthropic model, checked as Bedrock checks it, normalized."""
    for key in body:
        if key not in ANTHROPIC_KEYS:
            raise _Invalid(
                f"Malformed input request: #: extraneous key [{key}] is not permitted, please "
                "reformat your input and try again."
            )
    for key in ("anthropic_version", "max_tokens", "messages"):
        if key not in body:
            raise _Invalid(
                f"Malformed input request: #: required key [{key}] not found, please reformat "
                "your input and try again."
            )
    if body["anthropic_version"] != "bedrock-2023-05-31":
        raise _Invalid(f"invalid anthropic_version: {body['anthropic_version']!r}")
    messages = []
    for m in body["messages"]:
        content = m["content"]
        blocks = (
            (TextBlock(content),)
            if isinstance(content, str)
            else tuple(_anthropic_block(b) for b in content)
        )
        messages.append(Message(m["role"], blocks))
    tools = tuple(
        ToolSpec(t["name"], t.get("description", ""), t["input_schema"])
        for t in body.get("tools", [])
    )
    if not tools and any(m.tool_uses or m.results for m in messages):
        raise _Invalid(
            "Requests which include `tool_use` or `tool_result` blocks must define tools."
        )
    _check_turns(tuple(messages), tools_declared=True)
    system = body.get("system", "")
    if isinstance(system, list):
        system = "\n".join(b.get("text", "") for b in system)
    return ModelRequest(system, tuple(messages), tools, body["max_tokens"])


# --- normalized -> wire --------------------------------------------------------------------------


@dataclass
class TokenMeter:
    """Input tokens exactly as ``count_request_tokens`` counts them, each message tokenized once
    (a direct-mode run re-sends thousands of records on every call)."""

    seen: dict[str, int] = field(default_factory=dict)

    def input_tokens(self, request: ModelRequest) -> int:
        fixed = count_text(request.system) + sum(count_spec_tokens(t) for t in request.tools)
        return fixed + sum(self._message(m) for m in request.messages)

    def _message(self, message: Message) -> int:
        key = repr(message)
        if key not in self.seen:
            self.seen[key] = count_message_tokens(message)
        return self.seen[key]


@dataclass(frozen=True)
class _Answer:
    """The brain's turn with what a provider would bill for it."""

    blocks: tuple[Block, ...]
    stop: str
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int


def _pieces(text: str, size: int = 12) -> Iterator[str]:
    """Text in small pieces, as a model streams it."""
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _converse_usage(answer: _Answer) -> dict[str, int]:
    usage = {
        "inputTokens": answer.input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens
        + answer.output_tokens
        + answer.cache_read
        + answer.cache_write,
    }
    if answer.cache_read or answer.cache_write:
        usage["cacheReadInputTokens"] = answer.cache_read
        usage["cacheWriteInputTokens"] = answer.cache_write
    return usage


def _anthropic_usage(answer: _Answer) -> dict[str, int]:
    return {
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "cache_creation_input_tokens": answer.cache_write,
        "cache_read_input_tokens": answer.cache_read,
    }


@dataclass
class _Fake:
    brain: Policy
    recorder: Recorder
    rejected_key_id: str
    malformed_tool_inputs: int
    cache_read_tokens: int
    cache_write_tokens: int
    stream_faults: list[str] = field(default_factory=list)
    meter: TokenMeter = field(default_factory=TokenMeter)

    # -- the gate every request passes --

    def _refused(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith(SIGV4_PREFIX) or "x-amz-date" not in request.headers:
            return aws_error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            ).response()
        key_id, _, scope = auth[len(SIGV4_PREFIX) :].split(",")[0].partition("/")
        if key_id == self.rejected_key_id:
            return aws_error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ).response()
        if scope.split("/")[2:3] != ["bedrock"]:
            return aws_error(
                403,
                "InvalidSignatureException",
                "Credential should be scoped to correct service: 'bedrock'.",
            ).response()
        return None

    async def _admit(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        body = await self.recorder.record(request)
        refused = self.recorder.next_fault() or self._refused(request)
        return body, refused

    def _answer(self, request: ModelRequest) -> _Answer:
        turn = self.brain(request)
        if isinstance(turn, ModelResponse):
            blocks = turn.content
        elif isinstance(turn, str):
            blocks = (TextBlock(turn),)
        else:
            blocks = tuple(turn)
        stop = "tool_use" if any(isinstance(b, ToolUseBlock) for b in blocks) else "end_turn"
        billed = self.meter.input_tokens(request)
        read = min(self.cache_read_tokens, billed)
        write = min(self.cache_write_tokens, billed - read)
        output = count_response_tokens(ModelResponse(blocks, "end_turn", None, "fake"))
        return _Answer(blocks, stop, billed - read - write, output, read, write)

    def _converse_content(self, answer: _Answer) -> tuple[list[dict[str, Any]], str]:
        content: list[dict[str, Any]] = []
        stop = answer.stop
        for block in answer.blocks:
            if isinstance(block, TextBlock):
                content.append({"text": block.text})
            elif isinstance(block, ToolUseBlock):
                tool_input: Any = block.input
                if self.malformed_tool_inputs > 0:  # the model's JSON broke off half way
                    self.malformed_tool_inputs -= 1
                    text = json.dumps(block.input)
                    tool_input, stop = text[: len(text) // 2], "malformed_tool_use"
                content.append(
                    {"toolUse": {"toolUseId": block.id, "name": block.name, "input": tool_input}}
                )
        return content, stop

    # -- Converse --

    async def converse(self, request: Request) -> Response:
        body, refused = await self._admit(request)
        if refused is not None:
            return refused
        try:
            answer = self._answer(read_converse(body or {}))
        except _Invalid as exc:
            return aws_error(400, "ValidationException", str(exc)).response()
        content, stop = self._converse_content(answer)
        return JSONResponse(
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop,
                "usage": _converse_usage(answer),
                "metrics": {"latencyMs": 42},
            },
            headers={"x-amzn-requestid": str(uuid.uuid4())},
        )

    async def converse_stream(self, request: Request) -> Response:
        body, refused = await self._admit(request)
        if refused is not None:
            return refused
        try:
            answer = self._answer(read_converse(body or {}))
        except _Invalid as exc:
            return aws_error(400, "ValidationException", str(exc)).response()
        content, stop = self._converse_content(answer)
        fault = self.stream_faults.pop(0) if self.stream_faults else None

        async def events() -> AsyncIterator[bytes]:
            yield encode_event("messageStart", {"role": "assistant"})
            if fault == CUT_BEFORE_TEXT:
                return
            for i, block in enumerate(content):
                if "toolUse" in block:
                    use = block["toolUse"]
                    start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
                    yield encode_event(
                        "contentBlockStart", {"start": start, "contentBlockIndex": i}
                    )
                    raw = use["input"]
                    for piece in _pieces(raw if isinstance(raw, str) else json.dumps(raw)):
                        delta = {"toolUse": {"input": piece}}
                        yield encode_event(
                            "contentBlockDelta", {"delta": delta, "contentBlockIndex": i}
                        )
                else:
                    for piece in _pieces(block["text"]):
                        yield encode_event(
                            "contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": i}
                        )
                        if fault is not None:  # the stream breaks after text was sent
                            if fault != CUT:
                                yield encode_exception(fault, "Stream interrupted by the fake.")
                            return
                yield encode_event("contentBlockStop", {"contentBlockIndex": i})
            yield encode_event("messageStop", {"stopReason": stop})
            yield encode_event(
                "metadata", {"usage": _converse_usage(answer), "metrics": {"latencyMs": 42}}
            )

        return StreamingResponse(
            events(), media_type=EVENT_STREAM, headers={"x-amzn-requestid": str(uuid.uuid4())}
        )

    # -- InvokeModel --

    def _message(self, answer: _Answer, model_id: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        for block in answer.blocks:
            if isinstance(block, TextBlock):
                content.append({"type": "text", "text": block.text})
            elif isinstance(block, ToolUseBlock):
                content.append(
                    {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
                )
        return {
            "id": f"msg_bdrk_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model_id.removeprefix("anthropic.").split(":")[0],
            "content": content,
            "stop_reason": answer.stop,
            "stop_sequence": None,
            "usage": _anthropic_usage(answer),
        }

    async def _invoke_answer(self, request: Request) -> tuple[_Answer | None, Response | None]:
        body, refused = await self._admit(request)
        if refused is not None:
            return None, refused
        if request.headers.get("content-type") != "application/json":
            return None, aws_error(
                400, "ValidationException", "Content-Type must be JSON"
            ).response()
        try:
            return self._answer(read_anthropic(body or {})), None
        except _Invalid as exc:
            return None, aws_error(400, "ValidationException", str(exc)).response()

    async def invoke(self, request: Request) -> Response:
        answer, refused = await self._invoke_answer(request)
        if answer is None:
            assert refused is not None
            return refused
        return JSONResponse(
            self._message(answer, request.path_params["model_id"]),
            headers={
                "x-amzn-requestid": str(uuid.uuid4()),
                "x-amzn-bedrock-input-token-count": str(answer.input_tokens),
                "x-amzn-bedrock-output-token-count": str(answer.output_tokens),
            },
        )

    async def invoke_stream(self, request: Request) -> Response:
        answer, refused = await self._invoke_answer(request)
        if answer is None:
            assert refused is not None
            return refused
        message = self._message(answer, request.path_params["model_id"])
        fault = self.stream_faults.pop(0) if self.stream_faults else None

        def chunk(data: dict[str, Any]) -> bytes:
            encoded = base64.b64encode(json.dumps(data).encode()).decode()
            return encode_event("chunk", {"bytes": encoded})

        async def events() -> AsyncIterator[bytes]:
            usage = message["usage"]
            start = {**message, "content": [], "stop_reason": None}
            start["usage"] = {**usage, "output_tokens": 1}
            yield chunk({"type": "message_start", "message": start})
            if fault == CUT_BEFORE_TEXT:
                return
            for i, block in enumerate(message["content"]):
                if block["type"] == "text":
                    yield chunk(
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {"type": "text", "text": ""},
                        }
                    )
                    for piece in _pieces(block["text"]):
                        delta = {"type": "text_delta", "text": piece}
                        yield chunk({"type": "content_block_delta", "index": i, "delta": delta})
                        if fault is not None:  # the stream breaks after text was sent
                            if fault != CUT:
                                yield encode_exception(fault, "Stream interrupted by the fake.")
                            return
                else:
                    opened = {**block, "input": {}}
                    yield chunk(
                        {"type": "content_block_start", "index": i, "content_block": opened}
                    )
                    for piece in _pieces(json.dumps(block["input"])):
                        delta = {"type": "input_json_delta", "partial_json": piece}
                        yield chunk({"type": "content_block_delta", "index": i, "delta": delta})
                yield chunk({"type": "content_block_stop", "index": i})
            yield chunk(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                }
            )
            metrics = {
                "inputTokenCount": usage["input_tokens"],
                "outputTokenCount": usage["output_tokens"],
                "invocationLatency": 42,
                "firstByteLatency": 7,
            }
            yield chunk({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics})

        return StreamingResponse(
            events(), media_type=EVENT_STREAM, headers={"x-amzn-requestid": str(uuid.uuid4())}
        )


def bedrock_app(
    brain: Policy,
    recorder: Recorder,
    *,
    rejected_key_id: str = "AKIDREVOKED",
    malformed_tool_inputs: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    stream_faults: list[str] | None = None,
) -> Starlette:
    """The fake Bedrock Runtime answering with ``brain``.

    ``rejected_key_id``: an access key id answered with 403 UnrecognizedClientException.
    ``malformed_tool_inputs``: how many tool uses (Converse only) come back with their JSON input
    broken off half way, as a string, with stopReason ``malformed_tool_use``.
    ``cache_*_tokens``: that many of each request's input tokens are reported as cache reads or
    writes. ``stream_faults``: one per streamed response (ConverseStream or
    InvokeModelWithResponseStream), an exception event type (``"throttlingException"``) sent
    right after the first text delta; or ``CUT`` (the stream ends there, without
    ``messageStop``/``message_stop``) or ``CUT_BEFORE_TEXT`` (it ends after its first event).
    """
    fake = _Fake(
        brain,
        recorder,
        rejected_key_id,
        malformed_tool_inputs,
        cache_read_tokens,
        cache_write_tokens,
        stream_faults if stream_faults is not None else [],
    )
    return Starlette(
        routes=[
            Route("/model/{model_id:path}/converse", fake.converse, methods=["POST"]),
            Route("/model/{model_id:path}/converse-stream", fake.converse_stream, methods=["POST"]),
            Route("/model/{model_id:path}/invoke", fake.invoke, methods=["POST"]),
            Route(
                "/model/{model_id:path}/invoke-with-response-stream",
                fake.invoke_stream,
                methods=["POST"],
            ),
        ]
    )
