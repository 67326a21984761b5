"""How the fake Bedrock model reasons, and the rules Claude enforces on reasoning sent back.

With thinking asked for, the fake thinks before its turn, in words derived from the
conversation (so a run's reasoning is deterministic, streamed or not). Claude's reasoning is
signed: the signature is an HMAC of the text under the fake's secret, and a redacted block is
opaque bytes tagged the same way, so any change to either is caught. Plain reasoning (gpt-oss,
DeepSeek R1) carries no signature.

Claude's rules, in its words (Bedrock passes them on as "The model returned the following
errors: ..."): within a tool loop the assistant turn must still start with its thinking; the
thinking of the latest assistant turn cannot be modified; a budget is at least 1,024 tokens and,
without interleaved thinking, below max_tokens; temperature may only be 1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from openptc.models import Block, Message, ModelRequest, ReasoningBlock, ToolUseBlock

from .bedrock_wire import Asked, Invalid

SECRET = b"fake-bedrock-thinking-secret"
MODEL_ERRORS = "The model returned the following errors: "
DOCS = "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def sign(text: str) -> str:
    return base64.b64encode(hmac.new(SECRET, text.encode(), hashlib.sha256).digest()).decode()


def redacted_data(text: str) -> bytes:
    """Opaque bytes standing for reasoning the provider will not show: a nonce and its tag."""
    nonce = hashlib.sha256(text.encode()).digest()[:12]
    return b"redacted:" + nonce + hmac.new(SECRET, nonce, hashlib.sha256).digest()[:16]


def _intact(block: ReasoningBlock) -> bool:
    if block.redacted is not None:
        data = base64.b64decode(block.redacted)
        nonce, tag = data[9:21], data[21:]
        expected = hmac.new(SECRET, nonce, hashlib.sha256).digest()[:16]
        return data.startswith(b"redacted:") and hmac.compare_digest(tag, expected)
    return block.signature is not None and hmac.compare_digest(block.signature, sign(block.text))


def _thought(request: ModelRequest, blocks: tuple[Block, ...]) -> str:
    results = sum(len(m.results) for m in request.messages)
    uses = [b for b in blocks if isinstance(b, ToolUseBlock)]
    seen = f"I have {results} tool result(s) so far. "
    if uses:
        calls = ", ".join(f"{u.name} with {sorted(u.input)}" for u in uses)
        return seen + f"I still need data, so next I call {calls}."
    return seen + "That is everything the question needs; time to write the answer."


def think(
    asked: Asked, request: ModelRequest, blocks: tuple[Block, ...], *, redacted: bool
) -> tuple[ReasoningBlock, ...]:
    """The reasoning the fake writes ahead of ``blocks`` on this turn (none if it does not
    think now: without interleaved thinking Claude thinks only when a user's turn starts)."""
    if asked.reasoning is None:
        return ()
    text = _thought(request, blocks)
    if asked.reasoning == "plain":
        return (ReasoningBlock(text, "bedrock"),)
    if request.messages[-1].results and not asked.every_turn:
        return ()
    hidden = (
        ReasoningBlock("", "bedrock", redacted=base64.b64encode(redacted_data(text)).decode()),
    )
    return (*(hidden if redacted else ()), ReasoningBlock(text, "bedrock", signature=sign(text)))


def _turn_start(messages: tuple[Message, ...]) -> int:
    """Index of the first assistant message of the turn in progress (after the last user
    message that is not tool results)."""
    starts = [i for i, m in enumerate(messages) if m.role == "user" and not m.results]
    return starts[-1] + 1 if starts else 1


def _kind(block: Block) -> str:
    return {"TextBlock": "text", "ToolUseBlock": "tool_use"}.get(type(block).__name__, "thinking")


def check_reasoning(asked: Asked, request: ModelRequest, max_tokens: int) -> None:
    """Claude's rules on thinking, as Bedrock reports them; raises ``Invalid``."""
    if asked.reasoning != "signed":
        return
    if asked.budget and asked.budget < 1024:
        raise Invalid(
            MODEL_ERRORS + "thinking.enabled.budget_tokens: Input should be greater than or "
            "equal to 1024"
        )
    if asked.budget and not asked.every_turn and max_tokens <= asked.budget:
        raise Invalid(
            MODEL_ERRORS + f"`max_tokens` must be greater than `thinking.budget_tokens`. {DOCS}"
        )
    if asked.temperature is not None and asked.temperature != 1:
        raise Invalid(
            MODEL_ERRORS + f"`temperature` may only be set to 1 when thinking is enabled. {DOCS}"
        )
    messages = request.messages
    start = _turn_start(messages)
    for i, message in enumerate(messages):
        for j, block in enumerate(message.content):
            if isinstance(block, ReasoningBlock) and not _intact(block):
                raise Invalid(
                    MODEL_ERRORS
                    + (
                        f"messages.{i}.content.{j}: thinking or redacted_thinking blocks in the "
                        "latest assistant message cannot be modified. These blocks must remain "
                        "as they were in the original response."
                        if i >= start
                        else f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                    )
                )
    if messages[-1].results and start < len(messages):
        first = messages[start].content[0] if messages[start].content else None
        if first is not None and not isinstance(first, ReasoningBlock):
            raise Invalid(
                MODEL_ERRORS + f"messages.{start}.content.0.type: Expected `thinking` or "
                f"`redacted_thinking`, but found `{_kind(first)}`. When `thinking` is enabled, a "
                "final `assistant` message must start with a thinking block (preceeding the "
                "lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
                "thinking blocks from previous turns. To avoid this requirement, disable "
                f"`thinking`. {DOCS}"
            )
