"""The record store as the rest of the proxy sees it: an outage is one clear 503, logged once.

A Redis that stops answering must not turn every request into a 500 with a traceback per
request. Every store call goes through ``WatchedStore``: while the store cannot be reached, a
request that needs it gets a 503 in the API's shape that says so and to retry; the log says when
the outage began (once) and when the store is back, with how long it was gone. A periodic probe
also notices a store that restarted between two requests (its instance id changed). What was
seen is kept, so that the 404 for an unknown container can say that the store may have lost it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol, TypeVar, runtime_checkable

from openptc.proxy.errors import ApiError
from openptc.proxy.store import MemoryStore, RecordStore, StoredRecord, StoreUnavailable

log = logging.getLogger("openptc.proxy")

T = TypeVar("T")
RETRY_AFTER_S = 2


@runtime_checkable
class ProbedStore(Protocol):
    """A store that can say which server instance answers and whether it keeps its data."""

    async def instance(self) -> str: ...

    async def persistence(self) -> str | None: ...


def store_unavailable() -> ApiError:
    """What a client is told while the store is down: retryable, and what it means."""
    return ApiError(
        "api_error",
        "the container store is unreachable, so this proxy can neither read nor save "
        "containers until it is back; nothing was saved. Send the same request again in a few "
        "seconds.",
        status=503,
        headers={"retry-after": str(RETRY_AFTER_S)},
    )


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class WatchedStore:
    """A ``RecordStore`` whose failures are a 503 for clients and two log lines per outage."""

    def __init__(self, inner: RecordStore) -> None:
        self.inner = inner
        self._down_since: float | None = None
        self._refused = 0  # calls failed during the current outage
        self._instance: str | None = None
        self._seen: str | None = None  # the latest outage or restart, in words

    @property
    def reachable(self) -> bool:
        return self._down_since is None

    @property
    def in_memory(self) -> bool:
        return isinstance(self.inner, MemoryStore)

    def what_was_seen(self) -> str | None:
        """The latest outage or restart of the store this proxy saw, for error messages."""
        return self._seen

    async def _call(self, operation: Awaitable[T]) -> T:
        try:
            result = await operation
        except StoreUnavailable as exc:
            self._went_down(exc)
            raise store_unavailable() from None
        self._came_back()
        return result

    def _went_down(self, exc: StoreUnavailable) -> None:
        self._refused += 1
        if self._down_since is not None:
            log.debug("container store still unreachable", extra={"reason": str(exc)})
            return
        self._down_since = time.time()
        log.error(
            "container store unreachable: requests that need it get 503 until it is back",
            extra={"reason": str(exc)},
        )

    def _came_back(self) -> None:
        if self._down_since is None:
            return
        began, self._down_since = self._down_since, None
        self._seen = (
            f"the container store was unreachable from {_stamp(began)} to {_stamp(time.time())}"
        )
        log.warning(
            "container store reachable again",
            extra={"down_s": round(time.time() - began, 1), "failed_calls": self._refused},
        )
        self._refused = 0

    # -- probes ---------------------------------------------------------------------------------
    async def probe(self) -> None:
        """Check the store now (the reaper calls this): an outage is noticed, and its end logged,
        without waiting for a request; a restart between two probes is noticed by its id."""
        if not isinstance(self.inner, ProbedStore):
            return
        try:
            current = await self._call(self.inner.instance())
        except ApiError:
            return
        if current and self._instance and current != self._instance:
            self._seen = f"the container store restarted (noticed at {_stamp(time.time())})"
            log.warning(
                "container store restarted: containers it had not persisted are gone "
                "(see docs/proxy.md on running Redis with persistence)"
            )
        self._instance = current or self._instance

    async def check_at_startup(self) -> None:
        """Say at once when the store is down, or keeps nothing over its own restart."""
        await self.probe()
        if not isinstance(self.inner, ProbedStore) or not self.reachable:
            return
        try:
            lacking = await self._call(self.inner.persistence())
        except ApiError:
            return
        if lacking is not None:
            log.warning(
                f"the container store does not persist its data ({lacking}): a restart of it "
                "loses every container; see docs/proxy.md for appendonly/RDB settings"
            )

    # -- the RecordStore protocol, each call watched ---------------------------------------------
    async def get(self, container_id: str) -> StoredRecord | None:
        return await self._call(self.inner.get(container_id))

    async def put(
        self,
        record: StoredRecord,
        *,
        expected_revision: int | None,
        max_owned: int | None = None,
    ) -> bool:
        return await self._call(
            self.inner.put(record, expected_revision=expected_revision, max_owned=max_owned)
        )

    async def delete(self, container_id: str) -> None:
        await self._call(self.inner.delete(container_id))

    async def owned_by(self, owner: str) -> list[str]:
        return await self._call(self.inner.owned_by(owner))

    async def claim_in_use(
        self, owner: str, container_id: str, *, until: float, limit: int
    ) -> bool:
        return await self._call(
            self.inner.claim_in_use(owner, container_id, until=until, limit=limit)
        )

    async def release_in_use(self, owner: str, container_id: str, *, revision: int) -> None:
        await self._call(self.inner.release_in_use(owner, container_id, revision=revision))

    async def in_use_by(self, owner: str) -> list[str]:
        return await self._call(self.inner.in_use_by(owner))

    async def aclose(self) -> None:
        await self.inner.aclose()
