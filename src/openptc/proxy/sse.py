"""Server-sent events in the order the SDK's stream helpers expect.

``message_start`` (empty content), then per block ``content_block_start`` / ``_delta`` /
``_stop`` (tool inputs as ``input_json_delta``; thinking as ``thinking_delta`` then one
``signature_delta`` just before its stop, as the API sends them; redacted thinking and result
blocks whole in their start event), then ``message_delta`` (stop reason and sequence, container,
cumulative usage) and ``message_stop``. Every frame names its event: the SDK skips frames
without one.
"""

from __future__ import annotations

import json
from typing import Any

from openptc.proxy.wire import (
    CodeExecutionToolResultContent,
    RedactedThinkingContent,
    ResponseBlock,
    ServerToolUseContent,
    TextContent,
    ThinkingContent,
    ToolUseContent,
)

TEXT_CHUNK = 2000  # characters per text_delta


def frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def message_start(message_id: str, model: str) -> bytes:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return frame("message_start", {"type": "message_start", "message": message})


def ping() -> bytes:
    return frame("ping", {"type": "ping"})


def block_events(index: int, block: ResponseBlock) -> list[bytes]:
    """One content block as its start, deltas and stop events."""
    data = block.model_dump(mode="json", exclude_none=True)
    deltas: list[dict[str, Any]] = []
    if isinstance(block, TextContent):
        data["text"] = ""
        deltas = [
            {"type": "text_delta", "text": block.text[i : i + TEXT_CHUNK]}
            for i in range(0, len(block.text), TEXT_CHUNK)
        ]
    elif isinstance(block, ThinkingContent):
        data["thinking"], data["signature"] = "", ""
        deltas = [
            {"type": "thinking_delta", "thinking": block.thinking[i : i + TEXT_CHUNK]}
            for i in range(0, len(block.thinking), TEXT_CHUNK)
        ]
        deltas.append({"type": "signature_delta", "signature": block.signature})
    elif isinstance(block, ToolUseContent | ServerToolUseContent):
        data["input"] = {}
        if block.input:
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block.input)}]
    elif not isinstance(block, CodeExecutionToolResultContent | RedactedThinkingContent):
        raise TypeError(f"cannot stream a {type(block).__name__}")
    events = [
        frame(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": data},
        )
    ]
    events += [
        frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    events.append(frame("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def text_start(index: int) -> bytes:
    """Opens a text block whose deltas follow as the backend writes them."""
    block = {"type": "text", "text": ""}
    return frame(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def text_delta(index: int, text: str) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return frame(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def block_stop(index: int) -> bytes:
    return frame("content_block_stop", {"type": "content_block_stop", "index": index})


def message_end(
    stop_reason: str,
    usage: dict[str, Any],
    container: dict[str, Any] | None,
    stop_sequence: str | None = None,
) -> list[bytes]:
    delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    if container is not None:
        delta["container"] = container
    return [
        frame("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
        frame("message_stop", {"type": "message_stop"}),
    ]


def error(body: dict[str, Any]) -> bytes:
    return frame("error", body)
