"""The benchmark report as Chromium shows it: what a reader sees, not just what the HTML says.

Debian's chromium (``scripts/chromium.sh`` installs it when missing), driven by Playwright. The
scenario half comes from a live run of the suite; the peers half from the newest committed
``ptc bench peers`` results, so a format change that breaks the page shows here.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from openptc.bench.html_report import render_html
from openptc.bench.scenario_bench import BenchSettings, run_scenario_bench
from openptc.scenarios.suite import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _chromium() -> str:
    found = subprocess.run(
        ["bash", str(ROOT / "scripts/chromium.sh")], capture_output=True, text=True
    )
    if found.returncode != 0:
        pytest.skip(f"no chromium here: {found.stderr.strip()}")
    return found.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def reports() -> tuple[dict[str, Any], dict[str, Any]]:
    import asyncio

    scenarios = asyncio.run(run_scenario_bench(SCENARIOS, BenchSettings(tool_latency_s=0.0)))
    newest = sorted((ROOT / "benchmarks/results").glob("peers-*.json"))[-1]
    return scenarios, json.loads(newest.read_text())


@pytest.fixture(scope="module")
def page(
    reports: tuple[dict[str, Any], dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Page]:
    html = tmp_path_factory.mktemp("report") / "report.html"
    html.write_text(render_html(*reports))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside: list[str] = []
        page.on(
            "request", lambda r: outside.append(r.url) if not r.url.startswith("file:") else None
        )
        page.goto(html.as_uri())
        page.screenshot(path=str(html.with_suffix(".png")), full_page=True)
        yield page
        assert outside == [], f"the report fetched {outside}: it must be self-contained"
        browser.close()


def test_the_summary_shows_every_scenario_and_its_verdict(
    page: Page, reports: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    scenarios, _ = reports
    assert page.locator("h1").inner_text() == "openptc benchmark report"
    assert page.locator(".scripted").is_visible()  # a scripted run says so
    rows = page.locator("#overview tr")
    assert rows.count() == len(scenarios["scenarios"]) + 1
    for row in scenarios["scenarios"]:
        shown = page.locator(f'#overview tr[data-scenario="{row["name"]}"]').inner_text()
        ptc, direct = row["modes"]["ptc"], row["modes"]["direct"]
        assert f"{ptc['model_calls']} vs {direct['model_calls']}" in shown
        assert ("yes" if ptc["correct"] else "NO") in shown
    cards = page.locator("#summary").inner_text()
    n = len(scenarios["scenarios"])
    assert f"{scenarios['summary']['right']['ptc']}/{n} ptc" in cards
    assert "2 model calls vs" in cards  # the expense audit's card


def test_each_chart_draws_one_line_per_mode_with_a_point_per_model_call(
    page: Page, reports: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    scenarios, _ = reports
    for row in scenarios["scenarios"]:
        section = page.locator(f"#scenario-{row['name']}")
        assert section.is_visible()
        for mode in ("ptc", "direct"):
            line = section.locator(f"svg polyline[data-mode={mode}]")
            assert line.get_attribute("data-points") == str(row["modes"][mode]["model_calls"])
            box = section.locator("svg").bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150


def test_losses_and_wrong_answers_are_shown_as_such(
    page: Page, reports: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    scenarios, _ = reports
    for row in scenarios["scenarios"]:
        text = page.locator(f"#scenario-{row['name']}").inner_text()
        if not row["ptc_pays"]:
            assert "built to show where PTC does not pay" in text
            assert "more" in page.locator(f"#scenario-{row['name']} .runs").inner_text()
        if not row["counted"]:
            assert "savings not counted" in text
        ptc, direct = row["modes"]["ptc"], row["modes"]["direct"]
        if ptc["private_total"]:
            assert f"ptc {ptc['private_leaked']} of {ptc['private_total']}" in text
            assert f"direct {direct['private_leaked']} of" in text
        for mode in ("ptc", "direct"):
            if not row["modes"][mode]["correct"]:
                assert row["modes"][mode]["reason"][:40] in text


def test_the_peers_show_isolation_then_speed_then_what_runs(
    page: Page, reports: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, peers = reports
    engines, figures = page.locator("#peers-table"), page.locator("#peers-figures")
    assert engines.is_visible() and figures.is_visible()
    for engine in peers["engines"]:
        named = f'tr[data-engine="{engine["name"]}"]'
        assert engine["isolation"][:30] in engines.locator(named).inner_text()
        row = figures.locator(named).inner_text()
        if engine["status"].startswith("skipped"):
            assert engine["status"][:40] in row
            continue
        for workload in peers["workloads"]:
            result = workload["results"][engine["name"]]
            assert ("cannot run" in row) if "unsupported" in result else (workload["unit"] in row)
    coverage = page.locator("#coverage")
    assert coverage.locator("tr").count() == len(peers["coverage"]) + 1
    local = coverage.locator('tr[data-engine="openptc local"]').inner_text()
    probes = len(peers["coverage"]["openptc local"])
    assert f"{probes}/{probes}" in local  # full CPython runs every probe
