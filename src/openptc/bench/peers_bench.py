"""``ptc bench peers``: openptc's sandbox against the engines a user would pick instead.

Every engine runs every workload in the same run, rounds interleaved where it matters, and
every figure stands beside a baseline measured in that same run on the same (noisy) machine:
plain ``exec`` in the host process for execution, tool calls and CPU; a bare ``python -I -S``
spawn for cold start; the ideal 100 ms for the fan-out; a bare idle interpreter for memory. What an
engine cannot run is recorded with its reason, beside the isolation each engine gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from openptc.bench import peer_workloads as w
from openptc.bench.peer_engines import (
    SMOLAGENTS_IMPORTS,
    Engine,
    FreshProcessEngine,
    MontyEngine,
    PlainExecEngine,
    SmolagentsEngine,
    Workload,
    openptc_docker,
    openptc_local,
)
from openptc.bench.report import report_header
from openptc.bench.sandbox_bench import percentile

Progress = Callable[[str], None]
FLOOR = "plain exec"


@dataclass(frozen=True)
class Sizes:
    """How many rounds and how large the loops are: full (about a minute) or quick (~15 s)."""

    cold_rounds: int
    warm_rounds: int
    tool_calls: int
    tool_rounds: int
    fan_out_rounds: int
    cpu_iterations: int
    cpu_rounds: int
    process_sessions: int
    in_process_sessions: int


FULL = Sizes(30, 100, 1000, 7, 5, 200_000, 5, 4, 1000)
QUICK = Sizes(3, 5, 200, 1, 1, 20_000, 1, 2, 200)
UNITS: dict[Workload, str] = {
    "cold_start": "ms",
    "warm_execution": "ms",
    "sequential_tool_calls": "ms per call",
    "fan_out": "ms",
    "cpu_loop": "ms",
    "idle_memory": "MB per session",
}


def method(sizes: Sizes) -> dict[str, str]:
    """What each figure is, in a sentence, with its counts."""
    return {
        "timing": "wall clock on the host around each engine's own run call, p50 over the rounds",
        "cold_start": f"a new session and `{w.TRIVIAL}` in it, {sizes.cold_rounds} rounds "
        "interleaved with a bare `python -I -S -c pass` spawn",
        "warm_execution": f"`{w.TRIVIAL}` on a live session, {sizes.warm_rounds} rounds",
        "sequential_tool_calls": f"{sizes.tool_calls} sequential echo calls in one program "
        "(`await echo(i)`, or `echo(i)` where tools are plain functions), divided by the count, "
        f"so the loop's own interpretation is in it; {sizes.tool_rounds} rounds",
        "fan_out": "100 concurrent 100 ms sleep calls with asyncio.gather, against the ideal "
        f"100 ms; {sizes.fan_out_rounds} rounds",
        "cpu_loop": f"sum of i * i for {sizes.cpu_iterations:,} iterations at module level, the "
        f"same program for every engine (small enough for the slowest); {sizes.cpu_rounds} rounds;"
        " python -I -S pays its spawn in it too",
        "idle_memory": f"sessions that are processes: PSS of each one's process tree, median of "
        f"{sizes.process_sessions}; in-process engines: PSS that {sizes.in_process_sessions} idle "
        "sessions add to a child process, per session; against a bare idle `python -I -S`",
        "coverage": "each probe is the same program for every engine; true when it prints the "
        "expected value",
        "openptc local": "LocalSandbox(pool_size=0): every session a new process; the warm pool, "
        "which hides the cold start in real use, is off here",
        "python -I -S": "spawned with an empty environment; no session, no tools",
        "smolagents": "LocalPythonExecutor as CodeAgent builds it, tools made with @tool, "
        f"imports allowed: {', '.join(SMOLAGENTS_IMPORTS)}",
        "pydantic-monty": "AsyncMonty, one worker per session (max_checkouts_per_worker=1), "
        "max_suspensions raised to 1,000,000 (the default of 1,000 per checkout stops the "
        "tool-call workload)",
    }


def all_engines() -> list[Engine]:
    """openptc's backends, the peers, and the two floors: the host process and a bare spawn."""
    return [
        openptc_local(),
        openptc_docker(),
        SmolagentsEngine(),
        MontyEngine(),
        PlainExecEngine(),
        FreshProcessEngine(),
    ]


async def _start(contenders: Sequence[w.Contender], progress: Progress) -> None:
    """Start each engine and open its live session; one that cannot start is skipped, saying why."""
    for contender in contenders:
        engine = contender.engine
        started = time.perf_counter()
        try:
            await asyncio.wait_for(engine.start(), timeout=120)
            contender.session = await engine.open()
        except Exception as exc:
            contender.skipped = w.reason(exc, limit=600)  # it may say how to enable it
            progress(f"{engine.name}: skipped: {contender.skipped}")
            continue
        contender.setup_ms = (time.perf_counter() - started) * 1000
        progress(f"{engine.name} {engine.version()}: started ({engine.isolation})")


async def _stop(contenders: Sequence[w.Contender]) -> None:
    """Close every session and engine; one that fails to close must not keep the rest open."""
    for contender in contenders:
        with contextlib.suppress(Exception):
            if contender.session is not None:
                await contender.session.close()
        with contextlib.suppress(Exception):
            await contender.engine.stop()


def _able(contenders: Sequence[w.Contender], workload: Workload) -> list[w.Contender]:
    return [c for c in contenders if not c.skipped and workload not in c.engine.gaps]


def _results(
    contenders: Sequence[w.Contender],
    workload: Workload,
    samples: w.Samples,
    baseline: float | None,
    progress: Progress,
) -> dict[str, dict[str, Any]]:
    """Each engine's p50 and ratio to the baseline, or why it has none."""
    results: dict[str, dict[str, Any]] = {}
    for contender in contenders:
        name = contender.engine.name
        if contender.skipped:
            results[name] = {"skipped": contender.skipped}
        elif workload in contender.engine.gaps:
            results[name] = {"unsupported": contender.engine.gaps[workload]}
        elif name in samples.failed:
            results[name] = {"unsupported": samples.failed[name]}
        else:
            value = percentile(samples.values[name], 0.5)
            results[name] = {"value": value, "ratio": value / baseline if baseline else None}
        progress(f"{workload} / {name}: {_cell(results[name], UNITS[workload])}")
    return results


async def _timed_workloads(
    contenders: Sequence[w.Contender], sizes: Sizes, progress: Progress
) -> list[dict[str, Any]]:
    """Cold start, warm execution, tool calls, fan-out and CPU, each across every engine."""
    plans: list[tuple[Workload, int, w.Measure]] = [
        ("cold_start", sizes.cold_rounds, w.cold_ms),
        ("warm_execution", sizes.warm_rounds, w.warm_ms),
        ("sequential_tool_calls", sizes.tool_rounds, w.tool_calls_ms_per_call(sizes.tool_calls)),
        ("fan_out", sizes.fan_out_rounds, w.fan_out_ms),
        ("cpu_loop", sizes.cpu_rounds, w.cpu_ms(sizes.cpu_iterations)),
    ]
    workloads = []
    for workload, rounds, measure in plans:
        able = _able(contenders, workload)
        spawn = w.bare_spawn_ms if workload == "cold_start" else None
        samples = await w.interleave(able, rounds, measure, spawn)
        label, value = _baseline(workload, samples)
        results = _results(contenders, workload, samples, value, progress)
        workloads.append(_workload(workload, {"label": label, "value": value}, results))
    return workloads


def _baseline(workload: Workload, samples: w.Samples) -> tuple[str, float | None]:
    """What a workload's figures are divided by, measured in the same rounds where it can be."""
    if workload == "cold_start":
        return "bare spawn of python -I -S -c pass", _p50(samples.baseline)
    if workload == "fan_out":
        return "ideal: one 100 ms call", 100.0
    return f"{FLOOR} in the host process", _p50(samples.values.get(FLOOR, []))


def _p50(values: Sequence[float]) -> float | None:
    return percentile(values, 0.5) if values else None


def _workload(name: Workload, baseline: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "unit": UNITS[name], "baseline": baseline, "results": results}


async def _memory_workload(
    contenders: Sequence[w.Contender], sizes: Sizes, progress: Progress
) -> dict[str, Any]:
    """Idle memory per session, engine by engine (weighing needs the machine quiet)."""
    bare = await w.bare_idle_mb(3)
    samples = w.Samples()
    notes: dict[str, str] = {}
    for contender in _able(contenders, "idle_memory"):
        name = contender.engine.name
        try:
            memory = await w.session_memory(
                contender.engine, sizes.process_sessions, sizes.in_process_sessions
            )
        except Exception as exc:
            samples.failed[name] = w.reason(exc)
            continue
        samples.values[name] = [memory.mb]
        notes[name] = memory.note
    results = _results(contenders, "idle_memory", samples, bare, progress)
    for name, note in notes.items():
        results[name]["method"] = note
    return _workload("idle_memory", {"label": "bare idle python -I -S", "value": bare}, results)


async def _coverage(
    contenders: Sequence[w.Contender], progress: Progress
) -> tuple[dict[str, dict[str, bool | str]], dict[str, dict[str, str]]]:
    coverage: dict[str, dict[str, bool | str]] = {}
    wrong: dict[str, dict[str, str]] = {}
    for contender in contenders:
        name = contender.engine.name
        if contender.session is None:
            coverage[name] = {probe: f"skipped: {contender.skipped}" for probe in w.PROBES}
            continue
        coverage[name], wrong[name] = await w.coverage(contender.session)
        passed = sum(v is True for v in coverage[name].values())
        progress(f"coverage / {name}: {passed} of {len(w.PROBES)} probes print the right value")
    return coverage, wrong


async def run_peers_bench(
    *, quick: bool = False, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """Every engine through every workload and the coverage probes; the report as a dict."""
    sizes = QUICK if quick else FULL
    contenders = [w.Contender(engine) for engine in all_engines()]
    try:
        await _start(contenders, progress)
        workloads = await _timed_workloads(contenders, sizes, progress)
        workloads.append(await _memory_workload(contenders, sizes, progress))
        coverage, wrong = await _coverage(contenders, progress)
    finally:
        await _stop(contenders)
    return {
        **report_header("peers"),
        "engines": [
            {
                "name": c.engine.name,
                "version": c.engine.version(),
                "isolation": c.engine.isolation,
                "status": f"skipped: {c.skipped}" if c.skipped else "measured",
                "setup_ms": c.setup_ms,
            }
            for c in contenders
        ],
        "workloads": workloads,
        "coverage": coverage,
        "coverage_wrong_output": {name: v for name, v in wrong.items() if v},
        "method": method(sizes),
    }


# --- tables for the CLI ------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _cell(result: dict[str, Any], unit: str) -> str:
    if "skipped" in result:
        return "skipped"
    if "unsupported" in result:
        return "unsupported"
    text = f"{_number(result['value'])} {unit.split()[0]}"
    return text if result.get("ratio") is None else f"{text} ({_number(result['ratio'])}x)"


def peer_tables(report: dict[str, Any]) -> list[Table]:
    """The report as rich tables: engines, figures (engines x workloads), coverage, and what
    each engine could not run, with its reason."""
    return [
        _engines_table(report),
        _figures_table(report),
        _coverage_table(report),
        _gaps_table(report),
    ]


def _engines_table(report: dict[str, Any]) -> Table:
    table = Table(title="Engines and the isolation each gives")
    for column in ("engine", "version", "isolation", "status"):
        table.add_column(column, overflow="fold")
    for engine in report["engines"]:
        table.add_row(engine["name"], engine["version"], engine["isolation"], engine["status"])
    return table


def _figures_table(report: dict[str, Any]) -> Table:
    table = Table(title="Figures (p50; ratio to the baseline in brackets)")
    table.add_column("engine")
    for workload in report["workloads"]:
        table.add_column(f"{workload['name']}\n({workload['unit']})", justify="right")
    for engine in report["engines"]:
        cells = [_cell(wl["results"][engine["name"]], wl["unit"]) for wl in report["workloads"]]
        table.add_row(engine["name"], *cells)
    baselines = [wl["baseline"] for wl in report["workloads"]]
    table.add_row(
        "baseline",
        *(_number(b["value"]) if b["value"] is not None else "-" for b in baselines),
        style="dim",
    )
    table.caption = "baselines: " + "; ".join(
        f"{wl['name']}: {wl['baseline']['label']}" for wl in report["workloads"]
    )
    return table


def _coverage_table(report: dict[str, Any]) -> Table:
    table = Table(title="Language coverage: the same probe programs in every engine")
    table.add_column("engine")
    probes = list(w.PROBES)
    for probe in probes:
        table.add_column(probe, justify="center")
    marks = {True: "yes", False: "WRONG"}
    for name, results in report["coverage"].items():
        row = [marks[r] if isinstance(r, bool) else r.split(":")[0] for r in results.values()]
        table.add_row(name, *row)
    return table


def _gaps_table(report: dict[str, Any]) -> Table:
    table = Table(title="What each engine could not run, and why")
    for column in ("engine", "workload or probe", "reason"):
        table.add_column(column, overflow="fold")
    for workload in report["workloads"]:
        for name, result in workload["results"].items():
            if "unsupported" in result:
                table.add_row(name, workload["name"], result["unsupported"])
    for name, results in report["coverage"].items():
        for probe, result in results.items():
            if isinstance(result, str) and result.startswith("unsupported: "):
                table.add_row(name, f"probe: {probe}", result.removeprefix("unsupported: "))
    for name, wrong in report.get("coverage_wrong_output", {}).items():
        for probe, text in wrong.items():
            table.add_row(name, f"probe: {probe}", f"wrong output: {text}")
    return table
