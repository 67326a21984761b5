"""The fake Bedrock's own reading of the two request bodies (Converse, Anthropic Messages).

Never the adapter's mapping: a mapping bug on one side cannot hide behind the same bug on the
other. Each body is read into a ``ModelRequest`` (what the brain sees) and ``Asked`` (what the
request asked of the model beyond the conversation: thinking, stop sequences, cache points), and
checked as Bedrock checks it; a broken rule raises ``Invalid``, answered with 400
ValidationException in Bedrock's words.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass
from typing import Any

from openptc.models import (
    Block,
    Message,
    ModelRequest,
    ReasoningBlock,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)

from .anthropic_server import parse_block

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
        "output_config",
    }
)
INTERLEAVED = "interleaved-thinking-2025-05-14"


class Invalid(Exception):
    """The request breaks a rule Bedrock enforces: answered with 400 ValidationException."""


@dataclass(frozen=True)
class Asked:
    """What a request asked of the model besides the conversation.

    ``reasoning``: ``"signed"`` (Claude thinking: signed or redacted blocks), ``"plain"``
    (gpt-oss, DeepSeek R1: unsigned text) or None. ``every_turn``: think after tool results too
    (interleaved or adaptive thinking), not only when a user's turn starts.
    ``checkpoints``: prefix lengths, in segments (see ``segments``), marked for the cache.
    """

    reasoning: str | None = None
    budget: int = 0
    every_turn: bool = False
    temperature: float | None = None
    stop_sequences: tuple[str, ...] = ()
    stop_sequence_field: bool = False
    checkpoints: tuple[int, ...] = ()


def check_turns(messages: tuple[Message, ...], tools_declared: bool) -> None:
    if not messages or messages[0].role != "user":
        raise Invalid(
            "A conversation must start with a user message. Try again with a conversation that "
            "starts with a user message."
        )
    for i, (before, after) in enumerate(itertools.pairwise(messages), start=1):
        if before.role == after.role:
            raise Invalid(
                f"A conversation must alternate between user and assistant roles (messages.{i})."
            )
        asked = {u.id for u in before.tool_uses}
        unknown = [r.tool_use_id for r in after.results if r.tool_use_id not in asked]
        if unknown:
            raise Invalid(
                f"The toolResult blocks at messages.{i}.content answer toolUse ids {unknown} "
                "that the previous turn did not use."
            )
    if not tools_declared and any(m.tool_uses or m.results for m in messages):
        raise Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )


# --- Converse ------------------------------------------------------------------------------


def _converse_block(block: dict[str, Any]) -> Block | None:
    if "text" in block:
        return TextBlock(block["text"])
    if "toolUse" in block:
        use = block["toolUse"]
        if not isinstance(use.get("input"), dict):
            raise Invalid("The value at toolUse.input must be a JSON object.")
        return ToolUseBlock(use["toolUseId"], use["name"], use["input"])
    if "toolResult" in block:
        result = block["toolResult"]
        parts = [c["text"] if "text" in c else json.dumps(c["json"]) for c in result["content"]]
        return ToolResultBlock(result["toolUseId"], "".join(parts), result.get("status") == "error")
    if "reasoningContent" in block:
        said = block["reasoningContent"]
        if "redactedContent" in said:  # base64 on the wire, as every blob in AWS JSON
            return ReasoningBlock("", "bedrock", redacted=said["redactedContent"])
        text = said["reasoningText"]
        if not text.get("signature"):
            raise Invalid(
                "User messages cannot contain reasoning content. Please remove the reasoning "
                "content and try again."
            )
        return ReasoningBlock(text["text"], "bedrock", signature=text["signature"])
    if "cachePoint" in block:
        return None
    raise Invalid(f"Unsupported content block: {sorted(block)}")


def read_converse(body: dict[str, Any]) -> ModelRequest:
    """A Converse request body, checked and normalized."""
    system = "\n".join(b["text"] for b in body.get("system", []) if "text" in b)
    messages = tuple(
        Message(m["role"], tuple(b for b in map(_converse_block, m["content"]) if b is not None))
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
    check_turns(messages, "toolConfig" in body)
    return ModelRequest(
        system, messages, tools, body.get("inferenceConfig", {}).get("maxTokens", 0)
    )


def asked_converse(model_id: str, body: dict[str, Any]) -> Asked:
    """Converse segments: system, tools, then each message (``cachePoint`` marks their ends)."""
    fields = body.get("additionalModelRequestFields") or {}
    config = body.get("inferenceConfig", {})
    marks = [
        any("cachePoint" in b for b in body.get("system", [])),
        any("cachePoint" in t for t in body.get("toolConfig", {}).get("tools", [])),
        *(any("cachePoint" in b for b in m["content"]) for m in body.get("messages", [])),
    ]
    thinking = fields.get("thinking") or {}
    reasoning = None
    if thinking.get("type") in ("enabled", "adaptive"):
        reasoning = "signed"
    elif "reasoning_effort" in fields or "deepseek.r1" in model_id:  # gpt-oss; R1 always
        reasoning = "plain"
    return Asked(
        reasoning=reasoning,
        budget=int(thinking.get("budget_tokens", 0)),
        every_turn=thinking.get("type") == "adaptive"
        or INTERLEAVED in fields.get("anthropic_beta", []),
        temperature=config.get("temperature"),
        stop_sequences=tuple(config.get("stopSequences", [])),
        stop_sequence_field="/stop_sequence" in body.get("additionalModelResponseFieldPaths", []),
        checkpoints=tuple(i + 1 for i, marked in enumerate(marks) if marked),
    )


# --- the Anthropic Messages body of InvokeModel ----------------------------------------------


def _anthropic_block(block: dict[str, Any]) -> Block:
    kind = block.get("type")
    if kind == "thinking":
        return ReasoningBlock(block["thinking"], "anthropic", signature=block.get("signature"))
    if kind == "redacted_thinking":
        return ReasoningBlock("", "anthropic", redacted=block["data"])
    try:
        return parse_block({k: v for k, v in block.items() if k != "cache_control"})
    except ValueError:
        raise Invalid(f"messages: unsupported content type {kind!r}") from None


def _content(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def read_anthropic(body: dict[str, Any]) -> ModelRequest:
    """An InvokeModel body for an Anthropic model, checked as Bedrock checks it, normalized."""
    for key in body:
        if key not in ANTHROPIC_KEYS:
            raise Invalid(
                f"Malformed input request: #: extraneous key [{key}] is not permitted, please "
                "reformat your input and try again."
            )
    for key in ("anthropic_version", "max_tokens", "messages"):
        if key not in body:
            raise Invalid(
                f"Malformed input request: #: required key [{key}] not found, please reformat "
                "your input and try again."
            )
    if body["anthropic_version"] != "bedrock-2023-05-31":
        raise Invalid(f"invalid anthropic_version: {body['anthropic_version']!r}")
    messages = tuple(
        Message(m["role"], tuple(_anthropic_block(b) for b in _content(m["content"])))
        for m in body["messages"]
    )
    tools = tuple(
        ToolSpec(t["name"], t.get("description", ""), t["input_schema"])
        for t in body.get("tools", [])
    )
    if not tools and any(m.tool_uses or m.results for m in messages):
        raise Invalid(
            "Requests which include `tool_use` or `tool_result` blocks must define tools."
        )
    check_turns(messages, tools_declared=True)
    system = body.get("system", "")
    if isinstance(system, list):
        system = "\n".join(b.get("text", "") for b in system)
    return ModelRequest(system, messages, tools, body["max_tokens"])


def asked_anthropic(body: dict[str, Any]) -> Asked:
    """Anthropic segments, in its cache order: tools, system, then each message."""
    system = body.get("system", "")
    marks = [
        any("cache_control" in t for t in body.get("tools", [])),
        isinstance(system, list) and any("cache_control" in b for b in system),
        *(any("cache_control" in b for b in _content(m["content"])) for m in body["messages"]),
    ]
    thinking = body.get("thinking") or {}
    return Asked(
        reasoning="signed" if thinking.get("type") in ("enabled", "adaptive") else None,
        budget=int(thinking.get("budget_tokens", 0)),
        every_turn=thinking.get("type") == "adaptive"
        or INTERLEAVED in body.get("anthropic_beta", []),
        temperature=body.get("temperature"),
        stop_sequences=tuple(body.get("stop_sequences", [])),
        stop_sequence_field=True,
        checkpoints=tuple(i + 1 for i, marked in enumerate(marks) if marked),
    )


def redacted_bytes(block: ReasoningBlock) -> bytes:
    """The opaque data of a redacted block as it travelled (base64 text on both wires)."""
    assert block.redacted is not None
    return base64.b64decode(block.redacted)
