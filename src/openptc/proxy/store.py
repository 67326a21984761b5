"""Where container records live: in this process, or in Redis shared by several replicas.

A record is what a replica needs to take over a container it does not hold: its owner, its
expiry, and (in ``payload``, opaque here) the programs run so far with their tool results. Writes
are compare-and-set on ``revision``, so two replicas never both advance the same container.

Apart from the records, a store counts each owner's containers *in use* (a request running in
them, or a program paused waiting for tool results): that, not how many records an owner has,
is what a key's container limit bounds, on every replica at once. A claim is a lease, so a
replica that dies without releasing its claims frees them when the lease runs out.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StoredRecord:
    """One container as stored: ``payload`` is the JSON of its program history."""

    id: str
    owner: str
    revision: int
    expires_at: float  # unix time; the store forgets the record after it
    payload: str


class OwnerLimitReached(Exception):
    """The owner already holds as many live records as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the owner already holds {limit} live records")
        self.limit = limit


class StoreUnavailable(Exception):
    """The record store cannot be reached, or refuses to serve; the message says where and what
    to do about it."""


@runtime_checkable
class RecordStore(Protocol):
    """Container records, shared by every replica that uses the same store."""

    async def get(self, container_id: str) -> StoredRecord | None:
        """The record, or None when there is none or it has expired."""
        ...

    async def put(
        self,
        record: StoredRecord,
        *,
        expected_revision: int | None,
        max_owned: int | None = None,
    ) -> bool:
        """Write atomically if the stored revision is ``expected_revision`` (None: no record
        may exist yet). False when another writer got there first. A new record whose owner
        already holds ``max_owned`` live records raises ``OwnerLimitReached`` instead, checked
        in the same atomic step (replicas cannot race past a key's limit)."""
        ...

    async def delete(self, container_id: str) -> None: ...

    async def owned_by(self, owner: str) -> list[str]:
        """Ids of the owner's containers that have not expired (for per-key limits)."""
        ...

    async def claim_in_use(
        self, owner: str, container_id: str, *, until: float, limit: int
    ) -> bool:
        """Count the container as in use by ``owner`` until ``until`` (unix time), renewing the
        lease if it is counted already. False, and nothing changed, when the owner already has
        ``limit`` other containers in use; checked in the same atomic step as the claim."""
        ...

    async def release_in_use(self, owner: str, container_id: str, *, revision: int) -> None:
        """Stop counting the container as in use, unless its record has moved past ``revision``
        (another replica has taken it over and holds the claim now)."""
        ...

    async def in_use_by(self, owner: str) -> list[str]:
        """Ids of the owner's containers in use (claims whose lease has not run out)."""
        ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """The default store: one process, records lost on restart."""

    def __init__(self) -> None:
        self._records: dict[str, StoredRecord] = {}
        self._in_use: dict[str, dict[str, float]] = {}  # owner -> container id -> lease end
        self._lock = asyncio.Lock()

    def _live(self, container_id: str) -> StoredRecord | None:
        record = self._records.get(container_id)
        if record is not None and record.expires_at <= time.time():
            del self._records[container_id]
            return None
        return record

    async def get(self, container_id: str) -> StoredRecord | None:
        return self._live(container_id)

    async def put(
        self,
        record: StoredRecord,
        *,
        expected_revision: int | None,
        max_owned: int | None = None,
    ) -> bool:
        async with self._lock:
            current = self._live(record.id)
            found = None if current is None else current.revision
            if found != expected_revision:
                return False
            creating = current is None and max_owned is not None
            if creating and len(await self.owned_by(record.owner)) >= (max_owned or 0):
                raise OwnerLimitReached(max_owned or 0)
            self._records[record.id] = replace(record)
            return True

    async def delete(self, container_id: str) -> None:
        self._records.pop(container_id, None)

    async def owned_by(self, owner: str) -> list[str]:
        return [r.id for r in list(self._records.values()) if self._live(r.id) and r.owner == owner]

    def _claims(self, owner: str) -> dict[str, float]:
        now = time.time()
        claims = self._in_use.setdefault(owner, {})
        for container_id in [c for c, until in claims.items() if until <= now]:
            del claims[container_id]
        return claims

    async def claim_in_use(
        self, owner: str, container_id: str, *, until: float, limit: int
    ) -> bool:
        claims = self._claims(owner)
        if container_id not in claims and len(claims) >= limit:
            return False
        claims[container_id] = until
        return True

    async def release_in_use(self, owner: str, container_id: str, *, revision: int) -> None:
        record = self._live(container_id)
        if record is None or record.revision == revision:
            self._claims(owner).pop(container_id, None)

    async def in_use_by(self, owner: str) -> list[str]:
        return list(self._claims(owner))

    async def aclose(self) -> None:
        self._records.clear()
        self._in_use.clear()
