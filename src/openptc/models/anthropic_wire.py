"""The Anthropic Messages wire format as plain dicts, without the ``anthropic`` SDK.

One mapping for every way the body travels: ``anthropic.py`` (the SDK, whose objects are turned
into dicts first) and Bedrock's InvokeModel (the same JSON, raw). A caller adds what is its own:
the model or ``anthropic_version``, which tools to declare, and any stop reasons of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    tool_use_from_input,
)

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    # openptc never sends stop_sequences; a stop is a finished turn all the same.
    "stop_sequence": "end_turn",
    "max_tokens": "max_tokens",
    # The answer was cut short, by the context window instead of max_tokens.
    "model_context_window_exceeded": "max_tokens",
    # Only server tools (web search, Anthropic's code execution) pause a turn, and openptc
    # offers none; should one appear, the turn is unfinished, like a truncated one.
    "pause_turn": "max_tokens",
    "refusal": "refusal",
}

StopMapping = Callable[[str | None, Sequence[Block]], StopReason]


def stop_reason(reason: str | None, blocks: Sequence[Block]) -> StopReason:
    """The normalized stop reason; an unknown or missing one is told by the blocks."""
    if reason in STOP_REASONS:
        return STOP_REASONS[reason]
    return "tool_use" if any(isinstance(b, ToolUseBlock) for b in blocks) else "end_turn"


# --- request ------------------------------------------------------------------------------


def request_body(request: ModelRequest, tools: Sequence[ToolSpec] | None = None) -> dict[str, Any]:
    """``max_tokens``, ``messages``, ``system`` and ``tools`` (``request.tools`` unless given)."""
    body: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "messages": wire_messages(request.messages),
    }
    if request.system:
        body["system"] = request.system
    specs = request.tools if tools is None else tools
    if specs:
        body["tools"] = [wire_tool(spec) for spec in specs]
        if request.tool_choice is not None:
            choice: dict[str, Any] = {"type": request.tool_choice.mode}
            if request.tool_choice.name is not None:
                choice["name"] = request.tool_choice.name
            body["tool_choice"] = choice
    return body


def wire_tool(spec: ToolSpec) -> dict[str, Any]:
    param: dict[str, Any] = {"name": spec.name, "input_schema": spec.input_schema}
    if spec.description:
        param["description"] = spec.description
    return param


def wire_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Messages as the API accepts them: roles alternate and no block is empty.

    Consecutive turns of one role are merged into one turn (results first, as the API wants
    ``tool_result`` blocks to open a user turn); empty text blocks, which the API rejects, are
    dropped, and with them a turn that is left with nothing.
    """
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        blocks = [
            _wire_block(b) for b in message.content if not (isinstance(b, TextBlock) and not b.text)
        ]
        if not blocks:
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message.role, blocks))
    for role, blocks in turns:
        if role == "user":
            blocks.sort(key=lambda b: b["type"] != "tool_result")  # stable: order kept otherwise
    return [{"role": role, "content": blocks} for role, blocks in turns]


def _wire_block(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        # A call whose arguments were not a JSON object goes back with ``{}``: the API accepts
        # only an object here (a string is a 400), and the paired error result says what was
        # wrong with the original.
        arguments = {} if block.raw_input is not None else dict(block.input)
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": arguments}
    assert isinstance(block, ToolResultBlock), "reasoning blocks are not sent yet"
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
    }
    if block.is_error:
        result["is_error"] = True
    return result


# --- response -----------------------------------------------------------------------------


def response(
    message: Mapping[str, Any], model: str, stop: StopMapping = stop_reason
) -> ModelResponse:
    """A Message (the non-streamed reply), normalized."""
    blocks: list[Block] = []
    for item in message.get("content") or []:
        if item.get("type") == "text":
            blocks.append(TextBlock(item["text"]))
        elif item.get("type") == "tool_use":
            blocks.append(tool_use_from_input(item["id"], item["name"], item.get("input")))
        # Other block types (thinking, server tools) need features openptc does not request.
    normalized = stop(message.get("stop_reason"), blocks)
    return ModelResponse(tuple(blocks), normalized, usage(message.get("usage")), model)


def usage(usage: Mapping[str, Any] | None) -> ModelUsage | None:
    if not usage:
        return None
    return ModelUsage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
    )


@dataclass
class _PartialTool:
    id: str
    name: str
    json_text: list[str] = field(default_factory=list)


@dataclass
class StreamedTurn:
    """Accumulates one streamed message from its raw events (as dicts), in arrival order."""

    model: str = ""
    blocks: dict[int, list[str] | _PartialTool] = field(default_factory=dict)
    reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    """Set by ``message_stop``: the answer is whole."""

    def add(self, event: Mapping[str, Any]) -> str:
        """Take in one event; returns the text it added (empty if none)."""
        kind = event.get("type")
        if kind == "message_start":
            self.model = event["message"].get("model") or ""
            self.usage = dict(event["message"].get("usage") or {})
        elif kind == "content_block_start":
            block = event["content_block"]
            if block.get("type") == "text":
                self.blocks[event["index"]] = [block.get("text") or ""]
            elif block.get("type") == "tool_use":
                self.blocks[event["index"]] = _PartialTool(block["id"], block["name"])
        elif kind == "content_block_delta":
            target = self.blocks.get(event["index"])
            delta = event["delta"]
            if delta.get("type") == "text_delta" and isinstance(target, list):
                target.append(delta["text"])
                return str(delta["text"])
            if delta.get("type") == "input_json_delta" and isinstance(target, _PartialTool):
                target.json_text.append(delta.get("partial_json") or "")
        elif kind == "message_delta":
            self.reason = event["delta"].get("stop_reason")
            # Cumulative; a field it leaves out (or sends as null) keeps its earlier value.
            self.usage.update(
                (k, v) for k, v in (event.get("usage") or {}).items() if v is not None
            )
        elif kind == "message_stop":
            self.finished = True
        return ""

    def response(self, model: str | None = None, stop: StopMapping = stop_reason) -> ModelResponse:
        """The turn so far, normalized; ``model`` replaces the one ``message_start`` named."""
        blocks: list[Block] = []
        for _, partial in sorted(self.blocks.items()):
            if isinstance(partial, _PartialTool):
                raw = "".join(partial.json_text)
                blocks.append(tool_use_from_input(partial.id, partial.name, raw))
            else:
                blocks.append(TextBlock("".join(partial)))
        normalized = stop(self.reason, blocks)
        used = usage(self.usage) or ModelUsage(0, 0)
        return ModelResponse(tuple(blocks), normalized, used, model or self.model)
