"""The concurrent PTC phase of ``ptc bench proxy``: batches of requests that each make a
container and run a program in a new sandbox session, against the same sessions opened and run
at once on a ``LocalSandbox`` in-process; also the request alone, and the batch again in the
containers it made.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from openptc.bench.proxy_figures import Comparison, Progress
from openptc.bench.proxy_requests import (
    Burst,
    Outcome,
    attempt,
    burst,
    clients,
    sequential,
    summarise_bursts,
)
from openptc.bench.proxy_workload import CODE_TOOL, PTC_BODY, PTC_PROGRAM, Check, check_ptc
from openptc.bench.sandbox_bench import percentile
from openptc.sandbox.base import Isolation, Session
from openptc.sandbox.local import LocalSandbox

PTC_GAP_S = 0.3  # before each PTC request alone and each batch: the warm pool refills


async def reuse_burst(fleet: Sequence[httpx.AsyncClient], url: str, earlier: Burst) -> Burst:
    """The same request again, each in the container an earlier request made: no new session.

    A request whose earlier one failed has no container and makes a new one.
    """

    def body(container: str | None) -> bytes:
        data = json.loads(PTC_BODY)
        return json.dumps(data | ({"container": container} if container else {})).encode()

    def same_container(container: str | None) -> Check:
        def check(data: dict[str, Any]) -> str | None:
            problem = check_ptc(data)
            if problem is None and container and data["container"]["id"] != container:
                problem = f"answered in container {data['container']['id']}, not {container}"
            return problem

        return check

    pairs = list(zip(fleet, earlier.outcomes, strict=True))
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(
            attempt(client, url, body(o.container), same_container(o.container))
            for client, o in pairs
        )
    )
    return Burst((time.perf_counter() - started) * 1000, list(outcomes))


async def _containers(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return int((await client.get(f"{url}/health")).json()["containers"])


async def direct_batch(sandbox: LocalSandbox, count: int) -> Burst:
    """The baseline of a PTC batch: ``count`` sessions opened and run at once, in-process."""
    sessions: list[Session] = []

    async def one() -> Outcome:
        started = time.perf_counter()
        try:
            session = await sandbox.open_session()
            sessions.append(session)
            execution = await session.execute(PTC_PROGRAM)
        except Exception as exc:
            return Outcome((time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        ok = execution.ok and execution.stdout == "2\n"
        return Outcome(ms, None if ok else f"the program did not print 2: {execution}")

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one() for _ in range(count)))
    wall_ms = (time.perf_counter() - started) * 1000
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    return Burst(wall_ms, list(outcomes))


async def _pool_refilled(sandbox: LocalSandbox) -> None:
    deadline = time.monotonic() + 10
    while not sandbox.pool_ready() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def concurrent_ptc(
    proxy: str, count: int, batches: int, isolated: int, progress: Progress
) -> tuple[Comparison, Isolation]:
    """``count`` PTC requests at once, each making a container and running ``print(1+1)`` in a
    new sandbox session; the baseline opens and runs the same sessions at once on a
    ``LocalSandbox`` with the proxy's pool size, in-process. Also reported: the request sent
    alone, and the batch again in the containers it made (no new session)."""
    from openptc.proxy.config import ProxyConfig

    pool_size = int(ProxyConfig.model_fields["pool_size"].default)
    async with clients(count) as fleet, LocalSandbox(pool_size=pool_size) as sandbox:
        client = fleet[0]
        warm = await sequential(client, proxy, PTC_BODY, 2, check_ptc)  # isolation probe etc.
        alone: list[float] = []
        for _ in range(isolated):
            await asyncio.sleep(PTC_GAP_S)
            alone += await sequential(client, proxy, PTC_BODY, 1, check_ptc)
        await direct_batch(sandbox, 2)  # warm-up
        new: list[Burst] = []
        reused: list[Burst] = []
        direct: list[Burst] = []
        for _ in range(batches):  # interleaved; each starts with its warm pool refilled
            await asyncio.sleep(PTC_GAP_S)
            new.append(await burst(fleet, proxy, PTC_BODY, check_ptc))
            reused.append(await reuse_burst(fleet, proxy, new[-1]))
            await _pool_refilled(sandbox)
            await asyncio.sleep(PTC_GAP_S)
            direct.append(await direct_batch(sandbox, count))
        isolation = sandbox.isolation
    live = await _containers(proxy)
    summary = summarise_bursts(new, count)
    again = summarise_bursts(reused, count)
    floor = summarise_bursts(direct, count)
    errors = summary["errors"] + again["errors"]
    ids = [o.container for b in new for o in b.outcomes if o.container]
    made = len(warm) + len(alone) + sum(len(b.outcomes) - len(b.errors) for b in new)
    alone_p50 = percentile(alone, 0.5)
    progress(
        f"{count} concurrent PTC requests: p50 {summary['p50_ms']:.0f} ms, "
        f"{summary['wall_ms']:.0f} ms wall, {summary['errors']} errors, {live} containers live "
        f"(the same sessions in-process: p50 {floor['p50_ms']:.0f} ms; one request alone: "
        f"{alone_p50:.0f} ms); again in their containers: p50 {again['p50_ms']:.0f} ms, "
        f"{again['errors']} errors"
    )
    comparison = Comparison(
        f"concurrent_{count}_ptc_p50",
        summary["p50_ms"],
        floor["p50_ms"],
        "ms",
        f"{count} sessions opened and run at once on a LocalSandbox in-process "
        f"(pool of {pool_size}, as the proxy's)",
        "0 errors",
        errors == 0,
        {
            "concurrency": count,
            "batches": batches,
            "program": PTC_PROGRAM,
            "tool": CODE_TOOL,
            "errors": errors,
            "pool_size": pool_size,
            "concurrent": summary,
            "concurrent_in_existing_containers": again,
            "sandbox_in_process": floor,
            "alone_p50_ms": alone_p50,
            "alone_p95_ms": percentile(alone, 0.95),
            "alone_samples_ms": alone,
            "alone_requests": isolated,
            "ratio_to_alone": summary["p50_ms"] / alone_p50,
            "distinct_containers_in_batches": len(set(ids)),
            "containers_made": made,
            "containers_live_after": live,
        },
    )
    return comparison, isolation
