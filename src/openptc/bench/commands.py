"""The ``ptc bench ...`` commands: each runs one benchmark, prints its table, writes its JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from openptc.bench import replay_bench
from openptc.bench.report import write_report
from openptc.bench.sandbox_bench import run_sandbox_bench
from openptc.bench.scenario_cli import bench_all, bench_peers, bench_scenarios

bench_app = typer.Typer(help="Benchmarks; each figure is a ratio to a baseline from the same run.")
console = Console()

RESULTS_DIR = Path("benchmarks/results")

bench_app.command("scenarios")(bench_scenarios)
bench_app.command("peers")(bench_peers)
bench_app.command("all")(bench_all)


def _mark(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]NO[/red]"


@bench_app.command("sandbox")
def bench_sandbox(
    quick: Annotated[bool, typer.Option(help="Fewer rounds (for a smoke test).")] = False,
    out: Annotated[Path, typer.Option(help="Directory for the JSON results.")] = RESULTS_DIR,
) -> None:
    """Cold and warm start, bridge round trip, fan-out and memory of the local sandbox."""
    report = asyncio.run(run_sandbox_bench(quick=quick, progress=lambda m: console.print(f"  {m}")))
    table = Table("figure", "ours", "baseline", "ratio", "target", "met")
    for figure in report["figures"]:
        unit = figure["unit"]
        baseline = figure["baseline"]
        ratio = figure["ratio"]
        table.add_row(
            figure["name"],
            f"{figure['value']:.2f} {unit}",
            f"{baseline:.2f} {unit}" if baseline is not None else "-",
            f"{ratio:.2f}x" if ratio is not None else "-",
            figure["target"],
            _mark(bool(figure["met"])),
        )
    console.print(table)
    path = write_report(report, out)
    console.print(f"results written to {path}")


@bench_app.command("replay")
def bench_replay(
    quick: Annotated[bool, typer.Option(help="Fewer rounds (for a smoke test).")] = False,
    out: Annotated[Path, typer.Option(help="Directory for the JSON results.")] = RESULTS_DIR,
) -> None:
    """Replay (stateless interpreters) vs the live bridge: passes and interpreter time."""
    report = asyncio.run(
        replay_bench.run_replay_bench(quick=quick, progress=lambda m: console.print(f"  {m}"))
    )
    table = Table(
        "scenario", "calls", "passes", "bridge", "replay", "x", "bridge wall", "replay wall", "x",
        "same", title="replay vs the live bridge: time in the interpreter and wall time (ms)",
        caption=report["interpreter"],
    )  # fmt: skip
    for s in report["scenarios"]:
        table.add_row(
            s["name"],
            str(s["tool_calls"]),
            str(s["passes"]),
            f"{s['bridge_ms']:.1f}",
            f"{s['replay_interpreter_ms']:.1f}",
            f"{s['interpreter_ratio']:.2f}x",
            f"{s['bridge_wall_ms']:.1f}",
            f"{s['replay_wall_ms']:.1f}",
            f"{s['wall_ratio']:.2f}x",
            _mark(s["same_output"]),
        )
    console.print(table)
    path = write_report(report, out)
    console.print(f"results written to {path}")


@bench_app.command("proxy")
def bench_proxy(
    quick: Annotated[bool, typer.Option(help="Fewer requests (for a smoke test).")] = False,
    requests: Annotated[
        int | None,
        typer.Option(help="Sequential requests to each target (default 300; 60 with --quick)."),
    ] = None,
    concurrent: Annotated[int, typer.Option(help="Text-only requests sent at once.")] = 200,
    ptc_concurrent: Annotated[
        int, typer.Option(help="PTC requests sent at once (each makes a container).")
    ] = 20,
    out: Annotated[Path, typer.Option(help="Directory for the JSON results.")] = RESULTS_DIR,
) -> None:
    """The proxy's overhead per request (vs in-process and bare HTTP) and concurrent requests."""
    from openptc.bench.proxy_bench import run_proxy_bench

    report = asyncio.run(
        run_proxy_bench(
            quick=quick,
            requests=requests,
            concurrent=concurrent,
            ptc_concurrent=ptc_concurrent,
            progress=lambda m: console.print(f"  {m}"),
        )
    )
    table = Table(
        "figure", "ours", "baseline", "difference", "ratio", "target", "met",
        title="the proxy against baselines from the same run (scripted backends)",
        caption=f"client: {report['client']}",
    )  # fmt: skip
    for figure in report["figures"]:
        unit, ratio = figure["unit"], figure["ratio"]
        table.add_row(
            figure["name"],
            f"{figure['ours']:.2f} {unit}",
            f"{figure['baseline']:.3f} {unit}",
            f"{figure['difference']:+.2f} {unit}",
            "-" if ratio is None else f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.2f}x",
            figure["target"] or "-",
            "-" if figure["met"] is None else _mark(figure["met"]),
        )
    console.print(table)
    path = write_report(report, out)
    console.print(f"results written to {path}")
    if any(figure["details"].get("errors") for figure in report["figures"]):
        console.print("[red]some requests failed: see error_samples in the results[/red]")
        raise typer.Exit(1)


@bench_app.command("fleet")
def bench_fleet(
    rounds: Annotated[int, typer.Option(help="Executions per latency figure.")] = 30,
    per_session: Annotated[int, typer.Option(help="Executions per session for throughput.")] = 10,
    out: Annotated[Path, typer.Option(help="Directory for the JSON results.")] = RESULTS_DIR,
) -> None:
    """Remote and Docker backends against the local one; the sandbox server's throughput."""
    from openptc.bench.fleet_bench import run_fleet_bench

    report = asyncio.run(
        run_fleet_bench(
            rounds=rounds, per_session=per_session, progress=lambda m: console.print(f"  {m}")
        )
    )
    table = Table("figure", "p50", "p95", "local p50", "ratio", title="backends vs local")
    for f in report["figures"]:
        table.add_row(
            f["name"],
            f"{f['ours_p50']:.2f} {f['unit']}",
            f"{f['ours_p95']:.2f} {f['unit']}",
            f"{f['local_p50']:.2f} {f['unit']}",
            f"{f['ratio']:.2f}x",
        )
    console.print(table)
    rates = Table("sessions", "remote exec/s", "local exec/s", "ratio", title="throughput")
    for t in report["throughput"]:
        rates.add_row(
            str(t["sessions"]),
            f"{t['remote_per_s']:.0f}",
            f"{t['local_per_s']:.0f}",
            f"{t['ratio']:.2f}x",
        )
    console.print(rates)
    console.print(f"docker: {report['docker']}")
    console.print(f"results written to {write_report(report, out)}")


@bench_app.command("soak")
def bench_soak(
    executions: Annotated[
        int | None,
        typer.Option(min=1, help="Executions in all (default 10,000; 400 with --quick)."),
    ] = None,
    sessions: Annotated[
        int | None,
        typer.Option(min=1, help="Sessions executing at once (default 50; 10 with --quick)."),
    ] = None,
    backend: Annotated[str, typer.Option(help="local, server or both.")] = "both",
    max_seconds: Annotated[
        float | None,
        typer.Option(min=1, help="Most seconds of load per backend (default 600)."),
    ] = None,
    quick: Annotated[bool, typer.Option(help="400 executions over 10 sessions.")] = False,
    out: Annotated[Path, typer.Option(help="Directory for the JSON results.")] = RESULTS_DIR,
) -> None:
    """Executions with tool calls over many sessions at once, then a look for leaks."""
    from openptc.bench.soak_bench import configure, run_soak_bench
    from openptc.bench.soak_table import soak_tables

    try:
        config = configure(
            quick=quick,
            executions=executions,
            sessions=sessions,
            backend=backend,
            max_seconds=max_seconds,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--backend") from None
    report = asyncio.run(run_soak_bench(config, progress=console.print))
    for table in soak_tables(report):
        console.print(table)
    console.print(f"results written to {write_report(report, out)}")
    if not report["clean"]:
        console.print("[red]errors, or processes, descriptors or directories left: see above[/red]")
        raise typer.Exit(1)


@bench_app.command("mcp")
def bench_mcp(
    quick: Annotated[
        bool, typer.Option(help="One round; ptc mcp only in front of the combined servers.")
    ] = False,
    rounds: Annotated[
        int | None, typer.Option(min=1, help="Rounds of the expense audit (default 5; 1 quick).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the JSON results.")] = RESULTS_DIR,
) -> None:
    """Tool definitions in an MCP client's context, and the expense audit over MCP: ptc mcp vs
    the same servers connected directly."""
    from openptc.bench.mcp_bench import run_mcp_bench

    report = asyncio.run(
        run_mcp_bench(quick=quick, rounds=rounds, progress=lambda m: console.print(f"  {m}"))
    )
    for table in mcp_tables(report):
        console.print(table)
    console.print(f"results written to {write_report(report, out)}")
    audit = report["expense"]
    if not (audit["direct_over_mcp"]["correct"] and audit["through_ptc_mcp"]["correct"]):
        console.print("[red]a wrong answer in the expense audit: see the results[/red]")
        raise typer.Exit(1)


def mcp_tables(report: dict[str, Any]) -> list[Table]:
    """The figures of ``ptc bench mcp`` as tables (also used by the tests)."""
    servers = Table("server", "from", "tools", "definition tokens", title="upstream MCP servers")
    for s in report["servers"]:
        if s["status"] == "ok":
            servers.add_row(s["name"], s["source"], str(s["tools"]), f"{s['tool_tokens']:,}")
        else:
            servers.add_row(s["name"], s["source"], "-", f"[red]{s['status']}[/red]: {s['reason']}")
    definitions = Table(
        "servers", "tools", "upstream", "ptc mcp", "ratio", "+ instructions", "describe all",
        title="tokens of tool definitions in the client's context: every upstream schema vs "
        "ptc mcp in front of the same servers",
        caption=f"tokenizer {report['tokenizer']}; 'describe all': describe_tools of every tool",
    )  # fmt: skip
    for d in report["definitions"]:
        with_instructions = d["ptc_mcp_tokens"] + d["ptc_mcp_instructions_tokens"]
        definitions.add_row(
            d["name"],
            f"{d['upstream_tools']} -> {d['ptc_mcp_tools']}",
            f"{d['upstream_tokens']:,}",
            f"{d['ptc_mcp_tokens']:,}",
            f"{d['ratio']:.3f}x",
            f"{with_instructions:,}",
            f"{d['describe_all_tokens']:,}",
        )
    audit = report["expense"]
    direct, code_mode = audit["direct_over_mcp"], audit["through_ptc_mcp"]
    runs = Table(
        "", "direct over MCP", "through ptc mcp", "ratio",
        title=f"the expense audit served as an MCP server ({audit['model']}, "
        f"median of {direct['rounds']})",
    )  # fmt: skip
    for key, label in (
        ("model_calls", "model calls"),
        ("input_tokens", "input tokens"),
        ("output_tokens", "output tokens"),
        ("wall_time_s", "wall time (s)"),
    ):
        ratio = audit["ratios"][key]
        runs.add_row(
            label,
            f"{direct[key]:,.3f}" if key == "wall_time_s" else f"{direct[key]:,.0f}",
            f"{code_mode[key]:,.3f}" if key == "wall_time_s" else f"{code_mode[key]:,.0f}",
            "-" if ratio is None else f"{ratio:.4f}x",
        )
    upstream = (f"{direct['tool_calls']:.0f}", str(code_mode["upstream_tool_calls"]))
    runs.add_row("upstream tool calls", *upstream, "")
    runs.add_row("answer right", _mark(direct["correct"]), _mark(code_mode["correct"]), "")
    return [servers, definitions, runs]
