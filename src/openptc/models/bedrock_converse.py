"""Any Bedrock model through the provider-neutral Converse API (``bedrock:`` model strings).

Maps requests to ``converse``/``converse_stream`` arguments and their replies and stream events
back, with Converse's own quirks: it refuses blank text blocks and empty tool descriptions, has no
"none" tool choice, and may name a stop reason openptc does not know (a finished turn). Settings
(reasoning, sampling, metadata) are put in Converse's words by ``bedrock_settings``; the client,
thread hop, errors and Bedrock's stop reasons are shared in ``bedrock_common``.

Reasoning comes back as ``reasoningContent`` blocks: readable text with a signature, or redacted
bytes (kept base64-encoded in ``ReasoningBlock.redacted``). Later requests carry them back
unchanged, in place, as Claude requires within a tool loop. Reasoning without a signature
(DeepSeek R1, gpt-oss) is left out: Bedrock refuses it in a request ("User messages cannot
contain reasoning content"). Bedrock does not count reasoning tokens apart: they are counted
from the returned text. Prompt caching puts a ``cachePoint`` after the system prompt, the tools
and the last message, where the model has prompt caching (``bedrock_models``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from openptc.models import anthropic_wire
from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    tool_use_from_input,
)
from openptc.models.bedrock_common import (
    FILTERED_STOPS,
    MALFORMED_STOPS,
    BedrockModelBase,
    Call,
    TurnBuilder,
    offered_tools,
    stop_reason,
)
from openptc.models.bedrock_settings import STOP_SEQUENCE_PATH, converse_settings
from openptc.models.tokens import count_reasoning_tokens

CACHE_POINT: Mapping[str, Any] = MappingProxyType({"cachePoint": {"type": "default"}})
"""A prompt-cache checkpoint: the prefix up to here may be cached (a fresh copy is sent)."""


def _cache_point() -> dict[str, Any]:
    return {"cachePoint": {"type": "default"}}


# --- requests ----------------------------------------------------------------------------------


def _reasoning_block(block: ReasoningBlock) -> dict[str, Any] | None:
    """Bedrock's own reasoning, as it came; None for what a request may not carry."""
    if block.wire != "bedrock":
        return None
    if block.redacted is not None:
        return {"reasoningContent": {"redactedContent": base64.b64decode(block.redacted)}}
    if block.signature is None:
        return None
    text = {"text": block.text, "signature": block.signature}
    return {"reasoningContent": {"reasoningText": text}}


def _converse_block(block: Block) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"text": block.text} if block.text else None  # Converse refuses blank text
    if isinstance(block, ToolUseBlock):
        sent = {} if block.input_error is not None else dict(block.input)
        return {"toolUse": {"toolUseId": block.id, "name": block.name, "input": sent}}
    if isinstance(block, ReasoningBlock):
        return _reasoning_block(block)
    assert isinstance(block, ToolResultBlock)
    return {
        "toolResult": {
            "toolUseId": block.tool_use_id,
            "content": [{"text": block.content}],
            "status": "error" if block.is_error else "success",
        }
    }


def _converse_blocks(message: Message) -> list[Any]:
    return [wired for b in message.content if (wired := _converse_block(b)) is not None]


def _tool_config(request: ModelRequest, cache: bool) -> dict[str, Any] | None:
    tools = offered_tools(request)
    if not tools:
        return None
    specs: list[dict[str, Any]] = []
    for t in tools:
        spec: dict[str, Any] = {"name": t.name, "inputSchema": {"json": t.input_schema}}
        if t.description:  # Converse refuses an empty description
            spec["description"] = t.description
        specs.append({"toolSpec": spec})
    if cache:
        specs.append(_cache_point())
    config: dict[str, Any] = {"tools": specs}
    choice = request.tool_choice
    # Converse has no "none": the tools stay declared (history may need them) and the
    # model chooses, as with "auto".
    if choice is not None and choice.mode in ("any", "tool") and request.tools:
        config["toolChoice"] = (
            {"tool": {"name": choice.name}} if choice.mode == "tool" else {"any": {}}
        )
    return config


def converse_request(model_id: str, request: ModelRequest) -> dict[str, Any]:
    """Keyword arguments of ``converse``/``converse_stream`` for one request.

    Raises ``UnsupportedSetting`` for a setting this model cannot take, before any request.
    """
    settings = converse_settings(model_id, request)
    places = settings.cache_places
    contents = [_converse_blocks(m) for m in request.messages]
    if "messages" in places and contents:
        contents[-1].append(_cache_point())
    messages = [
        {"role": m.role, "content": content}
        for m, content in zip(request.messages, contents, strict=True)
    ]
    kwargs: dict[str, Any] = {
        "modelId": model_id,
        "messages": messages,
        "inferenceConfig": settings.inference,
    }
    if request.system:
        kwargs["system"] = [{"text": request.system}]
        if "system" in places:
            kwargs["system"].append(_cache_point())
    config = _tool_config(request, "tools" in places)
    if config is not None:
        kwargs["toolConfig"] = config
    if settings.additional:
        kwargs["additionalModelRequestFields"] = settings.additional
    if settings.response_paths:
        kwargs["additionalModelResponseFieldPaths"] = settings.response_paths
    if settings.metadata:
        kwargs["requestMetadata"] = settings.metadata
    return kwargs


# --- responses ---------------------------------------------------------------------------------


def _converse_stop(reason: str, blocks: Sequence[Block]) -> StopReason:
    # An unknown stopReason is a finished turn, whatever blocks came with it.
    known = reason in anthropic_wire.STOP_REASONS or reason in FILTERED_STOPS | MALFORMED_STOPS
    return stop_reason(reason if known else "end_turn", blocks)


def _stop_sequence(
    stop: StopReason, fields: Mapping[str, Any] | None, sequences: Sequence[str]
) -> str | None:
    """Which stop sequence stopped the model: Claude's raw reply says (asked for with
    ``additionalModelResponseFieldPaths``); else the only one there was; else unknown."""
    if stop != "stop_sequence":
        return None
    said = (fields or {}).get(STOP_SEQUENCE_PATH.lstrip("/"))
    if isinstance(said, str):
        return said
    return sequences[0] if len(sequences) == 1 else None


def _converse_usage(usage: Mapping[str, Any] | None, blocks: Sequence[Block]) -> ModelUsage | None:
    if not usage:
        return None
    return ModelUsage(
        input_tokens=usage.get("inputTokens", 0),
        output_tokens=usage.get("outputTokens", 0),
        cache_read_tokens=usage.get("cacheReadInputTokens", 0),
        cache_write_tokens=usage.get("cacheWriteInputTokens", 0),
        reasoning_tokens=count_reasoning_tokens(blocks),
    )


def _reasoning(content: Mapping[str, Any]) -> ReasoningBlock:
    if "redactedContent" in content:
        redacted = base64.b64encode(content["redactedContent"]).decode()
        return ReasoningBlock("", "bedrock", redacted=redacted)
    said = content.get("reasoningText", {})
    return ReasoningBlock(said.get("text", ""), "bedrock", signature=said.get("signature"))


def converse_response(
    response: Mapping[str, Any], model_id: str, stop_sequences: Sequence[str] = ()
) -> ModelResponse:
    """A ``converse`` response, normalized; ``stop_sequences`` are the request's."""
    blocks: list[Block] = []
    for item in response.get("output", {}).get("message", {}).get("content", []):
        if "text" in item:
            blocks.append(TextBlock(item["text"]))
        elif "toolUse" in item:
            use = item["toolUse"]
            blocks.append(tool_use_from_input(use["toolUseId"], use["name"], use.get("input")))
        elif "reasoningContent" in item:
            blocks.append(_reasoning(item["reasoningContent"]))
        # citations, images: not part of the normalized model
    stop = _converse_stop(response.get("stopReason", "end_turn"), blocks)
    fields = response.get("additionalModelResponseFields")
    return ModelResponse(
        tuple(blocks),
        stop,
        _converse_usage(response.get("usage"), blocks),
        model_id,
        _stop_sequence(stop, fields, stop_sequences),
    )


@dataclass
class _PartialReasoning:
    """A streamed reasoning block: text pieces then its signature, or redacted bytes."""

    text: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: list[bytes] = field(default_factory=list)

    def add(self, piece: Mapping[str, Any]) -> None:
        self.text.append(piece.get("text", ""))
        self.signature = piece.get("signature", self.signature)
        if "redactedContent" in piece:
            self.redacted.append(piece["redactedContent"])

    def block(self) -> ReasoningBlock:
        if self.redacted:
            return ReasoningBlock(
                "", "bedrock", redacted=base64.b64encode(b"".join(self.redacted)).decode()
            )
        return ReasoningBlock("".join(self.text), "bedrock", signature=self.signature)


@dataclass
class _ConverseTurn:
    """A ``converse_stream`` response, block by block in index order."""

    stop_sequences: Sequence[str] = ()
    texts: dict[int, list[str]] = field(default_factory=dict)
    tools: dict[int, tuple[str, str, list[str]]] = field(default_factory=dict)
    reasoning: dict[int, _PartialReasoning] = field(default_factory=dict)
    stop: str | None = None
    fields: Mapping[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    finished: bool = False

    def add(self, event: Mapping[str, Any]) -> str:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            use = start.get("start", {}).get("toolUse")
            if use is not None:
                self.tools[start["contentBlockIndex"]] = (use["toolUseId"], use["name"], [])
        elif "contentBlockDelta" in event:
            return self._delta(event["contentBlockDelta"])
        elif "messageStop" in event:
            self.stop = event["messageStop"]["stopReason"]
            self.fields = event["messageStop"].get("additionalModelResponseFields")
            self.finished = True
        elif "metadata" in event:
            self.usage = dict(event["metadata"].get("usage", {}))
        return ""

    def _delta(self, event: Mapping[str, Any]) -> str:
        index, delta = event["contentBlockIndex"], event["delta"]
        if "text" in delta:
            self.texts.setdefault(index, []).append(delta["text"])
            return str(delta["text"])
        if "toolUse" in delta and index in self.tools:  # no start, no name: nothing to call
            self.tools[index][2].append(delta["toolUse"].get("input", ""))
        elif "reasoningContent" in delta:
            self.reasoning.setdefault(index, _PartialReasoning()).add(delta["reasoningContent"])
        return ""

    def response(self, model: str | None = None) -> ModelResponse:
        found: dict[int, Block] = {i: TextBlock("".join(t)) for i, t in self.texts.items()}
        for i, (tool_use_id, name, parts) in self.tools.items():
            found[i] = tool_use_from_input(tool_use_id, name, "".join(parts))
        for i, partial in self.reasoning.items():
            found[i] = partial.block()
        blocks = tuple(found[i] for i in sorted(found))
        stop = _converse_stop(self.stop or "end_turn", blocks)
        return ModelResponse(
            blocks,
            stop,
            _converse_usage(self.usage, blocks),
            model or "",
            _stop_sequence(stop, self.fields, self.stop_sequences),
        )


# --- the model ---------------------------------------------------------------------------------


class BedrockConverseModel(BedrockModelBase):
    """Any Bedrock model through the provider-neutral Converse API (streamed with on_text)."""

    def _prepare(self, request: ModelRequest) -> dict[str, Any]:
        return converse_request(self.model_id, request)

    def _complete(self, call: Call) -> ModelResponse:
        response = self.client().converse(**call.kwargs)
        return converse_response(response, self.model_id, call.request.settings.stop_sequences)

    def _open_stream(self, call: Call) -> Any:
        return self.client().converse_stream(**call.kwargs)["stream"]

    def _turn(self, call: Call) -> TurnBuilder:
        return _ConverseTurn(call.request.settings.stop_sequences)


__all__ = ["CACHE_POINT", "BedrockConverseModel", "converse_request", "converse_response"]
