"""Containers: a sandbox session per container, owned by one API key, expiring when idle.

The record (owner, expiry, program history) lives in a ``RecordStore`` shared by replicas; the
live session lives in the replica that runs it, and only while the container needs one: a
request running in it, a program paused in it, or a recent use (``container_warm_s``). An idle
container gives its session back (after the warm time, or at once when its key needs room on
this replica) and, like one whose session this replica never held (after a restart, or behind a
plain load balancer), is rebuilt by re-running the recorded programs with their recorded tool
results. A key's limit counts its containers *in use*, across replicas (claims in the store),
so a key can have any number of conversations one after another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from openptc.proxy.config import ApiKey, ProxyConfig
from openptc.proxy.container_errors import (
    expired_container,
    limit_reached,
    lost_container,
    unknown_container,
)
from openptc.proxy.errors import ApiError
from openptc.proxy.metrics import ProxyMetrics
from openptc.proxy.program import Diverged, LiveProgram
from openptc.proxy.records import ContainerHistory, ProgramRecord
from openptc.proxy.store import RecordStore, StoredRecord
from openptc.proxy.store_watch import WatchedStore
from openptc.proxy.wire import Container
from openptc.sandbox.base import Sandbox, Session, ToolSignature

log = logging.getLogger("openptc.proxy")

REAP_INTERVAL_S = 5.0
STORE_GRACE_S = 60.0


def _logical_expiry(record: StoredRecord) -> float:
    """When the container itself expires (the store keeps its record a little longer)."""
    stored = ContainerHistory.model_validate_json(record.payload).expires_at
    return stored if stored is not None else record.expires_at


def new_id(prefix: str) -> str:
    """Unguessable ids: 192 random bits."""
    return f"{prefix}{secrets.token_urlsafe(24)}"


@dataclass
class LiveContainer:
    """A container as this replica holds it."""

    id: str
    owner: str
    history: ContainerHistory
    revision: int
    expires_at: float
    session: Session | None = None
    program: LiveProgram | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    restored: bool = False  # the session must be rebuilt from the history before use
    notice: str | None = None  # said to the model once, e.g. that state could not be restored
    limit: int = 32  # the owner key's max_containers
    users: int = 0  # requests using the container now (between ``use`` and ``done``)
    claimed: bool = False  # counted in the store as in use by its key, by this replica
    last_used: float = field(default_factory=time.monotonic)

    @property
    def idle(self) -> bool:
        """Nothing needs the session: no request in the container, no paused program."""
        return self.users == 0 and not self.lock.locked() and self.program is None

    def wire(self) -> Container:
        stamp = datetime.fromtimestamp(self.expires_at, UTC).isoformat().replace("+00:00", "Z")
        return Container(id=self.id, expires_at=stamp)


class ContainerManager:
    """Creates, finds, rebuilds, saves and reaps containers."""

    def __init__(
        self,
        config: ProxyConfig,
        store: RecordStore,
        sandbox: Sandbox,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics or ProxyMetrics()
        self._store = store if isinstance(store, WatchedStore) else WatchedStore(store)
        self._sandbox = sandbox
        self._live: dict[str, LiveContainer] = {}
        self._reaper: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever())

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for container in list(self._live.values()):
            await self._discard(container)

    @property
    def live_count(self) -> int:
        return len(self._live)

    @property
    def sessions_held(self) -> int:
        return sum(1 for c in self._live.values() if c.session is not None)

    @property
    def paused_count(self) -> int:
        """Programs waiting on their client's tool results (no request is running them)."""
        return sum(1 for c in self._live.values() if c.program is not None and not c.lock.locked())

    @property
    def store(self) -> WatchedStore:
        return self._store

    # -- in use ---------------------------------------------------------------------------------
    async def check_room(self, key: ApiKey) -> None:
        """Refuse early (before any output) a key already at its limit of containers in use;
        ``create`` checks again, atomically, when the container is made."""
        in_use = await self._store.in_use_by(key.owner)
        if len(in_use) >= key.max_containers:
            raise limit_reached(key.max_containers)

    def _lease_end(self) -> float:
        """How long a claim outlives a replica that dies holding it."""
        config = self._config
        return time.time() + config.container_idle_s + config.program_timeout_s + STORE_GRACE_S

    async def use(self, container: LiveContainer) -> None:
        """A request starts using the container: it is counted as in use by its key (a 429
        when the key already has its limit in use). Every ``use`` is paired with ``done``."""
        container.users += 1
        try:
            claimed = await self._store.claim_in_use(
                container.owner, container.id, until=self._lease_end(), limit=container.limit
            )
        except BaseException:
            container.users -= 1
            raise
        if not claimed:
            container.users -= 1
            raise limit_reached(container.limit)
        container.claimed = True

    async def done(self, container: LiveContainer) -> None:
        """A request left the container. Idle now, it no longer counts as in use (its session
        stays warm a while); a paused program keeps the claim, renewed for as long as it waits."""
        container.users -= 1
        container.last_used = time.monotonic()
        if container.users or not container.claimed or not self.is_current(container):
            return
        if container.program is None:
            await self._unclaim(container)
            return
        with contextlib.suppress(ApiError):  # the store is down: the lease runs on meanwhile
            await self._store.claim_in_use(
                container.owner, container.id, until=self._lease_end(), limit=container.limit
            )

    async def _unclaim(self, container: LiveContainer) -> None:
        if not container.claimed:
            return
        container.claimed = False
        with contextlib.suppress(ApiError):  # the store is down (said once); the lease runs out
            await self._store.release_in_use(
                container.owner, container.id, revision=container.revision
            )

    # -- finding --------------------------------------------------------------------------------
    async def create(self, key: ApiKey) -> LiveContainer:
        """A new container, in use by the calling request (pair with ``done``)."""
        now = time.time()
        container = LiveContainer(
            id=new_id("container_"),
            owner=key.owner,
            history=ContainerHistory(created_at=now),
            revision=0,
            expires_at=self._expiry(now),
            limit=key.max_containers,
        )
        await self.use(container)
        try:
            await self.save(container)
        except BaseException:
            container.users -= 1
            await self._unclaim(container)
            raise
        self._live[container.id] = container
        self._metrics.containers_created.inc()
        log.info("container created", extra={"container_id": container.id})
        return container

    async def open(self, container_id: str, key: ApiKey) -> LiveContainer:
        """The caller's container; another key's container is reported as not found."""
        record = await self._store.get(container_id)
        live = self._live.get(container_id)
        mine = live if live is not None and live.owner == key.owner else None
        if record is None and mine is not None and mine.expires_at > time.time():
            # This replica knows it had not expired: the store lost it.
            if mine.users == 0 and not mine.lock.locked():  # nothing can save it now
                await self._discard(mine)
            raise lost_container(container_id)
        if record is None or record.owner != key.owner:
            # Another key's request must not touch the owner's container, nor learn it exists.
            raise self._unknown(container_id)
        if _logical_expiry(record) <= time.time():  # left to the reaper: a request may hold it
            raise expired_container(container_id, self._config.container_idle_s)
        if live is not None:
            live.limit = key.max_containers
        if live is not None and live.revision == record.revision:
            return live
        if live is not None:  # another replica moved it on: this session is out of date
            if live.lock.locked():  # a request here still runs on it: let that one finish
                raise ApiError(
                    "conflict_error",
                    f"container '{container_id}' is in use by another request; send the "
                    "request again",
                )
            await self._discard(live)
        restored = LiveContainer(
            id=record.id,
            owner=record.owner,
            history=ContainerHistory.model_validate_json(record.payload),
            revision=record.revision,
            expires_at=_logical_expiry(record),
            restored=True,
            limit=key.max_containers,
        )
        self._live[container_id] = restored
        self._metrics.containers_restored.inc()
        log.info(
            "container restored from its record",
            extra={"container_id": container_id, "programs": len(restored.history.programs)},
        )
        return restored

    def _unknown(self, container_id: str) -> ApiError:
        return unknown_container(
            container_id,
            idle_s=self._config.container_idle_s,
            in_memory=self._store.in_memory,
            seen=self._store.what_was_seen(),
        )

    async def save(self, container: LiveContainer) -> None:
        """Store the container's history; lose a race with another replica as a 409."""
        container.expires_at = self._expiry(container.history.created_at, touched=time.time())
        container.history.holder = self._config.advertise_url
        container.history.expires_at = container.expires_at
        record = StoredRecord(
            id=container.id,
            owner=container.owner,
            revision=container.revision + 1,
            # The store keeps the record a while past the container's expiry, so a request
            # that outlasts the idle time can still save what it did.
            expires_at=container.expires_at + self._config.program_timeout_s + STORE_GRACE_S,
            payload=container.history.model_dump_json(),
        )
        expected = container.revision if container.revision else None
        if not await self._store.put(record, expected_revision=expected):
            await self._discard(container)
            if expected is not None and await self._store.get(container.id) is None:
                raise lost_container(container.id)
            raise ApiError(
                "conflict_error",
                f"container '{container.id}' was changed by another request at the same time; "
                "send the request again",
            )
        container.revision = record.revision

    def is_current(self, container: LiveContainer) -> bool:
        """Whether ``container`` is still this replica's live state for its id (a request that
        waited for the lock may find it discarded by the one before)."""
        return self._live.get(container.id) is container

    def _expiry(self, created_at: float, touched: float | None = None) -> float:
        idle_end = (touched or created_at) + self._config.container_idle_s
        return min(idle_end, created_at + self._config.container_max_age_s)

    # -- sessions -------------------------------------------------------------------------------
    async def session(
        self,
        container: LiveContainer,
        signatures: Callable[[ProgramRecord], list[ToolSignature]],
        new_call_id: Callable[[], str],
    ) -> Session:
        """The container's live session, rebuilt from its history when this replica has none."""
        if container.session is not None and not container.session.closed:
            return container.session
        await self._make_room(container)
        container.session = await self._sandbox.open_session()
        finished = [p for p in container.history.programs if p.finished]
        if container.restored and finished:
            await self._replay(container, finished, signatures, new_call_id)
        elif finished and not container.restored:
            container.notice = (
                "the container's interpreter was restarted, so variables from earlier programs "
                "are gone"
            )
        container.restored = False
        return container.session

    async def _replay(
        self,
        container: LiveContainer,
        finished: list[ProgramRecord],
        signatures: Callable[[ProgramRecord], list[ToolSignature]],
        new_call_id: Callable[[], str],
    ) -> None:
        """Re-run finished programs with their recorded results, to rebuild variables."""
        assert container.session is not None
        for record in finished:
            replay = LiveProgram(
                record.model_copy(deep=True),
                signatures(record),
                new_call_id=new_call_id,
                result_timeout_s=self._config.tool_result_timeout_s,
            )
            replay.start(container.session, self._config.program_timeout_s)
            event = await replay.next_event()
            if isinstance(event, Diverged):
                log.warning(  # the tool's name only: its arguments are the client's data
                    "container state could not be rebuilt",
                    extra={"container_id": container.id, "cause": event.cause, "tool": event.tool},
                )
                await replay.cancel()
                await container.session.close()
                container.session = await self._sandbox.open_session()
                container.history.programs = [
                    p for p in container.history.programs if not p.finished
                ]
                container.notice = (
                    "the container's earlier programs could not be re-run on this server "
                    f"({event.message}), so their variables are gone"
                )
                return

    async def forget(self, container: LiveContainer) -> None:
        """Drop this replica's live state (after a failed request); the record stays, so the
        next request rebuilds the container from what was last saved."""
        await self._discard(container)

    async def abandon_paused(self, container: LiveContainer) -> None:
        """The client moved on without answering a paused program: stop it, and rebuild the
        interpreter from the finished programs (a paused program cannot be cut out of a live
        one), so the variables they made are kept."""
        unfinished = [p for p in container.history.programs if not p.finished]
        if container.program is None and not unfinished:
            return
        await self._stop(container)
        container.history.programs = [p for p in container.history.programs if p.finished]
        container.restored = True
        log.info("paused program abandoned", extra={"container_id": container.id})

    async def reset(self, container: LiveContainer) -> None:
        """Start the container afresh: no program, no session, no history."""
        await self._stop(container)
        container.history.programs = []
        container.restored = False

    async def _make_room(self, needing: LiveContainer) -> None:
        """Keep a key's live sessions on this replica within its limit: the least recently used
        idle containers give theirs back first (they are rebuilt when used again); a paused one
        only when another replica has taken it over."""
        held = [
            c
            for c in self._live.values()
            if c.owner == needing.owner and c is not needing and c.session is not None
        ]
        excess = len(held) + 1 - needing.limit
        for victim in sorted((c for c in held if c.idle), key=lambda c: c.last_used):
            if excess <= 0:
                return
            await self._release(victim, "its key needed room")
            excess -= 1
        for paused in [c for c in held if c.program is not None and c.users == 0]:
            if excess <= 0 or paused.lock.locked():
                continue
            record = await self._store.get(paused.id)
            if record is None or record.revision != paused.revision:
                await self._release(paused, "another replica has taken it over")
                excess -= 1

    async def _release(self, container: LiveContainer, why: str) -> None:
        """Give the session back; the record stays, so the container is rebuilt when used."""
        await self._discard(container)
        log.info("container released its sandbox", extra={"container_id": container.id, "why": why})

    # -- expiry ---------------------------------------------------------------------------------
    async def _discard(self, container: LiveContainer) -> None:
        if self._live.get(container.id) is container:
            del self._live[container.id]
            await self._unclaim(container)
        await self._stop(container)

    @staticmethod
    async def _stop(container: LiveContainer) -> None:
        """Stop the container's program and close its session (killing its processes)."""
        if container.program is not None:
            await container.program.cancel()
            container.program = None
        if container.session is not None:
            with contextlib.suppress(Exception):
                await container.session.close()
            container.session = None

    async def reap(self) -> int:
        """Close containers whose time is up (their processes are killed with their sessions),
        and give back the sessions of containers idle for longer than the warm time."""
        now = time.time()
        expired = [
            c
            for c in self._live.values()
            if c.expires_at <= now and not c.lock.locked() and c.users == 0
        ]
        for container in expired:  # the store forgets the record by itself at its expiry
            await self._discard(container)
            log.info("container expired", extra={"container_id": container.id})
        cooled = time.monotonic() - self._config.container_warm_s
        idle = [c for c in self._live.values() if c.idle and c.last_used <= cooled]
        for container in idle:
            await self._release(container, "idle for longer than container_warm_s")
        return len(expired) + len(idle)

    async def _reap_forever(self) -> None:
        config = self._config
        interval = min(REAP_INTERVAL_S, config.container_idle_s / 2, config.container_warm_s / 2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._store.probe()
                await self.reap()
            except ApiError:
                pass  # the store is down: the watcher has said so once
            except Exception:
                log.exception("reaping containers failed")
