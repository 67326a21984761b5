"""`ptc bench soak`: many executions over many concurrent sessions, then a look for leaks.

Per backend (the local sandbox in this process, and a real `ptc sandbox-server` process on
127.0.0.1 reached through the remote client), in order:

1. baseline: one session, a few warm-ups, then executions one after another: latency and rate;
2. load: ``sessions`` sessions opened at once, each running the workload (five tool calls) in a
   loop until ``executions`` have run in all (or ``max_seconds`` have passed), every result
   checked; latency p50/p99 and throughput, as ratios to the baseline;
3. leaks, after every session and the sandbox (and the server) are closed: processes of this run
   still alive, this process's descriptors and memory before and after, the server's memory and
   sandbox processes, ``openptc-*`` directories in the temporary directory before and after.

Loops are bounded in count and in time; nothing here is run in CI beyond a tiny configuration.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from openptc.bench.host_census import (
    Snapshot,
    Tracker,
    cpu_s,
    descendants,
    leak_report,
    rss_mb,
)
from openptc.bench.report import report_header
from openptc.bench.sandbox_bench import percentile
from openptc.bench.server_process import TOKEN, ServerProcess, sandbox_server
from openptc.bench.soak_workload import (
    CALLS_PER_EXECUTION,
    PROGRAM,
    SessionState,
    execute,
    make_toolbox,
)
from openptc.sandbox.base import Sandbox
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.remote import RemoteSandbox
from openptc.tools import Toolbox

Progress = Callable[[str], None]
Backend = Literal["local", "server"]
BACKENDS: tuple[Backend, ...] = ("local", "server")
WARMUP = 5
ERROR_SAMPLES = 5
SETTLE_S = 10.0


@dataclass(frozen=True)
class SoakConfig:
    executions: int = 10_000
    sessions: int = 50
    backends: tuple[Backend, ...] = BACKENDS
    max_seconds: float = 600.0  # per backend, for the load; then no new execution starts
    baseline_rounds: int = 50
    pool_size: int = 2


QUICK = SoakConfig(executions=400, sessions=10, baseline_rounds=20)


@dataclass
class _Run:
    """What one backend's executions gave: latencies, errors, memory samples."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)
    done: int = 0
    wall_s: float = 0.0

    def error_report(self) -> dict[str, Any]:
        distinct = list(dict.fromkeys(self.errors))
        return {"errors": len(self.errors), "error_samples": distinct[:ERROR_SAMPLES]}


def _latency(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "p50_ms": percentile(values, 0.5),
        "p99_ms": percentile(values, 0.99),
        "max_ms": max(values),
    }


def _ratio(ours: float, base: float) -> float | None:
    return ours / base if base else None


def _failures(what: str, outcomes: Sequence[object]) -> list[str]:
    return [f"{what}: {type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]


class _Watch:
    """Resident memory of this process (and of the server), sampled while the load runs."""

    def __init__(self, server: ServerProcess | None) -> None:
        self.server = server

    def __call__(self) -> dict[str, float]:
        sample = {"client_rss_mb": round(rss_mb(), 1)}
        if self.server is not None:
            sample["server_rss_mb"] = round(rss_mb(self.server.pid), 1)
        return sample

    def sandbox_processes(self) -> int:
        return len(descendants(self.server.pid)) if self.server is not None else 0

    async def settled_sandbox_processes(self) -> int:
        """The server's processes once their count held for a second (sandboxes of closed
        sessions stopped, the warm pool refilled), or after ``SETTLE_S``."""
        deadline, counts = time.monotonic() + SETTLE_S, [self.sandbox_processes()]
        while self.server is not None and time.monotonic() < deadline:
            if len(counts) >= 10 and len(set(counts[-10:])) == 1:
                break
            await asyncio.sleep(0.1)
            counts.append(self.sandbox_processes())
        return counts[-1]

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: this process, the server, and the live sandboxes together."""
        server = self.server.pid if self.server is not None else None
        used = {"client": cpu_s()}
        if server is not None:
            used["server"] = cpu_s(server)
        root = server if server is not None else os.getpid()
        used["sandboxes"] = sum(p.cpu_s for p in descendants(root))
        return used


async def _baseline(sandbox: Sandbox, tools: Toolbox, rounds: int, run: _Run) -> dict[str, Any]:
    """One warm session alone, executions one after another: what load is compared with."""
    state = SessionState(await sandbox.open_session())
    for n in range(WARMUP):
        _, error = await execute(state, n, tools)
        run.errors += [error] if error else []
    latencies = []
    started = time.perf_counter()
    for n in range(rounds):
        elapsed, error = await execute(state, n, tools)
        latencies.append(elapsed)
        run.errors += [error] if error else []
    wall = time.perf_counter() - started
    await state.session.close()
    return {"executions": rounds, **_latency(latencies), "per_s": rounds / wall}


async def _load(
    states: list[SessionState],
    tools: Toolbox,
    config: SoakConfig,
    watch: _Watch,
    run: _Run,
    progress: Progress,
) -> None:
    """Every session executes in a loop until the count (or the time) is used up."""
    numbers = itertools.count()
    deadline = time.monotonic() + config.max_seconds
    step = max(1, config.executions // 10)
    started = time.perf_counter()

    async def drive(state: SessionState) -> None:
        while time.monotonic() < deadline and (n := next(numbers)) < config.executions:
            elapsed, error = await execute(state, n, tools)
            run.latencies.append(elapsed)
            run.done += 1
            if error:
                run.errors.append(error)
            if run.done % step == 0:
                sample = watch()
                run.samples.append({"executions": run.done, **sample})
                rate = run.done / (time.perf_counter() - started)
                memory = ", ".join(f"{k.removesuffix('_mb')} {v:.0f} MB" for k, v in sample.items())
                progress(
                    f"  {run.done:,}/{config.executions:,} executions, {len(run.errors)} errors, "
                    f"{rate:.0f}/s, {memory}"
                )

    await asyncio.gather(*(drive(state) for state in states))
    run.wall_s = time.perf_counter() - started


async def _exercise(
    sandbox: Sandbox, config: SoakConfig, tracker: Tracker, watch: _Watch, progress: Progress
) -> dict[str, Any]:
    """Baseline, load, close; the figures, and memory at each step."""
    tools, run = make_toolbox(), _Run()
    progress(f"  baseline: one session, {config.baseline_rounds} executions one after another")
    baseline = await _baseline(sandbox, tools, config.baseline_rounds, run)
    after_baseline, sandboxes_before = watch(), await watch.settled_sandbox_processes()
    progress(f"  opening {config.sessions} sessions at once")
    started = time.perf_counter()
    opened = await asyncio.gather(
        *(sandbox.open_session() for _ in range(config.sessions)), return_exceptions=True
    )
    open_s = time.perf_counter() - started
    run.errors += _failures("open_session", opened)
    states = [SessionState(s) for s in opened if not isinstance(s, BaseException)]
    progress(f"  {config.executions:,} executions over {len(states)} sessions")
    cpu_before = watch.cpu()
    await _load(states, tools, config, watch, run, progress)
    cpu = {k: (v - cpu_before[k]) * 1000 / max(run.done, 1) for k, v in watch.cpu().items()}
    after_load = watch()
    tracker.note()  # every sandbox process of this run, while they are all alive
    closed = await asyncio.gather(*(s.session.close() for s in states), return_exceptions=True)
    run.errors += _failures("close", closed)
    sandboxes_after = await watch.settled_sandbox_processes()
    latency = _latency(run.latencies)
    throughput = run.done / run.wall_s if run.wall_s else 0.0
    figures = {
        "executions": run.done,
        "planned": config.executions,
        "stopped_by": "count" if run.done >= config.executions else "time",
        "tool_calls": run.done * CALLS_PER_EXECUTION,
        **run.error_report(),
        "sessions_opened": len(states),
        "sessions_open_s": open_s,
        "wall_s": run.wall_s,
        "throughput_per_s": throughput,
        "latency": latency,
        "baseline": baseline,
        "ratios": {
            "p50_vs_baseline_p50": _ratio(latency["p50_ms"], baseline["p50_ms"]),
            "p99_vs_baseline_p99": _ratio(latency["p99_ms"], baseline["p99_ms"]),
            "p99_vs_p50": _ratio(latency["p99_ms"], latency["p50_ms"]),
            "throughput_vs_one_session": _ratio(throughput, baseline["per_s"]),
        },
        "cpu_ms_per_execution": cpu,
        "memory_samples": run.samples,
        "_rss": {"after_baseline": after_baseline, "after_load": after_load},
    }
    if watch.server is not None:
        figures["_server"] = {"sandbox_processes": [sandboxes_before, sandboxes_after]}
    return figures


def _memory(figures: dict[str, Any], before: Snapshot, after: Snapshot) -> dict[str, Any]:
    rss = figures.pop("_rss")
    samples = figures["memory_samples"]
    middle = samples[len(samples) // 2 - 1] if len(samples) >= 2 else None
    last = samples[-1] if samples else None

    def second_half(key: str) -> float | None:
        return last[key] - middle[key] if middle is not None and last is not None else None

    client = {
        "before": before.rss_mb,
        "after_baseline": rss["after_baseline"]["client_rss_mb"],
        "after_load": rss["after_load"]["client_rss_mb"],
        "after": after.rss_mb,
        "growth": after.rss_mb - before.rss_mb,
        "load_second_half_growth": second_half("client_rss_mb"),
    }
    memory: dict[str, Any] = {"client_rss_mb": client}
    if "server_rss_mb" in rss["after_load"]:
        server_before = rss["after_baseline"]["server_rss_mb"]
        memory["server_rss_mb"] = {
            "after_baseline": server_before,
            "after_load": rss["after_load"]["server_rss_mb"],
            "growth": rss["after_load"]["server_rss_mb"] - server_before,
            "load_second_half_growth": second_half("server_rss_mb"),
        }
    return memory


async def _server_checks(server: ServerProcess, expected: int) -> dict[str, Any]:
    """The server's own counters after the sessions closed: they should agree with ours."""
    samples = await server.metrics()
    return {
        "sessions_active": samples.get("ptc_sandbox_sessions_active"),
        "executions_ok": samples.get('ptc_sandbox_executions_total{outcome="ok"}'),
        "executions_expected": expected,
        "tool_calls": samples.get("ptc_sandbox_tool_calls_total"),
        "tool_calls_expected": expected * CALLS_PER_EXECUTION,
    }


async def soak_backend(backend: Backend, config: SoakConfig, progress: Progress) -> dict[str, Any]:
    """One backend, from a clean snapshot to the leak check after everything is closed."""
    progress(f"[bold]{backend}[/bold]")
    tracker, before = Tracker.begin(), Snapshot.take()
    server_report: dict[str, Any] | None = None
    if backend == "local":
        async with LocalSandbox(pool_size=config.pool_size) as local:
            isolation = local.isolation.describe()
            figures = await _exercise(local, config, tracker, _Watch(None), progress)
    else:
        with sandbox_server(sessions=config.sessions + 1, pool_size=config.pool_size) as server:
            async with RemoteSandbox(server.url, TOKEN) as remote:
                isolation = remote.isolation.describe()
                figures = await _exercise(remote, config, tracker, _Watch(server), progress)
            expected = WARMUP + config.baseline_rounds + figures["executions"]
            server_report = await _server_checks(server, expected)
            tracker.note()
        server_report |= figures.pop("_server") | server.summary()
    gc.collect()
    left = await tracker.settle()
    after = Snapshot.take()
    memory = _memory(figures, before, after)
    result = {"backend": backend, "isolation": isolation, **figures, "memory": memory}
    result["leaks"] = leak_report(before, after, left, tracker)
    if server_report is not None:
        result["server"] = server_report
    progress(
        f"  {backend}: {result['executions']:,} executions, {result['errors']} errors, "
        f"{len(left)} processes left, fds {before.fds} -> {after.fds}"
    )
    return result


def _clean(result: dict[str, Any]) -> bool:
    """No unintended error, and nothing of the run left: processes, descriptors, directories."""
    leaks = result["leaks"]
    return (
        result["errors"] == 0
        and not leaks["processes_left"]
        and leaks["fds_after"] <= leaks["fds_before"]
        and not leaks["run_temp_dirs_left"]
    )


async def run_soak_bench(
    config: SoakConfig = SoakConfig(), *, progress: Progress = lambda message: None
) -> dict[str, Any]:
    report = report_header("soak")
    report["config"] = {
        **asdict(config),
        "warmup": WARMUP,
        "tool_calls_per_execution": CALLS_PER_EXECUTION,
        "program": PROGRAM,
    }
    results = [await soak_backend(backend, config, progress) for backend in config.backends]
    report["backends"] = results
    report["clean"] = all(_clean(r) for r in results)
    report["load_average"] = os.getloadavg()
    return report


def configure(
    *,
    quick: bool,
    executions: int | None,
    sessions: int | None,
    backend: str,
    max_seconds: float | None = None,
) -> SoakConfig:
    """The configuration the command line asks for (defaults, or --quick's)."""
    base = QUICK if quick else SoakConfig()
    backends = BACKENDS if backend == "both" else (backend,)
    if any(b not in BACKENDS for b in backends):
        raise ValueError("backend must be local, server or both")
    return replace(
        base,
        executions=executions if executions is not None else base.executions,
        sessions=sessions if sessions is not None else base.sessions,
        backends=tuple(b for b in BACKENDS if b in backends),
        max_seconds=max_seconds if max_seconds is not None else base.max_seconds,
    )
