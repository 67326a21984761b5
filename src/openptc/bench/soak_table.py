"""The soak benchmark's results as tables: the load against its baseline, and what was left.

One column per backend, one row per figure, so that the tables fit a narrow terminal.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

_CPU = {"client": "this process", "server": "server", "sandboxes": "sandboxes"}


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(value: int) -> str:
    return str(value) if not value else f"[red]{value}[/red]"


def _load_rows(r: dict[str, Any]) -> list[str]:
    latency, alone, ratios = r["latency"], r["baseline"], r["ratios"]
    stopped = "" if r["stopped_by"] == "count" else " (time up)"
    return [
        f"{r['executions']:,}{stopped}",
        _count(r["errors"]),
        f"{latency['p50_ms']:.1f} ms ({_x(ratios['p50_vs_baseline_p50'])})",
        f"{latency['p99_ms']:.1f} ms ({_x(ratios['p99_vs_baseline_p99'])})",
        f"{r['throughput_per_s']:.0f}/s ({_x(ratios['throughput_vs_one_session'])})",
        f"{alone['p50_ms']:.1f} / {alone['p99_ms']:.1f} ms, {alone['per_s']:.0f}/s",
        *(_ms(r["cpu_ms_per_execution"].get(key)) for key in _CPU),
    ]


def _leak_rows(r: dict[str, Any]) -> list[str]:
    leaks, memory, server = r["leaks"], r["memory"], r.get("server")
    client, server_rss = memory["client_rss_mb"], memory.get("server_rss_mb")
    return [
        _count(len(leaks["processes_left"])),
        f"{leaks['fds_before']} -> {leaks['fds_after']}",
        f"{client['before']:.1f} -> {client['after']:.1f} MB",
        "-"
        if server_rss is None
        else f"{server_rss['after_baseline']:.1f} -> {server_rss['after_load']:.1f} MB",
        "-" if server is None else " -> ".join(map(str, server["sandbox_processes"])),
        f"{leaks['run_temp_dirs']} used, {_count(len(leaks['run_temp_dirs_left']))} left",
        f"{leaks['temp_dirs_before']} -> {leaks['temp_dirs_after']}",
        "-" if server is None else f"{server['exit_code']} after {server['stop_s']:.1f} s",
    ]


def _table(title: str, caption: str, labels: list[str], columns: dict[str, list[str]]) -> Table:
    table = Table("", *columns, title=title, caption=caption)
    for i, label in enumerate(labels):
        table.add_row(label, *(cells[i] for cells in columns.values()))
    return table


def _problems(report: dict[str, Any]) -> Table | None:
    rows = [(r["backend"], e) for r in report["backends"] for e in r["error_samples"]]
    rows += [
        (r["backend"], f"left: pid {p['pid']}: {p['cmdline']}")
        for r in report["backends"]
        for p in r["leaks"]["processes_left"]
    ]
    if not rows:
        return None
    table = Table("backend", "first errors and leftover processes", title="what went wrong")
    for backend, message in rows:
        table.add_row(backend, message)
    return table


def soak_tables(report: dict[str, Any]) -> list[Table]:
    config, backends = report["config"], report["backends"]
    load = _table(
        f"{config['sessions']} sessions at once (ratio to one session alone, same run)",
        f"each execution: {config['tool_calls_per_execution']} tool calls, its result checked",
        ["executions", "unintended errors", "latency p50", "latency p99", "throughput",
         "alone: p50 / p99, rate", *(f"CPU ms per exec, {w}" for w in _CPU.values())],
        {r["backend"]: _load_rows(r) for r in backends},
    )  # fmt: skip
    leaks = _table(
        "after closing every session and the sandbox (or server): before -> after",
        "tmp: openptc-* in the temporary directory, all users' (the machine may be shared)",
        ["processes left", "descriptors", "RSS, this process", "RSS, server (load)",
         "server sandbox procs", "run's tmp dirs", "tmp openptc-*", "server exit"],
        {r["backend"]: _leak_rows(r) for r in backends},
    )  # fmt: skip
    problems = _problems(report)
    return [load, leaks] if problems is None else [load, leaks, problems]
