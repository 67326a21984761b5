"""Any Bedrock model through the provider-neutral Converse API (``bedrock:`` model strings).

Maps requests to ``converse``/``converse_stream`` arguments and their replies and stream events
back, with Converse's own quirks: it refuses blank text blocks and empty tool descriptions, has no
"none" tool choice, and may name a stop reason openptc does not know (a finished turn). The
client, thread hop, errors and Bedrock's stop reasons are shared in ``bedrock_common``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openptc.models import anthropic_wire
from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    ModelUsage,
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
    TurnBuilder,
    offered_tools,
    stop_reason,
)

# --- requests ----------------------------------------------------------------------------------


def _converse_block(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"text": block.text}
    if isinstance(block, ToolUseBlock):
        sent = {} if block.input_error is not None else dict(block.input)
        return {"toolUse": {"toolUseId": block.id, "name": block.name, "input": sent}}
    assert isinstance(block, ToolResultBlock), "reasoning blocks are not sent yet"
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
    tools = offered_tools(request)
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


# --- responses ---------------------------------------------------------------------------------


def _converse_stop(reason: str, blocks: Sequence[Block]) -> StopReason:
    # An unknown stopReason is a finished turn, whatever blocks came with it.
    known = reason in anthropic_wire.STOP_REASONS or reason in FILTERED_STOPS | MALFORMED_STOPS
    return stop_reason(reason if known else "end_turn", blocks)


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


# --- the model ---------------------------------------------------------------------------------


class BedrockConverseModel(BedrockModelBase):
    """Any Bedrock model through the provider-neutral Converse API (streamed with on_text)."""

    def _complete(self, request: ModelRequest) -> ModelResponse:
        response = self.client().converse(**converse_request(self.model_id, request))
        return converse_response(response, self.model_id)

    def _open_stream(self, request: ModelRequest) -> Any:
        return self.client().converse_stream(**converse_request(self.model_id, request))["stream"]

    def _turn(self) -> TurnBuilder:
        return _ConverseTurn()


__all__ = ["BedrockConverseModel", "converse_request", "converse_response"]
