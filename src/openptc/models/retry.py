"""One retry policy for every provider: bounded, exponential, honouring ``Retry-After``.

The SDKs' own retries are switched off in the adapters so that this is the only policy, it is
the same everywhere, and its behaviour is tested once through every real client.

A streamed call is retried only until its first text reached the reader: the adapters hand
their ``on_text`` through a ``ShownText`` and pass it as ``with_retries(..., shown=...)``, so
once a piece of the answer was shown, an error is final (a retry would show the text again).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from openptc.models.base import TextSink
from openptc.models.errors import ModelError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts the first try; delays double from ``base_delay_s`` up to the cap.

    A provider's ``Retry-After`` is honoured up to ``max_retry_after_s``, a cap of its own:
    asking again sooner than the provider said would only be refused again.
    """

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, error: ModelError) -> float:
        """Wait before retry number ``attempt`` (1-based): the provider's word, else backoff."""
        if error.retry_after_s is not None:
            return min(error.retry_after_s, self.max_retry_after_s)
        backoff = self.base_delay_s * 2.0 ** (attempt - 1)
        return min(backoff * (0.5 + random.random() / 2), self.max_delay_s)


class ShownText:
    """Wraps a stream's ``on_text`` and remembers whether any text reached the reader."""

    def __init__(self, on_text: TextSink) -> None:
        self._on_text = on_text
        self.shown = False

    def __call__(self, text: str) -> None:
        if text:
            self.shown = True
        self._on_text(text)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[ModelError, float], None] | None = None,
    shown: ShownText | None = None,
) -> T:
    """Run ``call``; retry it while it raises a retryable ``ModelError``, at most as allowed.

    With ``shown``, an error after text was shown is final: it is raised marked not retryable.
    """
    attempt = 1
    while True:
        try:
            return await call()
        except ModelError as error:
            if shown is not None and shown.shown:
                error.retryable = False  # the reader saw part of this answer already
                raise
            if not error.retryable or attempt >= policy.attempts:
                raise
            wait = policy.delay(attempt, error)
            if on_retry is not None:
                on_retry(error, wait)
            await asyncio.sleep(wait)
            attempt += 1
