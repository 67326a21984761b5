"""What can go wrong when calling a model, in words that say what to do about it.

Adapters translate their SDK's exceptions into these, so the agent, the CLI and the retry
policy treat every provider alike. ``retryable`` and ``retry_after_s`` drive ``retry.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

_PASSWORD_IN_URL = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")


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


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from an error response's headers: ``retry-after-ms``, else ``retry-after``.

    ``headers`` must be case-insensitive (httpx's) or have lower-case keys.
    """
    millis = parse_retry_after(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    return parse_retry_after(headers.get("retry-after"))


def redact_url(url: str) -> str:
    """``url`` fit to show: a password in its userinfo becomes ``***``, the rest is kept.

    ``http://user:s3cr3t@host:8000/v1`` -> ``http://user:***@host:8000/v1``; a user name alone
    is often a token (``http://sk-123@host``), so it becomes ``***``. A URL without userinfo,
    or one that cannot be parsed, comes back unchanged.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if password is None:
        return urlunsplit(parts._replace(netloc=f"***@{hostport}"))
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def redact_urls_in(text: str) -> str:
    """``text`` (an SDK's error message, say) with every URL's password replaced by ``***``."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)
