"""``ptc bench scenarios`` and ``ptc bench all``: run the suite, print a summary, write the JSON
results and the HTML report."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openptc.bench.html_report import render_html
from openptc.bench.latency_model import LatencyModel
from openptc.bench.prices import load_prices
from openptc.bench.report import write_report
from openptc.bench.scenario_bench import (
    DEFAULT_TOOL_LATENCY_S,
    MODES,
    BenchSettings,
    run_scenario_bench,
)
from openptc.bench.scenario_runs import ModelSource
from openptc.scenarios.suite import select

console = Console()
RESULTS_DIR = Path("benchmarks/results")
TRANSCRIPTS_DIR = Path("benchmarks/transcripts")


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"[green]{value:.1%} less[/green]" if value >= 0 else f"[red]{-value:.1%} more[/red]"


def scenario_table(report: dict[str, Any]) -> Table:
    """One row per scenario: verdicts, model calls, and PTC's reductions (gate applied)."""
    table = Table(
        "scenario", "right", "model calls", "input tokens", "input", "cost", "time (modelled)",
        title=f"PTC vs direct ({report['model']})",
        caption="ptc / direct; reductions count only where both answers are right",
    )  # fmt: skip
    for row in report["scenarios"]:
        ptc, direct = row["modes"]["ptc"], row["modes"]["direct"]
        reductions = row["reductions"] or {}
        right = " / ".join("[green]yes[/green]" if r["correct"] else "[red]NO[/red]"
                           for r in (ptc, direct))  # fmt: skip
        table.add_row(
            row["name"],
            right,
            f"{ptc['model_calls']} vs {direct['model_calls']}",
            f"{ptc['input_tokens']:,} / {direct['input_tokens']:,}",
            _pct(reductions.get("input_tokens")),
            _pct(reductions.get("cost_usd")),
            _pct(reductions.get("modelled_s")),
        )
    return table


def summary_lines(report: dict[str, Any]) -> list[str]:
    summary = report["summary"]
    n, right = summary["scenarios"], summary["right"]
    lines = [f"answered right: ptc {right['ptc']}/{n}, direct {right['direct']}/{n}"]
    if report["scripted"]:
        by_design = summary["wrong_by_design"]
        lines[0] += " (scripted brains: what is right or wrong is written in code" + (
            f"; the direct answer of {', '.join(by_design)} is wrong by design)"
            if by_design
            else ")"
        )
    for row in report["scenarios"]:
        if not row["counted"]:
            reason = row["modes"]["direct"]["reason"] or row["modes"]["ptc"]["reason"]
            lines.append(f"{row['name']}: {row['gate']}, not counted ({reason})")
    for key, label in (("reductions", "in all"), ("median_reductions", "median scenario")):
        red = summary[key]
        lines.append(
            f"{label} ({summary['counted']} counted): {_pct(red['input_tokens'])} input tokens, "
            f"{_pct(red['cost_usd'])} cost, {_pct(red['modelled_s'])} end-to-end time (modelled)"
        )
    if summary["ptc_loses"]:
        lines.append(f"where PTC does not pay: {', '.join(summary['ptc_loses'])}")
    return lines


def _settings(
    model: str | None, replay: Path | None, tool_latency: float, ttft: float,
    input_tps: float, output_tps: float, prices: Path | None, price_model: str | None,
) -> BenchSettings:  # fmt: skip
    if model and replay:
        raise typer.BadParameter("give --model or --replay, not both", param_hint="--replay")
    if replay is not None and not any(replay.glob("*.jsonl")):
        raise typer.BadParameter(
            f"no transcripts (*.jsonl) in {replay}: record them with --model first",
            param_hint="--replay",
        )
    try:
        latency = LatencyModel(ttft, input_tps, output_tps)
        table = load_prices(prices)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if price_model is not None and price_model not in table.models:
        raise typer.BadParameter(
            f"no row {price_model!r} in the price table; rows: {', '.join(table.models)}",
            param_hint="--price-model",
        )
    # A directory per run: a rerun that fails half-way never overwrites a good recording.
    stem = model.split("@")[0].replace(":", "-").replace("/", "-") if model else ""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = TRANSCRIPTS_DIR / stem / stamp if model else None
    source = ModelSource(model=model, record_to=record, replay_from=replay)
    return BenchSettings(source, tool_latency, latency, table, price_model)


def run_with_progress(names: list[str] | None, settings: BenchSettings) -> dict[str, Any]:
    try:
        scenarios = select(names)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--only") from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("scenarios", total=len(scenarios) * len(MODES))

        def step(message: str) -> None:
            bar.console.print(f"  {message}")
            bar.advance(task)

        return asyncio.run(run_scenario_bench(scenarios, settings, progress=step))


def write_html(report: dict[str, Any], peers: dict[str, Any] | None, directory: Path) -> Path:
    path = directory / f"report-{report['when'].replace(':', '').replace('-', '')}.html"
    directory.mkdir(parents=True, exist_ok=True)
    page = render_html(report, peers)
    path.write_text(page)
    (directory / "report-latest.html").write_text(page)
    return path


Only = Annotated[
    list[str] | None,
    typer.Option("--only", help="Run only this scenario (repeat for more), e.g. --only privacy."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(help="A real model (e.g. anthropic:claude-sonnet-4-5); each run's transcripts "
                 f"are recorded under {TRANSCRIPTS_DIR}/<model>/<time>/ for --replay."),
]  # fmt: skip
ReplayOpt = Annotated[
    Path | None, typer.Option(help="Replay the transcripts in this directory (offline).")
]
Latency = Annotated[
    float, typer.Option(min=0, help="Simulated latency of each tool call, seconds.")
]
Ttft = Annotated[float, typer.Option(help="Latency model: time to first token, seconds.")]
InTps = Annotated[float, typer.Option(help="Latency model: input tokens read per second.")]
OutTps = Annotated[float, typer.Option(help="Latency model: output tokens written per second.")]
PricesOpt = Annotated[Path | None, typer.Option(help="A price table (JSON) to use instead.")]
PriceModel = Annotated[str | None, typer.Option(help="The price table row to bill.")]
Out = Annotated[Path, typer.Option(help="Directory for the JSON results and the HTML report.")]


def bench_scenarios(
    only: Only = None, model: ModelOpt = None, replay: ReplayOpt = None,
    tool_latency: Latency = DEFAULT_TOOL_LATENCY_S, ttft: Ttft = 0.5,
    input_tps: InTps = 10_000.0, output_tps: OutTps = 60.0, prices: PricesOpt = None,
    price_model: PriceModel = None, out: Out = RESULTS_DIR,
) -> None:  # fmt: skip
    """The scenario suite in ptc and direct mode: tokens, calls, cost, time, correctness."""
    settings = _settings(model, replay, tool_latency, ttft, input_tps, output_tps, prices,
                         price_model)  # fmt: skip
    report = run_with_progress(only, settings)
    _finish(report, None, out)


def bench_peers(
    quick: Annotated[bool, typer.Option(help="Fewer rounds (about 15 s).")] = False,
    out: Out = RESULTS_DIR,
) -> None:
    """openptc's sandbox against smolagents, pydantic-monty, plain exec and python -I -S.

    The Docker backend joins them when DOCKER_HOST reaches an engine with the sandbox image.
    """
    _run_peers(quick, out)


def _run_peers(quick: bool, out: Path) -> dict[str, Any]:
    from openptc.bench.peers_bench import peer_tables, run_peers_bench

    peers = asyncio.run(run_peers_bench(quick=quick, progress=lambda m: console.print(f"  {m}")))
    for table in peer_tables(peers):
        console.print(table)
    console.print(f"peers results written to {write_report(peers, out)}")
    return peers


def bench_all(
    quick: Annotated[bool, typer.Option(help="Fewer rounds for the peers.")] = False,
    out: Out = RESULTS_DIR,
) -> None:
    """The scenario suite and the peers, offline, with one HTML report of both."""
    settings = _settings(None, None, DEFAULT_TOOL_LATENCY_S, 0.5, 10_000.0, 60.0, None, None)
    report = run_with_progress(None, settings)
    console.print("peers:")
    peers = _run_peers(quick, out)
    _finish(report, peers, out)


def _finish(report: dict[str, Any], peers: dict[str, Any] | None, out: Path) -> None:
    console.print(scenario_table(report))
    for line in summary_lines(report):
        console.print(line)
    console.print(f"results written to {write_report(report, out)}")
    console.print(f"report written to {write_html(report, peers, out)}")
    wrong_ptc = [r["name"] for r in report["scenarios"] if not r["modes"]["ptc"]["correct"]]
    if wrong_ptc:
        console.print(f"[red]ptc mode answered wrong: {', '.join(wrong_ptc)}[/red]")
        raise typer.Exit(1)
