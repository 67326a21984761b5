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

from openptc.bench.prices import Tokens
from openptc.models.base import (
    Model,
    ModelRequest,
    ModelResponse,
    TextSink,
    ToolResultBlock,
    close_model,
)
from openptc.models.tokens import count_request_tokens, count_response_tokens

MIN_CACHEABLE_TOKENS = 1024
"""Anthropic's smallest cacheable prefix for Sonnet and Opus; shorter prompts are not cached."""

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
        if usage is not None:
            read, write = usage.cache_read_tokens, usage.cache_write_tokens
            total_in, out = usage.input_tokens + read + write, usage.output_tokens
        else:
            read = write = 0
            total_in, out = count_request_tokens(request), count_response_tokens(response)
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
            )
        )
        return response


def simulated_cache(calls: Sequence[CallRecord]) -> list[Tokens]:
    """Each call billed as with a cache breakpoint on the last message of every request (what
    openptc's Anthropic adapter sends): a call reads the previous request's prompt from the
    cache when it extends it and that prompt was long enough to be cached, and writes the rest.
    One run at a time: nothing is assumed cached from an earlier run.
    """
    billed: list[Tokens] = []
    previous = 0
    for call in calls:
        read = previous if call.extends_previous and previous >= MIN_CACHEABLE_TOKENS else 0
        rest = call.input_tokens - read
        cacheable = call.input_tokens >= MIN_CACHEABLE_TOKENS
        billed.append(Tokens(0 if cacheable else rest, read, rest if cacheable else 0,
                             call.output_tokens))  # fmt: skip
        previous = call.input_tokens
    return billed


def billed_tokens(calls: Sequence[CallRecord]) -> tuple[list[Tokens], CacheSource]:
    """Per-call billing: as the provider reported it when every call had usage, else simulated."""
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
    return simulated_cache(calls), "simulated"


def total(tokens: Sequence[Tokens]) -> Tokens:
    return Tokens(
        sum(t.fresh_input for t in tokens),
        sum(t.cache_read for t in tokens),
        sum(t.cache_write for t in tokens),
        sum(t.output for t in tokens),
    )
