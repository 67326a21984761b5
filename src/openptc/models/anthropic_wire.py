"""The Anthropic Messages wire format as plain dicts, without the ``anthropic`` SDK.

One mapping for every way the body travels: ``anthropic.py`` (the SDK, whose objects are turned
into dicts first) and Bedrock's InvokeModel (the same JSON, raw). A caller adds what is its own:
the model or ``anthropic_version``, which tools to declare, where the betas of ``beta_flags``
go, and any stop reasons of its own. Settings (thinking, sampling, cache marks) are said by
``anthropic_settings``.

Thinking blocks (``thinking`` with its signature, ``redacted_thinking`` with its data) become
``ReasoningBlock``s of wire "anthropic" and go back unchanged, at their place: the API verifies
them and refuses a tool loop whose last assistant turn lost them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openptc.models import anthropic_settings
from openptc.models.anthropic_settings import beta_flags, thinking_style
from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ReasoningBlock,
    ReasoningWire,
    StopReason,
    TextBlock,
    ToolSpec,
    ToolUseBlock,
    tool_use_from_input,
)
from openptc.models.tokens import count_reasoning_tokens

WIRE: ReasoningWire = "anthropic"
"""The ``ReasoningBlock.wire`` of this format (Anthropic's API and Bedrock InvokeModel)."""

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "stop_sequence": "stop_sequence",
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


def request_body(
    request: ModelRequest,
    tools: Sequence[ToolSpec] | None = None,
    *,
    provider: str = "anthropic",
    model: str | None = None,
) -> dict[str, Any]:
    """``max_tokens``, ``messages``, ``system``, ``tools`` (``request.tools`` unless given) and
    the settings: thinking, sampling, metadata, cache marks (when ``settings.cache``), then
    ``settings.extra`` merged over all of it.

    ``model``, named as Anthropic's API names it, says which form of thinking it takes and
    which sampling settings it refuses (``anthropic_settings``); without it, thinking has a
    budget and nothing is assumed. Raises ``UnsupportedSetting`` (naming ``provider``) for a
    setting the API would refuse.
    """
    anthropic_settings.check(request, provider, model)
    thinking = thinking_style(model)
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
    body.update(anthropic_settings.settings_fields(request, thinking))
    if request.settings.cache:
        anthropic_settings.mark_cache(body)
    body.update(request.settings.extra)
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
        blocks = [_wire_block(b) for b in message.content if _sent(b)]
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


def _sent(block: Block) -> bool:
    """Empty text is refused by the API; another API's reasoning means nothing to it."""
    if isinstance(block, TextBlock):
        return bool(block.text)
    return not isinstance(block, ReasoningBlock) or block.wire == WIRE


def _wire_block(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        # A call whose arguments were not a JSON object goes back with ``{}``: the API accepts
        # only an object here (a string is a 400), and the paired error result says what was
        # wrong with the original.
        arguments = {} if block.raw_input is not None else dict(block.input)
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": arguments}
    if isinstance(block, ReasoningBlock):  # exactly as it came, or the API refuses it
        if block.redacted is not None:
            return {"type": "redacted_thinking", "data": block.redacted}
        return {"type": "thinking", "thinking": block.text, "signature": block.signature or ""}
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
        kind = item.get("type")
        if kind == "text":
            blocks.append(TextBlock(item["text"]))
        elif kind == "tool_use":
            blocks.append(tool_use_from_input(item["id"], item["name"], item.get("input")))
        elif kind == "thinking":
            blocks.append(thinking(item.get("thinking") or "", item.get("signature") or ""))
        elif kind == "redacted_thinking":
            blocks.append(redacted_thinking(item.get("data") or ""))
        # Other block types (server tools) need features openptc does not request.
    reason = message.get("stop_reason")
    return ModelResponse(
        tuple(blocks),
        stop(reason, blocks),
        usage(message.get("usage"), blocks),
        model,
        stop_sequence=message.get("stop_sequence") if reason == "stop_sequence" else None,
    )


def thinking(text: str, signature: str) -> ReasoningBlock:
    return ReasoningBlock(text, WIRE, signature=signature)


def redacted_thinking(data: str) -> ReasoningBlock:
    return ReasoningBlock("", WIRE, redacted=data)


def usage(usage: Mapping[str, Any] | None, blocks: Sequence[Block] = ()) -> ModelUsage | None:
    """The reported usage; reasoning tokens, which the API does not report apart, are counted
    from the returned thinking text."""
    if not usage:
        return None
    return ModelUsage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
        reasoning_tokens=count_reasoning_tokens(blocks),
    )


@dataclass
class _PartialTool:
    id: str
    name: str
    json_text: list[str] = field(default_factory=list)


@dataclass
class _PartialThinking:
    """A ``thinking`` block: its text by ``thinking_delta``, its signature by
    ``signature_delta`` just before the block stops."""

    text: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)


_Partial = list[str] | _PartialTool | _PartialThinking | ReasoningBlock


@dataclass
class StreamedTurn:
    """Accumulates one streamed message from its raw events (as dicts), in arrival order."""

    model: str = ""
    blocks: dict[int, _Partial] = field(default_factory=dict)
    reason: str | None = None
    stop_sequence: str | None = None
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
            self._start(event["index"], event["content_block"])
        elif kind == "content_block_delta":
            return self._delta(self.blocks.get(event["index"]), event["delta"])
        elif kind == "message_delta":
            self.reason = event["delta"].get("stop_reason")
            self.stop_sequence = event["delta"].get("stop_sequence")
            # Cumulative; a field it leaves out (or sends as null) keeps its earlier value.
            self.usage.update(
                (k, v) for k, v in (event.get("usage") or {}).items() if v is not None
            )
        elif kind == "message_stop":
            self.finished = True
        return ""

    def _start(self, index: int, block: Mapping[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            self.blocks[index] = [block.get("text") or ""]
        elif kind == "tool_use":
            self.blocks[index] = _PartialTool(block["id"], block["name"])
        elif kind == "thinking":
            self.blocks[index] = _PartialThinking(
                [block.get("thinking") or ""], [block.get("signature") or ""]
            )
        elif kind == "redacted_thinking":  # arrives whole, with no deltas
            self.blocks[index] = redacted_thinking(block.get("data") or "")

    @staticmethod
    def _delta(target: _Partial | None, delta: Mapping[str, Any]) -> str:
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(target, list):
            target.append(delta["text"])
            return str(delta["text"])
        if kind == "input_json_delta" and isinstance(target, _PartialTool):
            target.json_text.append(delta.get("partial_json") or "")
        elif kind == "thinking_delta" and isinstance(target, _PartialThinking):
            target.text.append(delta.get("thinking") or "")
        elif kind == "signature_delta" and isinstance(target, _PartialThinking):
            target.signature.append(delta.get("signature") or "")
        return ""

    def response(self, model: str | None = None, stop: StopMapping = stop_reason) -> ModelResponse:
        """The turn so far, normalized; ``model`` replaces the one ``message_start`` named."""
        blocks: list[Block] = []
        for _, partial in sorted(self.blocks.items()):
            if isinstance(partial, _PartialTool):
                raw = "".join(partial.json_text)
                blocks.append(tool_use_from_input(partial.id, partial.name, raw))
            elif isinstance(partial, _PartialThinking):
                blocks.append(thinking("".join(partial.text), "".join(partial.signature)))
            elif isinstance(partial, ReasoningBlock):
                blocks.append(partial)
            else:
                blocks.append(TextBlock("".join(partial)))
        used = usage(self.usage, blocks) or ModelUsage(0, 0)
        stopped = self.stop_sequence if self.reason == "stop_sequence" else None
        return ModelResponse(
            tuple(blocks),
            stop(self.reason, blocks),
            used,
            model or self.model,
            stop_sequence=stopped,
        )


__all__ = [
    "STOP_REASONS",
    "WIRE",
    "StopMapping",
    "StreamedTurn",
    "beta_flags",
    "redacted_thinking",
    "request_body",
    "response",
    "stop_reason",
    "thinking",
    "thinking_style",
    "usage",
    "wire_messages",
    "wire_tool",
]
