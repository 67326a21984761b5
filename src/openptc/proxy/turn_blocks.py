"""What the client sees of one backend response: its reasoning and text, in the backend's order.

When the client streams and the backend's text was passed on while it was written, the text is
already out when the response (with its reasoning) is complete: the reasoning then follows it,
marked as moved, so that reading the history back puts it first again (``proxy.reasoning``).
"""

from __future__ import annotations

from collections.abc import Sequence

from openptc.models.base import Block, ReasoningBlock, TextBlock
from openptc.proxy.reasoning import ReasoningContent, to_content
from openptc.proxy.wire import TextContent


def client_block(
    blocks: Sequence[Block], index: int, streamed: bool
) -> TextContent | ReasoningContent | None:
    """``blocks[index]`` for the client: reasoning, or text unless ``streamed`` (sent already);
    None for anything else (tool uses are the turn runner's)."""
    block = blocks[index]
    if isinstance(block, ReasoningBlock):
        later = blocks[index + 1 :]
        moved = streamed and any(isinstance(b, TextBlock) and b.text for b in later)
        return to_content(block, moved=moved)
    if isinstance(block, TextBlock) and block.text and not streamed:
        return TextContent(text=block.text)
    return None


def before(blocks: Sequence[Block], stop: Block) -> list[Block]:
    """The blocks ahead of ``stop`` (found by identity: equal tool uses may repeat)."""
    found: list[Block] = []
    for block in blocks:
        if block is stop:
            break
        found.append(block)
    return found


def kept(blocks: Sequence[Block]) -> tuple[Block, ...]:
    """Reasoning and text, as the backend's own view of its turn keeps them."""
    return tuple(
        b for b in blocks if isinstance(b, ReasoningBlock) or (isinstance(b, TextBlock) and b.text)
    )
