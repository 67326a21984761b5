"""Per-call accounting of a model: what each call read and wrote, and what caching would save.

``MeteredModel`` wraps any model (scripted, recorded or real) and keeps one ``CallRecord`` per
call, with the provider's usage when it reports one and tiktoken's count when it does not. A
scripted model reports no cache, so ``billed_tokens`` prices it as a provider with prompt
caching would bill it (``simulated_cache``), and says that it did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from openptc.bench.prices import Price, Tokens
from openptc.models.base import (
    Model,
    ModelRequest,
    ModelResponse,
    TextSink,
    ToolResultBlock,
    close_model,
)
from openptc.models.tokens import (
    count_message_tokens,
    count_response_tokens,
    count_spec_tokens,
    count_text,
)

MIN_CACHEABLE_TOKENS = 1024
"""The smallest cacheable prompt of most models (Anthropic's Sonnet, OpenAI's): shorter prompts
are not cached; a price row may say otherwise (Opus 4.5 and Haiku 4.5 need 4,096)."""
LOOKBACK_BLOCKS = 20
"""Anthropic looks for an earlier cache entry up to about 20 content blocks before a breakpoint:
a turn that adds more (a reply with 40 parallel tool results) misses, and writes it all anew."""

CacheSource = Literal["reported", "simulated"]


@dataclass(frozen=True)
class CallRecord:
    """One model call: tokens in (all of them) and out, and where the counts come from."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reported: bool
    """True when the provider reported usage; False when tiktoken counted it."""
    extends_previous: bool
    """True when the request is the previous request plus new messages (a cacheable prefix)."""
    tool_result_bytes: int
    """Bytes of tool results in this request's context."""
    duration_s: float
    """The model's own time; the benchmark's token counting is not in it."""
    new_blocks: int = 0
    """Content blocks added since the previous request (all of them for the first)."""


def _result_bytes(request: ModelRequest) -> int:
    return sum(
        len(block.content.encode())
        for message in request.messages
        for block in message.content
        if isinstance(block, ToolResultBlock)
    )


class MeteredModel:
    """A model that keeps a ``CallRecord`` per call and every request it was sent."""

    def __init__(self, inner: Model) -> None:
        self._inner = inner
        self.calls: list[CallRecord] = []
        self.requests: list[ModelRequest] = []
        self._message_tokens: list[int] = []  # of the previous request, to count only new ones
        self._fixed_tokens = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def label(self) -> str:
        return self._inner.label

    async def aclose(self) -> None:
        await close_model(self._inner)

    async def generate(
        self, request: ModelRequest, *, on_text: TextSink | None = None
    ) -> ModelResponse:
        previous = self.requests[-1] if self.requests else None
        extends = (
            previous is not None
            and previous.system == request.system
            and previous.tools == request.tools
            and request.messages[: len(previous.messages)] == previous.messages
        )
        self.requests.append(request)
        started = time.perf_counter()
        response = await self._inner.generate(request, on_text=on_text)
        took = time.perf_counter() - started
        usage = response.usage
        kept = len(previous.messages) if previous is not None and extends else 0
        new_blocks = sum(len(m.content) for m in request.messages[kept:])
        if usage is not None:
            read, write = usage.cache_read_tokens, usage.cache_write_tokens
            total_in, out = usage.input_tokens + read + write, usage.output_tokens
        else:
            read = write = 0
            total_in, out = self._count(request, kept), count_response_tokens(response)
        self.calls.append(
            CallRecord(
                input_tokens=total_in,
                output_tokens=out,
                cache_read_tokens=read,
                cache_write_tokens=write,
                reported=usage is not None,
                extends_previous=extends,
                tool_result_bytes=_result_bytes(request),
                duration_s=took,
                new_blocks=new_blocks,
            )
        )
        return response

    def _count(self, request: ModelRequest, kept: int) -> int:
        """tiktoken's count of a request, counting only the messages new since the previous
        one (a conversation of 50 calls would otherwise be counted 50 times over)."""
        if kept == 0:
            self._fixed_tokens = count_text(request.system) + sum(
                count_spec_tokens(s) for s in request.tools
            )
        self._message_tokens = self._message_tokens[:kept] + [
            count_message_tokens(m) for m in request.messages[kept:]
        ]
        return self._fixed_tokens + sum(self._message_tokens)


def simulated_cache(
    calls: Sequence[CallRecord],
    min_tokens: int = MIN_CACHEABLE_TOKENS,
    lookback_blocks: int | None = LOOKBACK_BLOCKS,
) -> list[Tokens]:
    """Each call billed as with a cache breakpoint on the last message of every request (what
    openptc's Anthropic adapter sends): a call reads the previous request's prompt from the
    cache when it extends it, that prompt was long enough to be cached, and no more than
    ``lookback_blocks`` blocks were added since (None: no such limit); it writes the rest.
    One run at a time: nothing is assumed cached from an earlier run.
    """
    billed: list[Tokens] = []
    previous = 0
    for call in calls:
        found = lookback_blocks is None or call.new_blocks <= lookback_blocks
        hit = call.extends_previous and found and previous >= min_tokens
        read = previous if hit else 0
        rest = call.input_tokens - read
        cacheable = call.input_tokens >= min_tokens
        billed.append(Tokens(0 if cacheable else rest, read, rest if cacheable else 0,
                             call.output_tokens))  # fmt: skip
        previous = call.input_tokens
    return billed


def billed_tokens(calls: Sequence[CallRecord], price: Price) -> tuple[list[Tokens], CacheSource]:
    """Per-call billing: as the provider reported it when every call had usage, else simulated
    with the price row's caching rules."""
    if calls and all(c.reported for c in calls):
        return [
            Tokens(
                c.input_tokens - c.cache_read_tokens - c.cache_write_tokens,
                c.cache_read_tokens,
                c.cache_write_tokens,
                c.output_tokens,
            )
            for c in calls
        ], "reported"
    return simulated_cache(calls, price.cache_min_tokens, price.cache_lookback_blocks), "simulated"


def total(tokens: Sequence[Tokens]) -> Tokens:
    return Tokens(
        sum(t.fresh_input for t in tokens),
        sum(t.cache_read for t in tokens),
        sum(t.cache_write for t in tokens),
        sum(t.output for t in tokens),
    )
