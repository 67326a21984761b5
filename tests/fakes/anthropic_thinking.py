"""Extended thinking in the Anthropic fake: signed blocks out, the API's checks on the way in.

The fake thinks whenever a request turns thinking on: it writes a thinking block about the turn
it is about to give and signs it, as the API does, with a secret only it holds (an HMAC of the
text), so a block that comes back altered, forged or missing is caught as the real API catches
it. Error wordings are the API's own as clients have reported them, unless marked paraphrased.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Any

from openptc.models.base import Block, ModelRequest, ReasoningBlock, TextBlock, ToolUseBlock

Json = dict[str, Any]
INTERLEAVED_BETA = "interleaved-thinking-2025-05-14"
_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
_CONSIDER = (
    f"Please consult our documentation at {_DOCS}"
    "#important-considerations-when-using-extended-thinking"
)
THINKING_KINDS = ("thinking", "redacted_thinking")


class Signer:
    """Signs the fake's thinking and checks what comes back; a fresh secret per fake."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else os.urandom(32)

    def _mac(self, kind: str, text: str) -> str:
        digest = hmac.new(self._secret, f"{kind}\0{text}".encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def thinking(self, text: str) -> ReasoningBlock:
        return ReasoningBlock(text, "anthropic", signature=self._mac("thinking", text))

    def redacted(self, about: str) -> ReasoningBlock:
        """Opaque data, as the API's encrypted thinking is: a payload and its MAC."""
        payload = base64.b64encode(hashlib.sha256(about.encode()).digest()).decode()
        return ReasoningBlock(
            "", "anthropic", redacted=f"{payload}.{self._mac('redacted', payload)}"
        )

    def issued(self, block: Json) -> bool:
        """Whether this thinking or redacted_thinking block is one the fake gave, unchanged."""
        if block.get("type") == "thinking":
            text, signature = block.get("thinking"), block.get("signature")
            if not isinstance(text, str) or not isinstance(signature, str):
                return False
            return hmac.compare_digest(signature, self._mac("thinking", text))
        payload, _, mac = str(block.get("data") or "").partition(".")
        return hmac.compare_digest(mac, self._mac("redacted", payload))


def thinking_on(body: Json) -> bool:
    config = body.get("thinking")
    return isinstance(config, dict) and config.get("type") in ("enabled", "adaptive")


def thoughts(request: ModelRequest, content: Sequence[Block]) -> str:
    """What the fake "thought" before this turn: the question, what came back, what is next."""
    asked = request.messages[0].text if request.messages else ""
    results = sum(len(m.results) for m in request.messages)
    calls = [b.name for b in content if isinstance(b, ToolUseBlock)]
    answer = "".join(b.text for b in content if isinstance(b, TextBlock))
    plan = f"call {', '.join(calls)}" if calls else f"answer in {len(answer.split())} words"
    return (
        f"The user asked: {asked[:120]!r}. {results} tool result(s) have come back so far, "
        f"and I have read each of them. Next I will {plan}."
    )


def thinking_problem(body: Json, beta: str, signer: Signer) -> str | None:
    """The first thing the API refuses in a request with thinking on; None if there is none."""
    if not thinking_on(body):
        return None
    config = body["thinking"]
    if config["type"] == "enabled":
        budget = config.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        # With interleaved thinking the budget spans the whole turn and may exceed max_tokens.
        if budget >= body["max_tokens"] and INTERLEAVED_BETA not in beta:
            return (
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {_DOCS}#max-tokens-and-context-window-size"
            )
    if body.get("temperature") not in (None, 1):
        return f"`temperature` may only be set to 1 when thinking is enabled. {_CONSIDER}"
    if body.get("top_k") is not None:
        return f"`top_k` must be unset when thinking is enabled. {_CONSIDER}"
    top_p = body.get("top_p")
    if top_p is not None and top_p < 0.95:  # paraphrased
        return f"`top_p` must be unset or at least 0.95 when thinking is enabled. {_CONSIDER}"
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return _unchanged_thinking(body["messages"], signer)


def _unchanged_thinking(messages: list[Json], signer: Signer) -> str | None:
    """Every thinking block came from the fake unchanged, and a tool loop in progress keeps the
    thinking that opened its last assistant turn."""
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    for i in assistant:
        for j, block in enumerate(_content(messages[i])):
            if block.get("type") in THINKING_KINDS and not signer.issued(block):
                if i == assistant[-1]:
                    return (
                        f"messages.{i}.content.{j}: `thinking` or `redacted_thinking` blocks in "
                        "the latest assistant message cannot be modified. These blocks must "
                        "remain as they were in the original response."
                    )
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    last = messages[-1]
    in_loop = last["role"] == "user" and any(b.get("type") == "tool_result" for b in _content(last))
    if not in_loop or not assistant:
        return None
    i = assistant[-1]
    first = (_content(messages[i]) or [{"type": "nothing"}])[0].get("type")
    if first in THINKING_KINDS:
        return None
    return (
        f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
        "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). "
        "We recommend you include thinking blocks from previous turns. To avoid this "
        f"requirement, disable `thinking`. Please consult our documentation at {_DOCS}"
    )


def _content(message: Json) -> list[Json]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
