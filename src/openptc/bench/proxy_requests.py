"""How ``ptc bench proxy`` sends requests and times them: keep-alive clients, one timed
``POST /v1/messages`` (an :class:`Outcome`), a run of them one after another, and a
:class:`Burst` of them all at once with its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from openptc.bench.proxy_workload import HEADERS, Check
from openptc.bench.sandbox_bench import percentile

CLIENT = (
    "httpx.AsyncClient, HTTP/1.1 keep-alive: one persistent client for sequential requests; "
    "one client per request in flight for concurrent ones (see clients())"
)


def keep_alive_client(context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client of one keep-alive connection (``context``: unused on http://, but each client
    builds its own unless given one, which costs milliseconds)."""
    return httpx.AsyncClient(
        headers=HEADERS,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=httpx.Timeout(120),
        verify=context or True,
    )


@contextlib.asynccontextmanager
async def clients(count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``count`` clients of one connection each, for ``count`` requests in flight at once.

    Not one client with ``count`` connections: httpcore's pool walks every connection on every
    request (encode/httpcore#1035), so 200 requests in flight in one pool took ~5 s of client
    CPU here, against ~0.1 s spread over 200 clients; it would measure httpcore, not the server.
    """
    context = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(keep_alive_client(context)) for _ in range(count)]


@dataclass(frozen=True)
class Outcome:
    ms: float
    error: str | None
    container: str | None = None


async def attempt(client: httpx.AsyncClient, url: str, body: bytes, check: Check) -> Outcome:
    """One ``POST /v1/messages``, timed; any failure becomes the outcome's error."""
    started = time.perf_counter()
    try:
        response = await client.post(f"{url}/v1/messages", content=body)
        ms = (time.perf_counter() - started) * 1000
    except httpx.HTTPError as exc:
        return Outcome((time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return Outcome(ms, f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        data = response.json()
    except ValueError:
        return Outcome(ms, f"not JSON: {response.text[:300]}")
    container = (data.get("container") or {}).get("id")
    return Outcome(ms, check(data), container)


async def sequential(
    client: httpx.AsyncClient, url: str, body: bytes, count: int, check: Check
) -> list[float]:
    """``count`` requests one after another on one client; any failure raises."""
    timings = []
    for _ in range(count):
        outcome = await attempt(client, url, body, check)
        if outcome.error is not None:
            raise RuntimeError(f"{url}: {outcome.error}")
        timings.append(outcome.ms)
    return timings


@dataclass(frozen=True)
class Burst:
    """``count`` requests fired at once."""

    wall_ms: float
    outcomes: list[Outcome]

    @property
    def errors(self) -> list[str]:
        return [o.error for o in self.outcomes if o.error is not None]

    @property
    def timings(self) -> list[float]:
        return [o.ms for o in self.outcomes]


async def burst(fleet: Sequence[httpx.AsyncClient], url: str, body: bytes, check: Check) -> Burst:
    """One request per client, all at once."""
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(attempt(client, url, body, check) for client in fleet))
    return Burst((time.perf_counter() - started) * 1000, list(outcomes))


def summarise_bursts(bursts: Sequence[Burst], count: int) -> dict[str, Any]:
    """Wall time (median over bursts), throughput, latencies and errors, as reported."""
    timings = [t for b in bursts for t in b.timings]
    walls = [b.wall_ms for b in bursts]
    wall = statistics.median(walls)
    errors = [e for b in bursts for e in b.errors]
    return {
        "wall_ms": wall,
        "walls_ms": walls,
        "throughput_per_s": count / wall * 1000,
        "p50_ms": percentile(timings, 0.5),
        "p95_ms": percentile(timings, 0.95),
        "max_ms": max(timings),
        "errors": len(errors),
        "error_samples": errors[:5],
    }
