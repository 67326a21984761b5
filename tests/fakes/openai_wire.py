"""The fake OpenAI API's own reading of the wire: request bodies to a normalized ``ModelRequest``.

A parser of its own, not the adapter's mapping (which is what is under test). Errors are raised
as ``WireError`` with the status, message and ``param`` OpenAI answers with. Also here: what the
chat and responses renderers share (ids, SSE framing, stream pieces).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from starlette.responses import StreamingResponse

from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ReasoningBlock,
    Role,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)


class WireError(Exception):
    """A request OpenAI would reject; ``param`` names the offending field."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.param, self.status, self.code, self.kind = param, status, code, kind


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> Any:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def new_id(prefix: str, n: int = 24) -> str:
    return prefix + secrets.token_hex(n)[:n]


def wire_call_id(brain_id: str) -> str:
    """A brain's tool-use id as OpenAI would spell it; stable, so transcripts compare equal."""
    if brain_id.startswith("call_"):
        return brain_id
    return "call_" + hashlib.sha256(brain_id.encode()).hexdigest()[:24]


def stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    """Chat's ``stop``: a string or a list of them."""
    stop = body.get("stop")
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


# --- wire -> normalized ---------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """Message content as text: a string, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def _parse_arguments(call_id: str, name: str, arguments: str) -> ToolUseBlock:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return ToolUseBlock(call_id, name, {}, raw_input=arguments, input_error="invalid JSON")
    if not isinstance(value, dict):
        return ToolUseBlock(call_id, name, {}, raw_input=arguments, input_error="not an object")
    return ToolUseBlock(call_id, name, value)


class _Conversation:
    """Builds normalized messages, merging consecutive blocks of one role into one message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.open_calls: set[str] = set()

    def add(self, role: str, block: Block) -> None:
        if role not in ("user", "assistant"):
            raise WireError(f"Invalid value: '{role}'. Supported values are: 'user', 'assistant'.")
        if isinstance(block, ToolUseBlock):
            self.open_calls.add(block.id)
        if isinstance(block, ToolResultBlock):
            if block.tool_use_id not in self.open_calls:
                raise WireError(
                    f"No tool call found for function call output with call_id "
                    f"{block.tool_use_id}.",
                    "input",
                )
            self.open_calls.discard(block.tool_use_id)
        last = self.messages[-1] if self.messages else None
        # Tool results and the user's words are separate turns for the brain, as in the agent.
        same_kind = last is not None and isinstance(block, ToolResultBlock) == bool(last.results)
        if last is not None and last.role == role and same_kind:
            self.messages[-1] = Message(last.role, (*last.content, block))
        else:
            self.messages.append(Message(cast(Role, role), (block,)))


def parse_chat(body: dict[str, Any]) -> ModelRequest:
    """A ``/v1/chat/completions`` body as a normalized request."""
    if not isinstance(body.get("model"), str):
        raise WireError("you must provide a model parameter", "model")
    system: list[str] = []
    talk = _Conversation()
    for index, m in enumerate(body.get("messages") or []):
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(m.get("content")))
        elif role == "tool":
            if m.get("tool_call_id") not in talk.open_calls:
                raise WireError(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            talk.add("user", ToolResultBlock(m["tool_call_id"], _text_of(m.get("content"))))
        elif role == "assistant":
            if thought := m.get("reasoning_content") or m.get("reasoning"):
                talk.add("assistant", ReasoningBlock(thought, "openai-chat"))
            if text := _text_of(m.get("content")):
                talk.add("assistant", TextBlock(text))
            for call in m.get("tool_calls") or []:
                function = call["function"]
                use = _parse_arguments(call["id"], function["name"], function["arguments"])
                talk.add("assistant", use)
        else:
            talk.add(role, TextBlock(_text_of(m.get("content"))))
    if not talk.messages:
        raise WireError("[] is too short - 'messages'", "messages")
    tools = tuple(
        ToolSpec(
            t["function"]["name"],
            t["function"].get("description", ""),
            t["function"].get("parameters", {}),
        )
        for t in body.get("tools") or []
    )
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 4096
    return ModelRequest("\n".join(system), tuple(talk.messages), tools, limit)


def parse_responses(body: dict[str, Any]) -> ModelRequest:
    """A ``/v1/responses`` body as a normalized request (reasoning items are checked apart)."""
    if not isinstance(body.get("model"), str):
        raise WireError("Missing required parameter: 'model'.", "model")
    items = body.get("input") or []
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    talk = _Conversation()
    system: list[str] = [body["instructions"]] if body.get("instructions") else []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("system", "developer"):
            system.append(_text_of(item.get("content")))
        elif kind == "message":
            talk.add(item.get("role"), TextBlock(_text_of(item.get("content"))))
        elif kind == "function_call":
            use = _parse_arguments(item["call_id"], item["name"], item["arguments"])
            talk.add("assistant", use)
        elif kind == "function_call_output":
            talk.add("user", ToolResultBlock(item["call_id"], _text_of(item.get("output"))))
        elif kind == "reasoning":
            for part in item.get("summary") or [{"text": ""}]:
                block = ReasoningBlock(part.get("text", ""), "openai-responses", id=item.get("id"))
                talk.add("assistant", block)
        else:
            raise WireError(f"Invalid value: '{kind}'.", "input")
    tools = tuple(
        ToolSpec(t["name"], t.get("description") or "", t.get("parameters") or {})
        for t in body.get("tools") or []
    )
    limit = body.get("max_output_tokens") or 4096
    return ModelRequest("\n".join(system), tuple(talk.messages), tools, limit)


# --- streams --------------------------------------------------------------------------------


def pieces(text: str, size: int = 0) -> list[str]:
    """Stream pieces: word by word for prose, fixed-size slices for JSON arguments."""
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return re.findall(r"\s*\S+|\s+", text)


def sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream(lines: Iterator[str], headers: dict[str, str]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        for line in lines:
            yield line

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
