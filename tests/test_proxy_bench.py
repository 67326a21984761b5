"""``ptc bench proxy`` with tiny counts: it runs, no request fails, the report is complete.

Behaviour only: no figure is held to a wall-clock threshold (the machine is shared and noisy).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openptc.bench.proxy_bench import run_proxy_bench
from openptc.bench.proxy_workload import check_ptc, check_text
from openptc.bench.report import write_report


async def test_the_proxy_bench_reports_every_figure_without_errors(tmp_path: Path) -> None:
    lines: list[str] = []
    report = await run_proxy_bench(
        quick=True, requests=20, concurrent=20, ptc_concurrent=4, progress=lines.append
    )
    path = write_report(report, tmp_path)
    assert path.name.startswith("proxy-") and path.suffix == ".json"
    written = json.loads(path.read_text())
    assert written["benchmark"] == "proxy"
    assert {"when", "machine", "client", "server", "sandbox_isolation"} <= set(written)
    figures = {f["name"]: f for f in written["figures"]}
    assert set(figures) == {
        "overhead_vs_in_process_p50",
        "own_cost_vs_bare_http_p50",
        "own_cost_vs_bare_http_p95",
        "concurrent_20_text_wall",
        "concurrent_4_ptc_p50",
    }
    for figure in figures.values():
        assert {"ours", "baseline", "difference", "ratio", "unit", "target", "met"} <= set(figure)
        assert figure["ours"] > 0 and figure["baseline"] > 0 and figure["ratio"] > 0
        assert figure["difference"] == pytest.approx(figure["ours"] - figure["baseline"])
    assert len(lines) == 4  # one progress line per measurement

    latency = figures["overhead_vs_in_process_p50"]["details"]
    assert latency["requests"] == 20
    assert latency["overhead_ms"] == pytest.approx(
        latency["proxy_p50_ms"] - latency["in_process_p50_us"] / 1000
    )
    assert latency["own_cost_ms"] == pytest.approx(
        latency["proxy_p50_ms"] - latency["bare_http_p50_ms"]
    )
    assert latency["ratio_to_bare_http"] > 0 and latency["ratio_to_in_process"] > 0
    assert latency["sdk_p50_ms"] > 0  # the official SDK parsed the proxy's answers

    text = figures["concurrent_20_text_wall"]
    assert text["met"] is True and text["details"]["errors"] == 0
    assert text["details"]["proxy"]["errors"] == text["details"]["bare_http"]["errors"] == 0
    assert text["details"]["first_burst_new_connections"]["proxy_errors"] == 0
    assert text["details"]["proxy"]["throughput_per_s"] > 0

    ptc = figures["concurrent_4_ptc_p50"]
    details = ptc["details"]
    assert ptc["met"] is True and details["errors"] == 0
    assert details["concurrent_in_existing_containers"]["errors"] == 0
    assert details["distinct_containers_in_batches"] == 4  # each request made its own
    assert details["containers_live_after"] == details["containers_made"]


def _ptc_response(stdout: str) -> dict[str, object]:
    return {
        "stop_reason": "end_turn",
        "container": {"id": "container_x"},
        "content": [
            {"type": "server_tool_use"},
            {"type": "code_execution_tool_result", "content": {"stdout": stdout, "return_code": 0}},
            {"type": "text", "text": "1 + 1 = 2."},
        ],
    }


def test_a_wrong_answer_counts_as_an_error() -> None:
    assert check_ptc(_ptc_response("2\n")) is None
    problem = check_ptc(_ptc_response("3\n"))
    assert problem is not None and "did not print 2" in problem
    assert check_text({"stop_reason": "end_turn", "content": [{"text": "other"}]}) is not None
