"""Container records in Redis, so that several proxy replicas share them (``--redis-url``).

Layout, for a ``prefix`` (default ``openptc``):

- ``{prefix}:container:{id}``: a hash with ``owner``, ``revision``, ``expires_at`` and
  ``payload``, expiring at ``expires_at`` (PEXPIREAT), so Redis forgets records by itself;
- ``{prefix}:owner:{owner}``: a sorted set of the owner's container ids scored by their expiry in
  milliseconds, itself expiring with its last member;
- ``{prefix}:inuse:{owner}``: the owner's containers in use (what a key's limit bounds), scored
  by the end of their lease in milliseconds, expiring with its last member.

Every write is one Lua script, so a compare-and-set on ``revision`` and the owner index change
together or not at all, with no WATCH/retry loop. Expiry is judged by the Redis server's clock,
the one that expires the keys, so what ``get``, ``put`` and ``owned_by`` see always agrees.
The scripts build the owner-set and record key names from the prefix, so all keys of a store
must live on one Redis server (no Redis Cluster).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from openptc.models.errors import redact_url, redact_urls_in
from openptc.proxy.store import OwnerLimitReached, StoredRecord, StoreUnavailable

__all__ = ["RedisStore", "StoreUnavailable"]

# KEYS[1] the record, KEYS[2] the new owner's set.
# ARGV: expected revision ('' = no record may exist), owner, revision, expires_at (seconds, as
# text), payload, expires_at in ms, container id, owner-set key prefix, most records the owner
# may hold when this one is new ('' = no limit). Returns 1 written, 0 revision conflict, -1 limit.
_PUT = """
local found = redis.call('HGET', KEYS[1], 'revision')
if found then
  if ARGV[1] == '' or tonumber(found) ~= tonumber(ARGV[1]) then return 0 end
  local old_owner = redis.call('HGET', KEYS[1], 'owner')
  if old_owner and old_owner ~= ARGV[2] then
    redis.call('ZREM', ARGV[8] .. old_owner, ARGV[7])
  end
elseif ARGV[1] ~= '' then
  return 0
elseif ARGV[9] ~= '' then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[9]) then return -1 end
end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'revision', ARGV[3], 'expires_at', ARGV[4],
           'payload', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
"""

# KEYS[1] the record. ARGV: container id, owner-set key prefix.
_DELETE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
redis.call('DEL', KEYS[1])
if owner then redis.call('ZREM', ARGV[2] .. owner, ARGV[1]) end
return 1
"""

# KEYS[1] the owner's set. ARGV: owner, record key prefix. Drops members whose expiry has passed
# and, to be safe against anything stale, members whose record is gone or now has another owner.
_OWNED_BY = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local live = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', ARGV[2] .. id, 'owner') == ARGV[1] then
    table.insert(live, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return live
"""


# KEYS[1] the owner's in-use set. ARGV: container id, lease end in ms, limit. 1 claimed, 0 not.
_CLAIM = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
"""

# KEYS[1] the owner's in-use set, KEYS[2] the record. ARGV: container id, revision. A record
# that has moved past the revision is another replica's now, and so is the claim.
_RELEASE = """
local found = redis.call('HGET', KEYS[2], 'revision')
if found and tonumber(found) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1] the owner's in-use set: the claims whose lease has not run out.
_IN_USE = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


# How a reachable server says it cannot write now (also inside a script's error): a failed
# snapshot, a read-only replica, out of memory.
_REFUSALS = ("MISCONF ", "READONLY ", "OOM ")


class RedisStore:
    """A ``RecordStore`` in Redis: shared by every replica given the same URL and prefix."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "openptc",
        connect_timeout_s: float = 5.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._shown_url = redact_url(url)
        self._prefix = prefix
        try:
            # Nothing connects yet: the first command does, so construction never blocks.
            self._redis: aioredis.Redis = aioredis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=connect_timeout_s,
                socket_timeout=timeout_s,
            )
        except ValueError as exc:
            raise ValueError(
                f"invalid Redis URL {self._shown_url}: {redact_urls_in(str(exc))} "
                "(expected redis://[:password@]host:port/db, rediss://... or unix://...)"
            ) from None
        self._put = self._redis.register_script(_PUT)
        self._delete = self._redis.register_script(_DELETE)
        self._owned_by = self._redis.register_script(_OWNED_BY)
        self._claim = self._redis.register_script(_CLAIM)
        self._release = self._redis.register_script(_RELEASE)
        self._in_use = self._redis.register_script(_IN_USE)

    def _record_key(self, container_id: str) -> str:
        return f"{self._prefix}:container:{container_id}"

    def _owner_key(self, owner: str) -> str:
        return f"{self._prefix}:owner:{owner}"

    def _in_use_key(self, owner: str) -> str:
        return f"{self._prefix}:inuse:{owner}"

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn redis-py's connection failures into one error that says what to do."""
        try:
            yield
        except ResponseError as exc:
            refused = isinstance(exc, (ReadOnlyError, OutOfMemoryError))
            if not (refused or any(code in str(exc) for code in _REFUSALS)):
                raise
            why = redact_urls_in(str(exc)).rstrip(". ")
            raise StoreUnavailable(
                f"Redis at {self._shown_url} refuses writes: {why}. Fix the server (disk, "
                "memory, or point --redis-url at the primary)."
            ) from exc
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if isinstance(exc, AuthenticationError):
                advice = "Check the user name and password in --redis-url."
            else:
                advice = (
                    "Start a Redis server there (for a local one: scripts/redis.sh start DIR) "
                    "or fix --redis-url."
                )
            why = redact_urls_in(str(exc)).rstrip(". ")
            raise StoreUnavailable(
                f"cannot reach Redis at {self._shown_url}: {why}. {advice}"
            ) from exc

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` now rather than on the first request (for startup)."""
        with self._reachable():
            await self._redis.ping()

    async def get(self, container_id: str) -> StoredRecord | None:
        with self._reachable():
            fields = await self._redis.hgetall(self._record_key(container_id))
        if not fields:
            return None
        return StoredRecord(
            id=container_id,
            owner=str(fields["owner"]),
            revision=int(fields["revision"]),
            expires_at=float(fields["expires_at"]),
            payload=str(fields["payload"]),
        )

    async def put(
        self,
        record: StoredRecord,
        *,
        expected_revision: int | None,
        max_owned: int | None = None,
    ) -> bool:
        args: list[str | int] = [
            "" if expected_revision is None else str(expected_revision),
            record.owner,
            str(record.revision),
            repr(record.expires_at),
            record.payload,
            int(record.expires_at * 1000),
            record.id,
            self._owner_key(""),
            "" if max_owned is None else str(max_owned),
        ]
        with self._reachable():
            written = await self._put(
                keys=[self._record_key(record.id), self._owner_key(record.owner)], args=args
            )
        if int(written) < 0:
            raise OwnerLimitReached(max_owned or 0)
        return bool(written)

    async def delete(self, container_id: str) -> None:
        with self._reachable():
            await self._delete(
                keys=[self._record_key(container_id)], args=[container_id, self._owner_key("")]
            )

    async def owned_by(self, owner: str) -> list[str]:
        with self._reachable():
            ids = await self._owned_by(
                keys=[self._owner_key(owner)], args=[owner, self._record_key("")]
            )
        return [str(i) for i in cast(list[str], ids)]

    async def claim_in_use(
        self, owner: str, container_id: str, *, until: float, limit: int
    ) -> bool:
        with self._reachable():
            claimed = await self._claim(
                keys=[self._in_use_key(owner)],
                args=[container_id, int(until * 1000), limit],
            )
        return bool(claimed)

    async def release_in_use(self, owner: str, container_id: str, *, revision: int) -> None:
        with self._reachable():
            await self._release(
                keys=[self._in_use_key(owner), self._record_key(container_id)],
                args=[container_id, revision],
            )

    async def in_use_by(self, owner: str) -> list[str]:
        with self._reachable():
            ids = await self._in_use(keys=[self._in_use_key(owner)])
        return [str(i) for i in cast(list[str], ids)]

    async def instance(self) -> str:
        """The Redis server's run id: it changes when the server restarts, which is how a
        replica notices a restart it did not see as an outage."""
        with self._reachable():
            try:
                info = await self._redis.info("server")
            except ResponseError:  # INFO not allowed to this user: restarts go unnoticed
                return ""
        return str(info.get("run_id", ""))

    async def persistence(self) -> str | None:
        """None when the server keeps its data over a restart (AOF, or RDB snapshots); else
        why not. Servers that refuse CONFIG (managed ones) are given the benefit of the doubt."""
        with self._reachable():
            try:
                info = await self._redis.info("persistence")
                if int(info.get("aof_enabled", 0)):
                    return None
                save = (await self._redis.config_get("save")).get("save", "")
            except ResponseError:
                return None
        if str(save).strip():
            return None
        return "it has neither appendonly nor RDB snapshots (save) enabled"

    async def aclose(self) -> None:
        """Close the connection pool (the client made it, so it closes it)."""
        await self._redis.aclose()
