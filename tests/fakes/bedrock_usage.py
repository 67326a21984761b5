"""What the fake Bedrock bills: input tokens counted as openptc counts them, and a prompt cache.

Tokens are counted with ``openptc.models.tokens``, as a provider counts its own, each message
once (a direct-mode run re-sends thousands of records on every call). The prompt cache keeps
the prefixes a request marked (``cachePoint``, ``cache_control``) once they reach the minimum
size: a later request starting with a kept prefix reads it (the longest one, looked up at every
segment boundary as Anthropic's cache does), and what it marks beyond that is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from openptc.models import Message, ModelRequest
from openptc.models.tokens import count_message_tokens, count_spec_tokens, count_text

MINIMUM_CACHED_TOKENS = 1024
"""Claude's smallest cacheable prefix (1,024 tokens for most models); shorter ones are not kept."""
UNSUPPORTED = (
    "You invoked an unsupported model or your request did not allow prompt caching. See the "
    "documentation for more information."
)
_CACHING_MODELS = re.compile(
    r"claude-(3-5-haiku|3-7-sonnet|(sonnet|opus|haiku)-[4-9])|nova-(micro|lite|pro|premier)-"
)


def caches(model_id: str) -> bool:
    """Whether this fake lets ``model_id`` use prompt caching (Bedrock's list, said its way)."""
    return _CACHING_MODELS.search(model_id) is not None


Segment = tuple[str, int]
"""One cacheable piece of a request: its content (as a key) and its tokens."""


@dataclass
class TokenMeter:
    """Input tokens exactly as ``count_request_tokens`` counts them, each message tokenized once."""

    seen: dict[str, int] = field(default_factory=dict)

    def input_tokens(self, request: ModelRequest) -> int:
        return sum(tokens for _, tokens in self.segments(request))

    def segments(self, request: ModelRequest, *, tools_first: bool = False) -> list[Segment]:
        """System, tools and each message (Anthropic's own order puts the tools first)."""
        system = (request.system, count_text(request.system))
        specs = [asdict(t) for t in request.tools]
        tools = (json.dumps(specs), sum(count_spec_tokens(t) for t in request.tools))
        fixed = [tools, system] if tools_first else [system, tools]
        return fixed + [(repr(m), self._message(m)) for m in request.messages]

    def _message(self, message: Message) -> int:
        key = repr(message)
        if key not in self.seen:
            self.seen[key] = count_message_tokens(message)
        return self.seen[key]


@dataclass
class PromptCache:
    """Prefixes kept by earlier requests, by the hash of their content."""

    kept: set[str] = field(default_factory=set)

    def account(self, segments: Sequence[Segment], checkpoints: Sequence[int]) -> tuple[int, int]:
        """Tokens (read, written) for a request marking ``checkpoints`` (prefix lengths)."""
        if not checkpoints:
            return 0, 0
        keys, sizes, digest, total = [], [], hashlib.sha256(), 0
        for content, tokens in segments:
            digest.update(content.encode() + b"\x00")
            total += tokens
            keys.append(digest.hexdigest())
            sizes.append(total)
        last = max(checkpoints)
        read = max(
            (sizes[n - 1] for n in range(1, last + 1) if keys[n - 1] in self.kept), default=0
        )
        written = 0
        for n in sorted(checkpoints):
            if sizes[n - 1] >= MINIMUM_CACHED_TOKENS and keys[n - 1] not in self.kept:
                self.kept.add(keys[n - 1])
                written = sizes[n - 1] - read
        return read, max(written, 0)
