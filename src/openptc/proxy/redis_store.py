"""Container records in Redis, so that several proxy replicas share them (``--redis-url``).

Layout, for a ``prefix`` (default ``openptc``):

- ``{prefix}:container:{id}``: a hash with ``owner``, ``revision``, ``expires_at`` and
  ``payload``, expiring at ``expires_at`` (PEXPIREAT), so Redis forgets records by itself;
- ``{prefix}:owner:{owner}``: a sorted set of the owner's container ids scored by their expiry in
  milliseconds, itself expiring with its last member.

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
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from openptc.models.errors import redact_url, redact_urls_in
from openptc.proxy.store import OwnerLimitReached, StoredRecord

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


class StoreUnavailable(Exception):
    """The record store cannot be reached; the message says where and what to do about it."""


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

    def _record_key(self, container_id: str) -> str:
        return f"{self._prefix}:container:{container_id}"

    def _owner_key(self, owner: str) -> str:
        return f"{self._prefix}:owner:{owner}"

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn redis-py's connection failures into one error that says what to do."""
        try:
            yield
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

    async def aclose(self) -> None:
        """Close the connection pool (the client made it, so it closes it)."""
        await self._redis.aclose()
