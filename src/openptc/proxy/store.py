"""Where container records live: in this process, or in Redis shared by several replicas.

A record is what a replica needs to take over a container it does not hold: its owner, its
expiry, and (in ``payload``, opaque here) the programs run so far with their tool results. Writes
are compare-and-set on ``revision``, so two replicas never both advance the same container.
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

    async def aclose(self) -> None: ...


class MemoryStore:
    """The default store: one process, records lost on restart."""

    def __init__(self) -> None:
        self._records: dict[str, StoredRecord] = {}
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

    async def aclose(self) -> None:
        self._records.clear()
