"""Token counts for models that report no usage (the scripted model, some local servers).

A real tokenizer, not a character heuristic, so PTC and direct figures stay comparable. The
encoding is OpenAI's ``cl100k_base``, run by ``tiktoken``; its BPE file ships inside openptc
(``models/data``) and is checked against the SHA-256 that tiktoken itself pins for it, so
counting never touches the network and no third-party repackaging is trusted.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable
from importlib import resources

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

ENCODING_NAME = "cl100k_base"
BPE_FILE = "data/cl100k_base.tiktoken"
BPE_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
"""The hash ``tiktoken_ext.openai_public`` expects of the file it would download."""
# cl100k_base's split pattern and special tokens, as tiktoken_ext.openai_public defines them.
_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def _mergeable_ranks() -> dict[bytes, int]:
    data = resources.files("openptc.models").joinpath(BPE_FILE).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != BPE_SHA256:
        raise RuntimeError(
            f"openptc's {BPE_FILE} has SHA-256 {digest}, not {BPE_SHA256}: the installed package "
            "is damaged; reinstall openptc"
        )
    pairs = (line.split() for line in data.splitlines() if line)
    return {base64.b64decode(token): int(rank) for token, rank in pairs}


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The tokenizer, loaded on first use and then kept for the life of the process."""
    return tiktoken.Encoding(
        ENCODING_NAME,
        pat_str=_PATTERN,
        mergeable_ranks=_mergeable_ranks(),
        special_tokens=_SPECIAL_TOKENS,
    )


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
