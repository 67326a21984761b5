"""Token usage in the Anthropic fake, with a prompt cache that works as the API's does.

Input is counted like ``count_request_tokens``, plus the few tokens that open the model's turn
(``TURN_OPENING``): they come after every mark, so even a prompt cached whole reports a few
fresh input tokens, as the API does. The prompt is read in the API's order (tools,
system, messages); a ``cache_control`` mark ends a cacheable prefix. A marked prefix seen
before is read from the cache; a new one is written, minus what an earlier prefix already
covered (looked up as far as 20 parts back from a mark, as the API does with blocks). Prefixes
under 1024 tokens are not cached, and a change to the thinking settings misses for the
messages, as documented. Simplifications: a mark covers the whole message it is in, and the
system prompt is one part.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from openptc.models.base import Block, Message, ModelRequest, ModelResponse
from openptc.models.tokens import (
    count_message_tokens,
    count_response_tokens,
    count_spec_tokens,
    count_text,
)

Json = dict[str, Any]
MIN_CACHEABLE_TOKENS = 1024
TURN_OPENING = 3
LOOKBACK = 20


def _unmarked(value: Any) -> Any:
    """The value without its cache marks: moving a mark does not change the prefix."""
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def _key(value: Any) -> str:
    return json.dumps(_unmarked(value), sort_keys=True)


def _marked(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_marked(v) for v in value.values())
    if isinstance(value, list):
        return any(_marked(v) for v in value)
    return False


class Meter:
    """Usage of each call: fresh input, cache reads and writes, output. One per fake."""

    def __init__(self) -> None:
        self._cached: set[str] = set()
        self._messages: dict[str, int] = {}  # tokens of a message, counted once

    def usage(self, request: ModelRequest, content: tuple[Block, ...], body: Json) -> Json:
        parts = self._parts(request, body)
        hashes, totals = [], []
        chain, total = "", 0
        for key, tokens, _ in parts:
            chain = hashlib.sha256((chain + key).encode()).hexdigest()
            total += tokens
            hashes.append(chain)
            totals.append(total)
        marks = [i for i, (_, _, marked) in enumerate(parts) if marked]
        read = written = 0
        for mark in marks:
            for i in range(mark, max(mark - LOOKBACK, -1), -1):
                if hashes[i] in self._cached:
                    read = max(read, totals[i])
                    break
        if marks and totals[marks[-1]] >= MIN_CACHEABLE_TOKENS:
            written = totals[marks[-1]] - read
        self._cached.update(hashes[m] for m in marks if totals[m] >= MIN_CACHEABLE_TOKENS)
        output = count_response_tokens(ModelResponse(content, "end_turn", None, "fake"))
        return {
            "input_tokens": total + TURN_OPENING - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "output_tokens": max(output, 1),
            "service_tier": "standard",
        }

    def _parts(self, request: ModelRequest, body: Json) -> list[tuple[str, int, bool]]:
        """(key, tokens, marked) of each part of the prompt, in the order the cache reads."""
        parts = [
            (_key(wired), count_spec_tokens(spec), _marked(wired))
            for wired, spec in zip(body.get("tools", []), request.tools, strict=True)
        ]
        system = body.get("system")
        if system:
            parts.append((_key(system), count_text(request.system), _marked(system)))
        thinking = json.dumps(body.get("thinking"), sort_keys=True)
        for wired, parsed in zip(body["messages"], request.messages, strict=True):
            parts.append((thinking + _key(wired), self._message(wired, parsed), _marked(wired)))
        return parts

    def _message(self, wired: Json, parsed: Message) -> int:
        key = _key(wired)
        if key not in self._messages:
            self._messages[key] = count_message_tokens(parsed)
        return self._messages[key]
