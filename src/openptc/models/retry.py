"""One retry policy for every provider: bounded, exponential, honouring ``Retry-After``.

The SDKs' own retries are switched off in the adapters so that this is the only policy, it is
the same everywhere, and its behaviour is tested once through every real client.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from openptc.models.errors import ModelError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts the first try; delays double from ``base_delay_s`` up to the cap."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, error: ModelError) -> float:
        """Wait before retry number ``attempt`` (1-based): the provider's word, else backoff."""
        if error.retry_after_s is not None:
            return min(error.retry_after_s, self.max_delay_s)
        backoff = self.base_delay_s * 2.0 ** (attempt - 1)
        return min(backoff * (0.5 + random.random() / 2), self.max_delay_s)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[ModelError, float], None] | None = None,
) -> T:
    """Run ``call``; retry it while it raises a retryable ``ModelError``, at most as allowed."""
    attempt = 1
    while True:
        try:
            return await call()
        except ModelError as error:
            if not error.retryable or attempt >= policy.attempts:
                raise
            wait = policy.delay(attempt, error)
            if on_retry is not None:
                on_retry(error, wait)
            await asyncio.sleep(wait)
            attempt += 1
