"""Containers: a sandbox session per container, owned by one API key, expiring when idle.

The record (owner, expiry, program history) lives in a ``RecordStore`` shared by replicas; the
live session lives in the replica that runs it. A replica asked for a container whose live
session it does not hold (after a restart, or behind a plain load balancer) rebuilds it by
re-running the recorded programs with their recorded tool results.
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
from openptc.proxy.errors import ApiError, not_found
from openptc.proxy.program import Diverged, LiveProgram
from openptc.proxy.records import ContainerHistory, ProgramRecord
from openptc.proxy.store import OwnerLimitReached, RecordStore, StoredRecord
from openptc.proxy.wire import Container
from openptc.sandbox.base import Sandbox, Session, ToolSignature

log = logging.getLogger("openptc.proxy")

REAP_INTERVAL_S = 5.0
STORE_GRACE_S = 60.0


def _limit_reached(key: ApiKey) -> ApiError:
    return ApiError(
        "rate_limit_error",
        f"this API key already holds its limit of {key.max_containers} containers; "
        "reuse one with `container`, or wait for one to expire",
    )


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

    def wire(self) -> Container:
        stamp = datetime.fromtimestamp(self.expires_at, UTC).isoformat().replace("+00:00", "Z")
        return Container(id=self.id, expires_at=stamp)


class ContainerManager:
    """Creates, finds, rebuilds, saves and reaps containers."""

    def __init__(self, config: ProxyConfig, store: RecordStore, sandbox: Sandbox) -> None:
        self._config = config
        self._store = store
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

    # -- finding --------------------------------------------------------------------------------
    async def check_room(self, key: ApiKey) -> None:
        """Refuse early (before any output) a key already at its container limit; ``create``
        checks again, atomically, when the container is made."""
        held = await self._store.owned_by(key.owner)
        if len(held) >= key.max_containers:
            raise _limit_reached(key)

    async def create(self, key: ApiKey) -> LiveContainer:
        now = time.time()
        container = LiveContainer(
            id=new_id("container_"),
            owner=key.owner,
            history=ContainerHistory(created_at=now),
            revision=0,
            expires_at=self._expiry(now),
        )
        try:
            await self.save(container, max_owned=key.max_containers)
        except OwnerLimitReached:
            raise _limit_reached(key) from None
        self._live[container.id] = container
        log.info("container created", extra={"container_id": container.id})
        return container

    async def open(self, container_id: str, key: ApiKey) -> LiveContainer:
        """The caller's container; another key's container is reported as not found."""
        record = await self._store.get(container_id)
        expired = record is not None and _logical_expiry(record) <= time.time()
        if record is None or record.owner != key.owner or expired:
            # Another key's request must not touch the owner's container; an expired one is
            # left to the reaper (a request may still hold it).
            raise not_found(
                f"container '{container_id}' was not found; containers expire after "
                f"{self._config.container_idle_s:g} s without use. Leave out `container` to "
                "start a new one."
            )
        live = self._live.get(container_id)
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
        )
        self._live[container_id] = restored
        log.info(
            "container restored from its record",
            extra={"container_id": container_id, "programs": len(restored.history.programs)},
        )
        return restored

    async def save(self, container: LiveContainer, *, max_owned: int | None = None) -> None:
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
        if not await self._store.put(record, expected_revision=expected, max_owned=max_owned):
            await self._discard(container)
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

    # -- expiry ---------------------------------------------------------------------------------
    async def _discard(self, container: LiveContainer) -> None:
        self._live.pop(container.id, None)
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
        """Close containers whose time is up; their processes are killed with their sessions."""
        now = time.time()
        expired = [c for c in self._live.values() if c.expires_at <= now and not c.lock.locked()]
        for container in expired:  # the store forgets the record by itself at its expiry
            await self._discard(container)
            log.info("container expired", extra={"container_id": container.id})
        return len(expired)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(min(REAP_INTERVAL_S, self._config.container_idle_s / 2))
            try:
                await self.reap()
            except Exception:
                log.exception("reaping containers failed")
