"""Which private strings reached a model: the measure of what PTC keeps out of its context.

A scenario with ``private`` data lists every personal string of its data set; the benchmark asks,
for each run, which of them appear anywhere the model could read them: the system prompt, the
tool specs, its own tool calls and every tool result. An exact substring search over all of it:
no sampling, so an empty list means the model never saw any of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from openptc.models.base import (
    Block,
    ModelRequest,
    ReasoningBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)


def _strings(value: Any) -> Iterator[str]:
    """Every string of a JSON-like value (keys too), unescaped: a quote in a name still matches."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def _block_strings(block: Block) -> Iterator[str]:
    if isinstance(block, TextBlock):
        yield block.text
    elif isinstance(block, ToolUseBlock):
        yield block.name
        yield from _strings(block.input)
        if block.raw_input is not None:
            yield block.raw_input
    elif isinstance(block, ToolResultBlock):
        yield block.content
    elif isinstance(block, ReasoningBlock):
        yield block.text


def context_text(request: ModelRequest) -> str:
    """Every string the model was given in one request, one per line.

    The system prompt, each tool spec (as JSON, and its strings unescaped), and every block of
    every message: text, tool calls with their arguments (a program's code), tool results and
    readable reasoning.
    """
    parts: list[str] = [request.system]
    for spec in request.tools:
        as_dict = {
            "name": spec.name,
            "description": spec.description,
            "input_schema": spec.input_schema,
        }
        parts.append(json.dumps(as_dict, ensure_ascii=False))
        parts.extend(_strings(as_dict))
    for message in request.messages:
        for block in message.content:
            parts.extend(_block_strings(block))
    return "\n".join(parts)


def leaked(requests: Sequence[ModelRequest], private: Sequence[str]) -> list[str]:
    """The private strings found in any request's context, each once, in the order given.

    A conversation travels whole with every request, so the distinct contexts are searched
    once each; empty strings are never reported (they would match anything).
    """
    contexts = "\n\x00\n".join(dict.fromkeys(context_text(r) for r in requests))
    found: list[str] = []
    seen: set[str] = set()
    for text in private:
        if text and text not in seen and text in contexts:
            found.append(text)
            seen.add(text)
    return found
