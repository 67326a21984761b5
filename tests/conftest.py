"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.redis_service import start_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    started = start_redis(Path(tmp_path_factory.mktemp("redis")))
    if isinstance(started, str):
        pytest.skip(started)
    try:
        yield started.url
    finally:
        started.stop()
