"""RedisStore against a real redis-server, and the same behaviour asked of MemoryStore.

One private redis-server (scripts/redis.sh) serves the whole session; each test uses its own key
prefix, so tests never see each other's records. The behavioural tests run against both stores,
which keeps them equivalent; the Redis-only tests check what only Redis can get wrong (keys that
Redis expires itself, unreachable servers, URLs with passwords).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from fakes.harness import closed_port_url
from openptc.proxy.redis_store import RedisStore, StoreUnavailable
from openptc.proxy.store import OwnerLimitReached, RecordStore, StoredRecord

HOUR = 3600.0


def record(
    container_id: str = "c1",
    *,
    owner: str = "key-a",
    revision: int = 1,
    ttl_s: float = HOUR,
    payload: str = '{"programs": []}',
) -> StoredRecord:
    return StoredRecord(container_id, owner, revision, time.time() + ttl_s, payload)


async def wait_until_gone(store: RecordStore, container_id: str, *, within_s: float) -> None:
    """Poll until the record has expired; fail if it outlives ``within_s``."""
    deadline = time.monotonic() + within_s
    while await store.get(container_id) is not None:
        assert time.monotonic() < deadline, f"{container_id} did not expire"
        await asyncio.sleep(0.1)


# --- behaviour both stores share ---------------------------------------------------------------


async def test_store_satisfies_the_protocol(store: RecordStore) -> None:
    assert isinstance(store, RecordStore)


async def test_missing_record_is_none(store: RecordStore) -> None:
    assert await store.get("nope") is None
    assert await store.owned_by("nobody") == []


async def test_create_then_read_back_every_field(store: RecordStore) -> None:
    payload = '{"programs": [{"code": "print(\'héllo ✓\')", "results": [1, 2.5, null]}]}' * 200
    created = record(payload=payload)
    assert await store.put(created, expected_revision=None)
    assert await store.get("c1") == created


async def test_create_fails_when_the_record_exists(store: RecordStore) -> None:
    first = record(owner="key-a")
    assert await store.put(first, expected_revision=None)
    assert not await store.put(record(owner="key-b", payload="{}"), expected_revision=None)
    assert await store.get("c1") == first
    assert await store.owned_by("key-b") == []


async def test_update_is_compare_and_set_on_revision(store: RecordStore) -> None:
    assert await store.put(record(revision=1), expected_revision=None)
    second = record(revision=2, payload='{"n": 2}')
    assert await store.put(second, expected_revision=1)
    # a writer that still believes revision 1 loses, and changes nothing
    assert not await store.put(record(revision=2, payload='{"stale": true}'), expected_revision=1)
    assert await store.get("c1") == second
    assert await store.put(record(revision=3), expected_revision=2)
    assert (got := await store.get("c1")) is not None and got.revision == 3


async def test_update_of_a_missing_record_fails(store: RecordStore) -> None:
    assert not await store.put(record(revision=2), expected_revision=1)
    assert await store.get("c1") is None
    assert await store.owned_by("key-a") == []


async def test_concurrent_writers_exactly_one_wins(store: RecordStore) -> None:
    assert await store.put(record(revision=1), expected_revision=None)
    writers = [record(revision=2, payload=f'{{"writer": {i}}}') for i in range(20)]
    won = await asyncio.gather(*(store.put(w, expected_revision=1) for w in writers))
    assert sum(won) == 1
    winner = writers[won.index(True)]
    assert await store.get("c1") == winner


async def test_concurrent_creators_exactly_one_wins(store: RecordStore) -> None:
    creators = [record(owner=f"key-{i}") for i in range(20)]
    won = await asyncio.gather(*(store.put(c, expected_revision=None) for c in creators))
    assert sum(won) == 1
    owner = creators[won.index(True)].owner
    for c in creators:
        assert await store.owned_by(c.owner) == (["c1"] if c.owner == owner else [])


async def test_an_owners_limit_holds_against_concurrent_creators(store: RecordStore) -> None:
    creators = [record(f"c{i}") for i in range(10)]
    outcomes = await asyncio.gather(
        *(store.put(c, expected_revision=None, max_owned=3) for c in creators),
        return_exceptions=True,
    )
    assert outcomes.count(True) == 3
    assert sum(isinstance(o, OwnerLimitReached) for o in outcomes) == 7
    assert len(await store.owned_by("key-a")) == 3
    # Updating a record the owner already holds is not a new one: the limit does not apply.
    kept = creators[outcomes.index(True)]
    updated = record(kept.id, revision=2)
    assert await store.put(updated, expected_revision=1, max_owned=3)
    # Another owner has its own count.
    assert await store.put(record("other", owner="key-b"), expected_revision=None, max_owned=3)


async def test_expired_record_is_forgotten(store: RecordStore) -> None:
    assert await store.put(record("short", ttl_s=1.5), expected_revision=None)
    assert await store.put(record("long"), expected_revision=None)
    assert await store.get("short") is not None
    await wait_until_gone(store, "short", within_s=10)
    assert await store.owned_by("key-a") == ["long"]
    # an expired record counts as no record: it may be created again, not updated
    assert not await store.put(record("short", revision=2), expected_revision=1)
    assert await store.put(record("short", revision=1), expected_revision=None)


async def test_update_can_extend_the_expiry(store: RecordStore) -> None:
    assert await store.put(record(ttl_s=1.0), expected_revision=None)
    assert await store.put(record(revision=2, ttl_s=HOUR), expected_revision=1)
    await asyncio.sleep(1.5)  # past the first expiry
    assert (got := await store.get("c1")) is not None and got.revision == 2
    assert await store.owned_by("key-a") == ["c1"]


async def test_record_already_expired_when_written_is_not_kept(store: RecordStore) -> None:
    assert await store.put(record(ttl_s=-1), expected_revision=None)
    assert await store.get("c1") is None
    assert await store.owned_by("key-a") == []


async def test_owned_by_lists_each_owners_live_containers(store: RecordStore) -> None:
    for cid, owner in [("a1", "key-a"), ("a2", "key-a"), ("b1", "key-b")]:
        assert await store.put(record(cid, owner=owner), expected_revision=None)
    assert await store.put(record("a3", owner="key-a", ttl_s=1.0), expected_revision=None)
    assert sorted(await store.owned_by("key-a")) == ["a1", "a2", "a3"]
    await wait_until_gone(store, "a3", within_s=10)
    assert sorted(await store.owned_by("key-a")) == ["a1", "a2"]
    assert await store.owned_by("key-b") == ["b1"]
    assert await store.owned_by("key-c") == []


async def test_owned_by_follows_a_change_of_owner(store: RecordStore) -> None:
    assert await store.put(record(owner="key-a"), expected_revision=None)
    assert await store.put(record(owner="key-b", revision=2), expected_revision=1)
    assert await store.owned_by("key-a") == []
    assert await store.owned_by("key-b") == ["c1"]


async def test_delete_forgets_record_and_ownership(store: RecordStore) -> None:
    assert await store.put(record("c1"), expected_revision=None)
    assert await store.put(record("c2"), expected_revision=None)
    await store.delete("c1")
    assert await store.get("c1") is None
    assert await store.owned_by("key-a") == ["c2"]
    await store.delete("c1")  # deleting twice, or something never stored, is fine
    await store.delete("never")
    assert not await store.put(record("c1", revision=2), expected_revision=1)
    assert await store.put(record("c1"), expected_revision=None)


# --- Redis only --------------------------------------------------------------------------------


async def test_redis_expires_the_keys_itself(redis_url: str, prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await store.put(record(ttl_s=HOUR), expected_revision=None)
        keys = sorted(await raw.keys(f"{prefix}:*"))
        assert keys == [f"{prefix}:container:c1", f"{prefix}:owner:key-a"]
        for key in keys:
            ttl_ms = await raw.pttl(key)
            assert 0 < ttl_ms <= HOUR * 1000
        await store.delete("c1")
        assert await raw.keys(f"{prefix}:*") == []
    finally:
        await raw.aclose()
        await store.aclose()


async def test_prefixes_keep_stores_apart(redis_url: str, prefix: str) -> None:
    one = RedisStore(redis_url, prefix=f"{prefix}-one")
    two = RedisStore(redis_url, prefix=f"{prefix}-two")
    try:
        assert await one.put(record(), expected_revision=None)
        assert await two.get("c1") is None
        assert await two.owned_by("key-a") == []
        assert await two.put(record(payload="{}"), expected_revision=None)
        assert (got := await one.get("c1")) is not None and got.payload != "{}"
    finally:
        await one.aclose()
        await two.aclose()


async def test_replicas_sharing_redis_see_each_others_writes(redis_url: str, prefix: str) -> None:
    first, second = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    try:
        assert await first.put(record(revision=1), expected_revision=None)
        assert await second.put(record(revision=2), expected_revision=1)
        assert not await first.put(record(revision=2), expected_revision=1)
        assert (got := await first.get("c1")) is not None and got.revision == 2
    finally:
        await first.aclose()
        await second.aclose()


async def test_unreachable_redis_says_where_and_what_to_do() -> None:
    port = closed_port_url().rsplit(":", 1)[1]
    store = RedisStore(f"redis://user:s3cr3t@127.0.0.1:{port}/0", prefix="x")
    try:
        for attempt in (store.ping(), store.get("c1"), store.owned_by("key-a")):
            with pytest.raises(StoreUnavailable) as caught:
                await attempt
            message = str(caught.value)
            assert f"redis://user:***@127.0.0.1:{port}/0" in message
            assert "s3cr3t" not in message
            assert "scripts/redis.sh start" in message and "--redis-url" in message
        with pytest.raises(StoreUnavailable):
            await store.put(record(), expected_revision=None)
        with pytest.raises(StoreUnavailable):
            await store.delete("c1")
    finally:
        await store.aclose()


async def test_wrong_password_says_to_check_it(redis_url: str, prefix: str) -> None:
    raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
    user = f"{prefix}-user"
    await raw.acl_setuser(user, enabled=True, passwords=["+right"], keys=["*"], commands=["+@all"])
    right = RedisStore(redis_url.replace("redis://", f"redis://{user}:right@"), prefix=prefix)
    wrong = RedisStore(redis_url.replace("redis://", f"redis://{user}:wr0ng@"), prefix=prefix)
    try:
        assert await right.put(record(), expected_revision=None)
        with pytest.raises(StoreUnavailable, match="password in --redis-url") as caught:
            await wrong.get("c1")
        assert "wr0ng" not in str(caught.value) and f"{user}:***@" in str(caught.value)
    finally:
        await right.aclose()
        await wrong.aclose()
        await raw.acl_deluser(user)
        await raw.aclose()


def test_bad_url_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(ValueError, match=r"invalid Redis URL") as caught:
        RedisStore("http://user:s3cr3t@127.0.0.1:6379/0")
    assert "s3cr3t" not in str(caught.value)
