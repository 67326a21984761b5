"""The fake model's turn in each Bedrock API's words: JSON replies and stream events.

Converse: ``output.message.content`` blocks (``text``, ``toolUse``, ``reasoningContent``) and,
streamed, ``contentBlockStart`` only for a tool use, ``contentBlockDelta`` pieces (reasoning
text, then its signature; redacted content whole), ``contentBlockStop``, ``messageStop``,
``metadata``. InvokeModel: an Anthropic Message and, streamed, Anthropic's events (thinking by
``thinking_delta`` then ``signature_delta``; redacted thinking whole in its start) base64-encoded
in ``chunk.bytes``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from openptc.models import Block, ReasoningBlock, TextBlock, ToolUseBlock

from .aws_eventstream import encode_event, encode_exception

CUT = "cut"
"""A stream fault: the stream just ends after the first text delta, without its last event."""
CUT_BEFORE_TEXT = "cut-before-text"
"""A stream fault: the stream just ends after its first event, before any text."""


@dataclass(frozen=True)
class Answer:
    """The model's turn (reasoning included) with what a provider would bill for it."""

    blocks: tuple[Block, ...]
    stop: str
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int


def pieces(text: str, size: int = 12) -> Iterator[str]:
    """Text in small pieces, as a model streams it."""
    for start in range(0, len(text), size):
        yield text[start : start + size]


def cut(
    blocks: tuple[Block, ...], sequences: tuple[str, ...]
) -> tuple[tuple[Block, ...], str | None]:
    """The turn up to the first stop sequence in its text, and which one it was."""
    for i, block in enumerate(blocks):
        if not isinstance(block, TextBlock):
            continue
        found = [(block.text.find(s), s) for s in sequences if s in block.text]
        if found:
            at, sequence = min(found)
            return (*blocks[:i], TextBlock(block.text[:at])), sequence
    return blocks, None


# --- Converse --------------------------------------------------------------------------------


def converse_usage(answer: Answer) -> dict[str, int]:
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


def reasoning_json(block: ReasoningBlock) -> dict[str, Any]:
    if block.redacted is not None:
        return {"redactedContent": block.redacted}  # a blob: base64 in AWS JSON
    text = {"text": block.text}
    if block.signature is not None:
        text["signature"] = block.signature
    return {"reasoningText": text}


async def converse_events(
    content: list[dict[str, Any]],
    stop: str,
    fields: dict[str, Any],
    usage: dict[str, int],
    fault: str | None,
) -> AsyncIterator[bytes]:
    """ConverseStream's events for one reply; ``fault`` as ``bedrock_app`` describes it."""

    def delta(i: int, value: dict[str, Any]) -> bytes:
        return encode_event("contentBlockDelta", {"delta": value, "contentBlockIndex": i})

    yield encode_event("messageStart", {"role": "assistant"})
    if fault == CUT_BEFORE_TEXT:
        return
    for i, block in enumerate(content):
        if "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            yield encode_event("contentBlockStart", {"start": start, "contentBlockIndex": i})
            raw = use["input"]
            for piece in pieces(raw if isinstance(raw, str) else json.dumps(raw)):
                yield delta(i, {"toolUse": {"input": piece}})
        elif "reasoningContent" in block:
            said = block["reasoningContent"]
            if "redactedContent" in said:
                yield delta(i, {"reasoningContent": said})
            else:
                for piece in pieces(said["reasoningText"]["text"]):
                    yield delta(i, {"reasoningContent": {"text": piece}})
                if "signature" in said["reasoningText"]:
                    signature = said["reasoningText"]["signature"]
                    yield delta(i, {"reasoningContent": {"signature": signature}})
        else:
            for piece in pieces(block["text"]):
                yield delta(i, {"text": piece})
                if fault is not None:  # the stream breaks after text was sent
                    if fault != CUT:
                        yield encode_exception(fault, "Stream interrupted by the fake.")
                    return
        yield encode_event("contentBlockStop", {"contentBlockIndex": i})
    yield encode_event("messageStop", {"stopReason": stop, **fields})
    yield encode_event("metadata", {"usage": usage, "metrics": {"latencyMs": 42}})


# --- InvokeModel (the Anthropic Messages reply) ----------------------------------------------


def anthropic_message(answer: Answer, model_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in answer.blocks:
        if isinstance(block, TextBlock):
            content.append({"type": "text", "text": block.text})
        elif isinstance(block, ReasoningBlock) and block.redacted is not None:
            content.append({"type": "redacted_thinking", "data": block.redacted})
        elif isinstance(block, ReasoningBlock):
            thinking = {"type": "thinking", "thinking": block.text}
            content.append({**thinking, "signature": block.signature})
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
        "stop_sequence": answer.stop_sequence,
        "usage": {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cache_creation_input_tokens": answer.cache_write,
            "cache_read_input_tokens": answer.cache_read,
        },
    }


async def anthropic_events(message: dict[str, Any], fault: str | None) -> AsyncIterator[bytes]:
    """InvokeModelWithResponseStream's events for one Message."""

    def chunk(data: dict[str, Any]) -> bytes:
        encoded = base64.b64encode(json.dumps(data).encode()).decode()
        return encode_event("chunk", {"bytes": encoded})

    def delta(i: int, value: dict[str, Any]) -> bytes:
        return chunk({"type": "content_block_delta", "index": i, "delta": value})

    def opened(i: int, block: dict[str, Any]) -> bytes:
        return chunk({"type": "content_block_start", "index": i, "content_block": block})

    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 1}
    yield chunk({"type": "message_start", "message": start})
    if fault == CUT_BEFORE_TEXT:
        return
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield opened(i, {"type": "text", "text": ""})
            for piece in pieces(block["text"]):
                yield delta(i, {"type": "text_delta", "text": piece})
                if fault is not None:  # the stream breaks after text was sent
                    if fault != CUT:
                        yield encode_exception(fault, "Stream interrupted by the fake.")
                    return
        elif block["type"] == "thinking":
            yield opened(i, {"type": "thinking", "thinking": ""})
            for piece in pieces(block["thinking"]):
                yield delta(i, {"type": "thinking_delta", "thinking": piece})
            yield delta(i, {"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "redacted_thinking":
            yield opened(i, block)
        else:
            yield opened(i, {**block, "input": {}})
            for piece in pieces(json.dumps(block["input"])):
                yield delta(i, {"type": "input_json_delta", "partial_json": piece})
        yield chunk({"type": "content_block_stop", "index": i})
    ending = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    output = {"output_tokens": usage["output_tokens"]}
    yield chunk({"type": "message_delta", "delta": ending, "usage": output})
    metrics = {
        "inputTokenCount": usage["input_tokens"],
        "outputTokenCount": usage["output_tokens"],
        "invocationLatency": 42,
        "firstByteLatency": 7,
    }
    yield chunk({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics})
