"""`ptc bench fleet`: the remote and Docker backends against the local one, and the sandbox
server's throughput.

Every figure is a ratio to the local backend measured in the same run: a session's cold start
(open + first execution), a warm execution with one tool call, and executions per second with N
sessions running at once. The sandbox server runs as its own `ptc sandbox-server` process on
127.0.0.1, as it would be deployed, so client and server share the machine's cores honestly.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from openptc.bench import server_process
from openptc.bench.report import report_header
from openptc.bench.sandbox_bench import EchoTools, percentile
from openptc.sandbox.base import Sandbox, SandboxError
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.remote import RemoteSandbox

Progress = Callable[[str], None]
TOKEN = server_process.TOKEN
PROGRAM = "print(await echo(value=21) * 2)"
SandboxFactory = Callable[[], Any]  # an async context manager yielding a started Sandbox


@contextmanager
def sandbox_server(pool_size: int, sessions: int) -> Iterator[str]:
    """`ptc sandbox-server` as its own process; yields its URL once ready."""
    with server_process.sandbox_server(sessions=sessions, pool_size=pool_size) as server:
        yield server.url


@asynccontextmanager
async def _started(sandbox: Any) -> AsyncIterator[Sandbox]:
    async with sandbox as started:
        yield started


def _docker(pool_size: int) -> SandboxFactory:
    """The Docker backend (its engine and image must be there: scripts/docker.sh)."""
    from openptc.sandbox.docker import DockerSandbox

    return lambda: _started(DockerSandbox(pool_size=pool_size))


async def _cold_ms(factory: SandboxFactory, rounds: int) -> list[float]:
    """Open a session and run the first program, with no warm pool to take it from."""
    timings = []
    async with factory() as sandbox:
        for _ in range(rounds):
            started = time.perf_counter()
            session = await sandbox.open_session()
            await session.execute(PROGRAM, EchoTools())
            timings.append((time.perf_counter() - started) * 1000)
            await session.close()
    return timings


async def _warm_ms(factory: SandboxFactory, rounds: int) -> list[float]:
    """One execution with one tool call, in a session that is already running."""
    async with factory() as sandbox:
        session = await sandbox.open_session()
        tools = EchoTools()
        for _ in range(5):
            await session.execute(PROGRAM, tools)
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            result = await session.execute(PROGRAM, tools)
            timings.append((time.perf_counter() - started) * 1000)
            if result.stdout != "42\n":
                raise RuntimeError(f"wrong result from the sandbox: {result.stdout!r}")
        await session.close()
    return timings


async def _throughput(factory: SandboxFactory, sessions: int, per_session: int) -> float:
    """Executions per second with ``sessions`` sessions executing at once."""
    async with factory() as sandbox:
        opened = await asyncio.gather(*(sandbox.open_session() for _ in range(sessions)))
        tools = EchoTools()

        async def run(session: Any) -> None:
            for _ in range(per_session):
                await session.execute(PROGRAM, tools)

        await asyncio.gather(*(run(s) for s in opened))  # warm-up round
        started = time.perf_counter()
        await asyncio.gather(*(run(s) for s in opened))
        elapsed = time.perf_counter() - started
        await asyncio.gather(*(s.close() for s in opened))
    return sessions * per_session / elapsed


def _figure(name: str, ours: Sequence[float], local: Sequence[float], unit: str) -> dict[str, Any]:
    p50, base = percentile(ours, 0.5), percentile(local, 0.5)
    return {
        "name": name,
        "unit": unit,
        "ours_p50": p50,
        "ours_p95": percentile(ours, 0.95),
        "local_p50": base,
        "ratio": p50 / base if base else None,
    }


async def run_fleet_bench(
    *,
    rounds: int = 30,
    concurrency: Sequence[int] = (1, 2, 4, 8, 16),
    per_session: int = 10,
    progress: Progress = lambda message: None,
) -> dict[str, Any]:
    report = report_header("fleet")
    most = max(concurrency)

    def local(pool: int) -> SandboxFactory:
        return lambda: _started(LocalSandbox(pool_size=pool))

    figures: list[dict[str, Any]] = []
    with sandbox_server(pool_size=0, sessions=most) as cold_url:
        progress("cold start: local vs remote (no warm pool)")
        local_cold = await _cold_ms(local(0), rounds // 3 or 1)
        remote_cold = await _cold_ms(
            lambda: _started(RemoteSandbox(cold_url, TOKEN)), rounds // 3 or 1
        )
        figures.append(_figure("cold session, remote", remote_cold, local_cold, "ms"))
    with sandbox_server(pool_size=2, sessions=most) as url:

        def remote() -> SandboxFactory:
            return lambda: _started(RemoteSandbox(url, TOKEN))

        progress("warm execution with one tool call: local vs remote")
        local_warm = await _warm_ms(local(1), rounds)
        remote_warm = await _warm_ms(remote(), rounds)
        figures.append(_figure("warm execution, remote", remote_warm, local_warm, "ms"))
        throughput = []
        for n in concurrency:
            progress(f"throughput with {n} concurrent session(s)")
            ours = await _throughput(remote(), n, per_session)
            base = await _throughput(local(min(n, 4)), n, per_session)
            throughput.append(
                {"sessions": n, "remote_per_s": ours, "local_per_s": base, "ratio": ours / base}
            )
    try:
        progress("Docker backend: cold and warm")
        docker_cold = await _cold_ms(_docker(0), rounds // 3 or 1)
        docker_warm = await _warm_ms(_docker(1), rounds)
        figures.append(_figure("cold session, docker", docker_cold, local_cold, "ms"))
        figures.append(_figure("warm execution, docker", docker_warm, local_warm, "ms"))
        report["docker"] = "measured"
    except (ImportError, SandboxError) as exc:  # no engine or no image here: say so
        report["docker"] = f"skipped: {exc}"
        progress(f"Docker backend skipped: {exc}")
    report["figures"] = figures
    report["throughput"] = throughput
    report["program"] = PROGRAM
    report["load_average"] = os.getloadavg()
    return report
