"""A brain's turn as the fake OpenAI API answers it: wire ids, what it "thought", usage figures.

Brains (``openptc.scenarios.brains``) decide what to do but do not reason aloud. When a request
asks for reasoning, the fake thinks for them: ``think`` writes a short summary from the
conversation and the turn, in parts, as OpenAI's reasoning summaries come (a bold title, a blank
line, a sentence). A brain's own ``ReasoningBlock``s, if it returns any, are used instead.

A stop sequence cuts the text where it first appears, and the turn ends there, as it does at a
real model: no tool call follows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from openptc.models.base import (
    Block,
    ModelRequest,
    ModelResponse,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolUseBlock,
)
from openptc.models.scripted import Turn
from openptc.models.tokens import count_response_tokens, count_text

from .openai_wire import wire_call_id

HIDDEN_REASONING_FACTOR = 4
"""A summary is shorter than the reasoning it sums up: the fake bills this many times its
tokens as reasoning, as OpenAI bills reasoning it never shows."""


def _blocks(turn: Turn) -> tuple[tuple[Block, ...], StopReason]:
    if isinstance(turn, ModelResponse):
        return turn.content, turn.stop_reason
    blocks = (TextBlock(turn),) if isinstance(turn, str) else tuple(turn)
    uses = any(isinstance(b, ToolUseBlock) for b in blocks)
    return blocks, "tool_use" if uses else "end_turn"


def think(request: ModelRequest, turn: Turn) -> list[str]:
    """Summary parts of the reasoning behind ``turn`` (the brain's own, if it gave any)."""
    blocks, _ = _blocks(turn)
    own = [b.text for b in blocks if isinstance(b, ReasoningBlock)]
    if own:
        return own
    last = request.messages[-1]
    seen = "the results of my last call" if last.results else "the user's question"
    names = [b.name for b in blocks if isinstance(b, ToolUseBlock)]
    plan = f"I will call {', '.join(names)}." if names else "I have what I need to answer."
    return [
        f"**Reading {seen}**\n\nThe conversation has {len(request.messages)} messages so far.",
        f"**Deciding the next step**\n\n{plan}",
    ]


class Answer:
    """A brain's turn with the wire's ids and the fake's usage figures."""

    def __init__(
        self,
        turn: Turn,
        prompt: int,
        cached: int,
        *,
        reasoning: Sequence[str] = (),
        reasoning_tokens: int = 0,
        stops: Sequence[str] = (),
    ) -> None:
        blocks, self.stop = _blocks(turn)
        visible = tuple(b for b in blocks if not isinstance(b, ReasoningBlock))
        self.text = "".join(b.text for b in visible if isinstance(b, TextBlock))
        self.calls = [
            (wire_call_id(b.id), b.name, wire_arguments(b))
            for b in visible
            if isinstance(b, ToolUseBlock)
        ]
        self.stop_sequence: str | None = None
        hits = [(self.text.find(s), s) for s in stops if s in self.text]
        if hits:
            at, self.stop_sequence = min(hits)
            self.text, self.calls, self.stop = self.text[:at], [], "stop_sequence"
        self.reasoning = list(reasoning)
        self.reasoning_tokens = reasoning_tokens
        self.prompt = prompt
        self.cached = min(cached, prompt)
        shown = (TextBlock(self.text),) if self.stop_sequence else visible
        response = ModelResponse(shown, self.stop, None, "")
        self.completion = count_response_tokens(response) + reasoning_tokens


def wire_arguments(use: ToolUseBlock) -> str:
    if use.raw_input is not None:
        return use.raw_input
    return json.dumps(use.input, separators=(",", ":"), ensure_ascii=False)


def summary_tokens(parts: Sequence[str]) -> int:
    """Reasoning tokens billed for a summary: more than it shows."""
    return HIDDEN_REASONING_FACTOR * count_text("\n\n".join(parts)) if parts else 0


def visible_tokens(text: str) -> int:
    """Reasoning tokens of reasoning shown whole (a local server's reasoning_content)."""
    return count_text(text) if text else 0
