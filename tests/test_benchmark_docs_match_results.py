"""The benchmark figures in README.md and benchmarks/README.md are those of the newest committed
results: the tables are regenerated from them here and must appear verbatim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openptc.bench.markdown import isolation_table, peers_table, scenarios_table, stresses_table
from openptc.scenarios.suite import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def newest(kind: str) -> tuple[Path, dict[str, Any]]:
    runs = sorted(RESULTS.glob(f"{kind}-*.json"))
    assert runs, f"no ptc bench {kind} results committed"
    return runs[-1], json.loads(runs[-1].read_text())


def test_the_committed_scenario_run_covers_the_whole_suite() -> None:
    _, report = newest("scenarios")
    assert [r["name"] for r in report["scenarios"]] == [s.name for s in SCENARIOS]
    expense = report["scenarios"][0]
    assert expense["modes"]["ptc"]["model_calls"] == 2
    assert expense["modes"]["direct"]["model_calls"] >= 21
    assert expense["reductions"]["input_tokens"] >= 0.9
    assert all(r["modes"]["ptc"]["correct"] for r in report["scenarios"])
    assert report["summary"]["ptc_loses"] == ["judgment"]


def test_both_readmes_show_the_newest_scenario_results() -> None:
    path, report = newest("scenarios")
    table = scenarios_table(report)
    assert table in (ROOT / "README.md").read_text()
    bench_readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert table in bench_readme
    assert stresses_table(report) in bench_readme
    assert f"`results/{path.name}`" in bench_readme


def test_the_benchmarks_readme_shows_the_newest_peer_results() -> None:
    path, report = newest("peers")
    bench_readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert peers_table(report) in bench_readme
    assert isolation_table(report) in bench_readme
    assert f"`results/{path.name}`" in bench_readme
