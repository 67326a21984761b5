"""A fake of the Anthropic Messages API, faithful on the wire, for the real ``anthropic`` SDK.

``POST /v1/messages`` (also ``?beta=true``): authentication by ``x-api-key`` or ``Authorization:
Bearer``, the validation errors the real API gives for the mistakes an adapter could make, JSON
replies and SSE streams in the shape and order the SDK parses. Requests are read with this
module's own small parser, never the adapter's mapping code, so the two check each other.

A brain decides the answers. A ``ToolUseBlock`` with ``raw_input`` in its turn is sent as a
malformed call: its raw text as the streamed ``input_json_delta``, or as a non-object ``input``
when not streaming (what a broken compatible server does).

With thinking on, every answer opens with a signed thinking block (and a redacted_thinking
block when asked to), and the thinking a tool loop needs must come back unchanged
(``anthropic_thinking``). Usage honours ``cache_control`` marks (``anthropic_cache``). A stop
sequence in the brain's text cuts it there, as the model would have stopped.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.scripted import Policy, Turn

from .anthropic_cache import Meter
from .anthropic_thinking import Signer, thinking_on, thinking_problem, thoughts
from .harness import Fault, Recorder

FAKE_API_KEY = "sk-ant-fake-key-for-tests"
MAX_CACHE_MARKS = 4
Json = dict[str, Any]


def error_body(kind: str, message: str) -> Json:
    """Anthropic's error envelope."""
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": _id("req_"),
    }


def error_fault(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> Fault:
    return Fault(status, error_body(kind, message), headers or {})


@dataclass(frozen=True)
class MidStreamFault(Fault):
    """A 200 stream that starts a message, streams ``text`` (if any), then an ``error`` event
    with ``body``; an empty ``body`` ends the stream there instead, without ``message_stop``."""

    text: str = ""

    def response(self) -> Response:
        async def events() -> AsyncIterator[str]:
            yield _sse("message_start", {"type": "message_start", "message": _start(_message())})
            if self.text:
                yield _partial_text_block(0, self.text)
            if self.body:
                yield _sse("error", self.body)

        return StreamingResponse(events(), media_type="text/event-stream")


def _partial_text_block(index: int, text: str) -> str:
    """A text block that starts and gets one delta, but never stops."""
    start = {"type": "content_block_start", "index": index, "content_block": _text_json("")}
    delta = {"type": "text_delta", "text": text}
    return _sse("content_block_start", start) + _sse(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def anthropic_app(
    brain: Policy,
    recorder: Recorder,
    *,
    api_key: str = FAKE_API_KEY,
    redacted_thinking: bool = False,
    signer: Signer | None = None,
) -> Starlette:
    """The fake as an app. ``redacted_thinking``: with thinking on, each answer's thinking also
    holds a ``redacted_thinking`` block, as when the API's safety systems encrypt part of it."""
    meter = Meter()
    signer = signer or Signer()

    async def messages(request: Request) -> Response:
        body = await recorder.record(request)
        fault = recorder.next_fault()
        if fault is not None:
            return fault
        if not _authorized(request, api_key):
            return _error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        beta = request.headers.get("anthropic-beta", "")
        problem = _invalid(body) or thinking_problem(body, beta, signer)
        if problem is not None:
            return _error(400, "invalid_request_error", problem)
        normalized = parse_request(body)
        try:
            content, stop = _turn(brain(normalized))
        except Exception as exc:  # the brain's failure is the "model's": a 500 that says why
            return _error(500, "api_error", f"fake brain failed: {exc!r}")
        content, stop, stopped_at = _stop_at_sequence(content, stop, body.get("stop_sequences"))
        if thinking_on(body):
            thought = thoughts(normalized, content)
            extra = (signer.redacted(thought),) if redacted_thinking else ()
            content = (signer.thinking(thought), *extra, *content)
        usage = meter.usage(normalized, content, body)
        stream = bool(body.get("stream"))
        message = _message(body["model"], content, stop, usage, stream=stream)
        message["stop_sequence"] = stopped_at
        headers = {"request-id": _id("req_")}
        if stream:
            return StreamingResponse(
                _stream(message, content), media_type="text/event-stream", headers=headers
            )
        return JSONResponse(message, headers=headers)

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


# --- auth and validation ------------------------------------------------------------------


def _authorized(request: Request, api_key: str) -> bool:
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    return api_key in (request.headers.get("x-api-key"), bearer)


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse(error_body(kind, message), status_code=status)


def _invalid(body: Any) -> str | None:
    """The first problem the real API would report, in its words; None if the body is fine."""
    if not isinstance(body, dict):
        return "Input should be a valid dictionary"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    for k, spec in enumerate(body.get("tools", [])):
        for name in ("name", "input_schema"):
            if name not in spec:
                return f"tools.{k}.custom.{name}: Field required"
    for key in body.get("metadata") or {}:
        if key != "user_id":
            return f"metadata.{key}: Extra inputs are not permitted"
    marks = json.dumps(body).count('"cache_control"')
    if marks > MAX_CACHE_MARKS:
        return (
            f"A maximum of {MAX_CACHE_MARKS} blocks with cache_control may be provided. "
            f"Found {marks}."
        )
    return _invalid_messages(body["messages"], bool(body.get("tools")))


def _invalid_messages(messages: list[Json], has_tools: bool) -> str | None:
    if not messages:
        return "messages: at least one message is required"
    if messages[0]["role"] != "user":
        return 'messages: first message must use the "user" role'
    pending: set[str] = set()  # tool_use ids of the previous assistant turn
    for i, message in enumerate(messages):
        role = message["role"]
        if i and role == messages[i - 1]["role"]:
            return (
                'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row'
            )
        blocks = _blocks(message["content"])
        answered: set[str] = set()
        for j, block in enumerate(blocks):
            where = f"messages.{i}.content.{j}"
            kind = block.get("type")
            if kind in ("tool_use", "tool_result") and not has_tools:
                return (
                    "Requests which include `tool_use` or `tool_result` blocks must define tools."
                )
            if kind == "text" and not block.get("text"):
                return f"{where}.text: text content blocks must be non-empty"
            if kind in ("thinking", "redacted_thinking") and "cache_control" in block:
                return f"{where}.{kind}.cache_control: Extra inputs are not permitted"
            if kind == "tool_use" and not isinstance(block.get("input"), dict):
                return f"{where}.tool_use.input: Input should be a valid dictionary"
            if kind == "tool_result":
                if block.get("tool_use_id") not in pending:
                    return (
                        f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )
                answered.add(block["tool_use_id"])
        if role == "user" and pending - answered:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(pending - answered))}. Each `tool_use` "
                "block must have a corresponding `tool_result` block in the next message."
            )
        pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    return None


def _blocks(content: str | list[Json]) -> list[Json]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


# --- wire request -> normalized request ---------------------------------------------------


def parse_request(body: Json) -> ModelRequest:
    """The wire request in normalized form, as the brain (a stand-in for the model) reads it."""
    system = body.get("system", "")
    if isinstance(system, list):
        system = "".join(b["text"] for b in system)
    messages = tuple(
        Message(m["role"], tuple(parse_block(b) for b in _blocks(m["content"])))
        for m in body["messages"]
    )
    tools = tuple(
        ToolSpec(t["name"], t.get("description", ""), t["input_schema"])
        for t in body.get("tools", [])
    )
    return ModelRequest(system, messages, tools, body["max_tokens"])


def parse_block(block: Json) -> Block:
    """One content block of a Messages request (also what Bedrock InvokeModel carries)."""
    kind = block["type"]
    if kind == "text":
        return TextBlock(block["text"])
    if kind == "tool_use":
        return ToolUseBlock(block["id"], block["name"], block["input"])
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        return ToolResultBlock(block["tool_use_id"], content, bool(block.get("is_error")))
    if kind == "thinking":
        return ReasoningBlock(block["thinking"], "anthropic", signature=block.get("signature"))
    if kind == "redacted_thinking":
        return ReasoningBlock("", "anthropic", redacted=block["data"])
    raise ValueError(f"the fake does not know content blocks of type {kind!r}")


# --- brain's turn -> wire response --------------------------------------------------------


def _turn(turn: Turn) -> tuple[tuple[Block, ...], StopReason]:
    if isinstance(turn, ModelResponse):
        return turn.content, turn.stop_reason
    blocks: Sequence[Block] = [TextBlock(turn)] if isinstance(turn, str) else turn
    stop: StopReason = (
        "tool_use" if any(isinstance(b, ToolUseBlock) for b in blocks) else "end_turn"
    )
    return tuple(blocks), stop


def _stop_at_sequence(
    content: tuple[Block, ...], stop: StopReason, sequences: list[str] | None
) -> tuple[tuple[Block, ...], StopReason, str | None]:
    """The turn as the model would have stopped it: at the first stop sequence in its text,
    which is left out, with everything after it."""
    for k, block in enumerate(content):
        if not isinstance(block, TextBlock):
            continue
        found = [(block.text.find(s), s) for s in sequences or () if s in block.text]
        if found:
            at, sequence = min(found)
            kept = (TextBlock(block.text[:at]),) if at else ()
            return (*content[:k], *kept), "stop_sequence", sequence
    return content, stop, None


def _message(
    model: str = "claude-fake",
    content: tuple[Block, ...] = (),
    stop: StopReason | None = None,
    usage: Json | None = None,
    *,
    stream: bool = False,
) -> Json:
    return {
        "id": _id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [_block_json(b, stream=stream) for b in content],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 1, "output_tokens": 1},
    }


def _block_json(block: Block, *, stream: bool) -> Json:
    if isinstance(block, TextBlock):
        return _text_json(block.text)
    if isinstance(block, ReasoningBlock):
        if block.redacted is not None:
            return {"type": "redacted_thinking", "data": block.redacted}
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    if not isinstance(block, ToolUseBlock):
        raise ValueError(f"a model turn cannot hold {type(block).__name__}")
    tool_id = block.id if block.id.startswith("toolu_") else f"toolu_{block.id}"
    arguments: Any = block.input
    if block.raw_input is not None:  # malformed: streamed as raw text, else a non-object input
        arguments = {} if stream else block.raw_input
    return {"type": "tool_use", "id": tool_id, "name": block.name, "input": arguments}


def _text_json(text: str) -> Json:
    return {"type": "text", "text": text}


def _start(message: Json) -> Json:
    usage = {**message["usage"], "output_tokens": 1}
    return {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}


async def _stream(message: Json, content: tuple[Block, ...]) -> AsyncIterator[str]:
    """The SSE events of one message, in the order the real API sends them."""
    yield _sse("message_start", {"type": "message_start", "message": _start(message)})
    yield _sse("ping", {"type": "ping"})
    for index, (block, wired) in enumerate(zip(content, message["content"], strict=True)):
        if isinstance(block, TextBlock):
            start = _text_json("")
            deltas = [{"type": "text_delta", "text": t} for t in _text_chunks(block.text)]
        elif isinstance(block, ReasoningBlock) and block.redacted is not None:
            start, deltas = wired, []  # arrives whole
        elif isinstance(block, ReasoningBlock):
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": t} for t in _text_chunks(block.text)]
            deltas.append({"type": "signature_delta", "signature": wired["signature"]})
        else:
            assert isinstance(block, ToolUseBlock)
            start = {**wired, "input": {}}
            raw = block.raw_input if block.raw_input is not None else json.dumps(block.input)
            parts = ["", *(raw[i : i + 40] for i in range(0, len(raw), 40))]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for delta in deltas:
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            yield _sse("content_block_delta", event)
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    ending = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    usage = {"output_tokens": message["usage"]["output_tokens"]}  # the rest kept from the start
    yield _sse("message_delta", {"type": "message_delta", "delta": ending, "usage": usage})
    yield _sse("message_stop", {"type": "message_stop"})


def _text_chunks(text: str) -> list[str]:
    """A few words per delta, as a model streams; joined they are exactly ``text``."""
    words = re.findall(r"\s*\S+\s*|\s+", text)
    return ["".join(words[i : i + 3]) for i in range(0, len(words), 3)] or [""]


def _sse(event: str, data: Json) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]
