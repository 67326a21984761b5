"""What can go wrong when calling a model, in words that say what to do about it.

Adapters translate their SDK's exceptions into these, so the agent, the CLI and the retry
policy treat every provider alike. ``retryable`` and ``retry_after_s`` drive ``retry.py``.
"""

from __future__ import annotations


class ModelError(Exception):
    """A model could not produce a response (provider error, exhausted script, bad output)."""

    retryable: bool = False

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after_s: float | None = None


class ModelAuthError(ModelError):
    """Missing or rejected credentials (401/403): retrying cannot help."""


class ModelBadRequest(ModelError):
    """The provider rejected the request (400/404/422); its own message is kept."""


class ModelConnectionError(ModelError):
    """The endpoint could not be reached (refused, DNS, TLS, timeout)."""

    retryable = True


class ModelRateLimited(ModelError):
    """429 or the provider's throttling error; ``retry_after_s`` when the provider said."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = 429,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after_s = retry_after_s


class ModelServerError(ModelError):
    """5xx or an overloaded provider: transient, retried."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = 500,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``-style) header; None if unusable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from model APIs, fall back to backoff
    return max(0.0, seconds)
