"""`ptc bench soak` end to end with a tiny configuration; behaviour only, never timings."""

from __future__ import annotations

import io
import json

from rich.console import Console
from typer.testing import CliRunner

from openptc.bench.soak_bench import QUICK, SoakConfig, configure, run_soak_bench
from openptc.bench.soak_table import soak_tables
from openptc.cli import app

TINY = SoakConfig(executions=40, sessions=4, baseline_rounds=5)


async def test_both_backends_soak_without_errors_or_leftovers() -> None:
    seen: list[str] = []
    report = await run_soak_bench(TINY, progress=seen.append)
    json.dumps(report)  # the results file is JSON
    assert report["benchmark"] == "soak"
    assert report["config"]["executions"] == 40 and report["config"]["sessions"] == 4
    assert report["clean"] is True
    assert [r["backend"] for r in report["backends"]] == ["local", "server"]
    for r in report["backends"]:
        assert r["executions"] == 40 and r["stopped_by"] == "count"
        assert r["tool_calls"] == 40 * report["config"]["tool_calls_per_execution"]
        assert (r["errors"], r["error_samples"]) == (0, [])
        assert r["sessions_opened"] == 4
        assert 0 < r["latency"]["p50_ms"] <= r["latency"]["p99_ms"] <= r["latency"]["max_ms"]
        assert r["baseline"]["executions"] == 5 and r["baseline"]["p50_ms"] > 0
        assert all(ratio is not None and ratio > 0 for ratio in r["ratios"].values())
        assert r["memory_samples"][-1]["executions"] == 40
        assert r["memory"]["client_rss_mb"]["after"] > 0
        leaks = r["leaks"]
        assert leaks["processes_left"] == []
        assert leaks["fds_after"] <= leaks["fds_before"]  # none left open by the run
        assert leaks["run_temp_dirs_left"] == []
        assert {"temp_dirs_before", "temp_dirs_after", "temp_dirs_new"} <= set(leaks)
    server = report["backends"][1]["server"]
    assert server["sessions_active"] == 0
    assert server["executions_ok"] == server["executions_expected"]
    assert server["tool_calls"] == server["tool_calls_expected"]
    assert server["exit_code"] == 0
    before, after = server["sandbox_processes"]
    assert after == before
    assert any("40/40 executions" in line for line in seen)

    out = io.StringIO()
    console = Console(file=out, width=100)
    for table in soak_tables(report):
        console.print(table)
    assert "unintended errors" in out.getvalue() and "processes left" in out.getvalue()


def test_the_command_line_chooses_the_configuration() -> None:
    assert configure(quick=True, executions=None, sessions=None, backend="both") == QUICK
    chosen = configure(quick=False, executions=7, sessions=3, backend="server")
    assert (chosen.executions, chosen.sessions, chosen.backends) == (7, 3, ("server",))
    assert configure(quick=False, executions=None, sessions=None, backend="local").executions == (
        10_000
    )
    result = CliRunner().invoke(app, ["bench", "soak", "--backend", "docker"])
    assert result.exit_code == 2 and "local, server or both" in result.output
