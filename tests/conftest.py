"""Fixtures shared by several test modules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fakes.aws_env import isolate_aws
from fakes.redis_service import start_redis
from openptc.sandbox.local import LocalSandbox

if TYPE_CHECKING:
    from openptc.proxy.store import RecordStore


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    started = start_redis(Path(tmp_path_factory.mktemp("redis")))
    if isinstance(started, str):
        pytest.skip(started)
    try:
        yield started.url
    finally:
        started.stop()


@pytest.fixture
def prefix() -> str:
    """Keys of the test's own in the shared Redis."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RecordStore]:
    """The proxy's record store, each test once in memory and once in Redis."""
    from openptc.proxy.redis_store import RedisStore  # redis, imported for these tests only
    from openptc.proxy.store import MemoryStore

    made: RecordStore
    if request.param == "memory":
        made = MemoryStore()
    else:
        made = RedisStore(request.getfixturevalue("redis_url"), prefix=prefix)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    """A local sandbox with the default limits; a module that needs others defines its own."""
    async with LocalSandbox() as sb:
        yield sb


@pytest.fixture
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """For modules against AWS fakes: ``pytestmark = pytest.mark.usefixtures("no_ambient_aws")``."""
    isolate_aws(monkeypatch, tmp_path)
