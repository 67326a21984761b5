"""`ptc bench peers` runs every engine through every workload in quick mode.

Behaviour only: which engines ran what, what they could not run and why. The one wall-clock
assertion is that no engine beats the ideal of the fan-out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rich.console import Console

from openptc.bench import peer_workloads
from openptc.bench.peer_engines import Engine, PeerSession
from openptc.bench.peers_bench import peer_tables, run_peers_bench

ENGINES = {
    "openptc local",
    "openptc docker",
    "smolagents",
    "pydantic-monty",
    "plain exec",
    "python -I -S",
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return asyncio.run(run_peers_bench(quick=True))


def results_of(report: dict[str, Any], engine: str) -> dict[str, dict[str, Any]]:
    return {wl["name"]: wl["results"][engine] for wl in report["workloads"]}


def test_every_engine_appears_with_its_isolation(report: dict[str, Any]) -> None:
    engines = {e["name"]: e for e in report["engines"]}
    assert set(engines) == ENGINES
    assert all(e["isolation"] and e["version"] for e in engines.values())
    assert engines["pydantic-monty"]["version"] == "1.4.0"
    assert engines["smolagents"]["version"] == "1.26.0"
    docker = engines["openptc docker"]
    if docker["status"] != "measured":  # no engine or image here: said, not measured
        assert docker["status"].startswith("skipped: ")
        assert all("skipped" in r for r in results_of(report, "openptc docker").values())


def test_the_floor_and_openptc_local_have_every_figure(report: dict[str, Any]) -> None:
    assert len(report["workloads"]) == 6
    for engine in ("plain exec", "openptc local"):
        for name, result in results_of(report, engine).items():
            # a plain-exec session is a dict: it may weigh less than a page of PSS
            assert result["value"] >= 0 if name == "idle_memory" else result["value"] > 0
    assert all(wl["baseline"]["value"] for wl in report["workloads"])


def test_openptc_local_runs_every_probe(report: dict[str, Any]) -> None:
    assert set(report["coverage"]["openptc local"]) == set(peer_workloads.PROBES)
    assert all(v is True for v in report["coverage"]["openptc local"].values())


def test_smolagents_cannot_await_and_says_so(report: dict[str, Any]) -> None:
    smolagents = report["coverage"]["smolagents"]
    for probe in ("async/await", "asyncio.gather"):
        assert smolagents[probe].startswith("unsupported: ")
        assert "not supported" in smolagents[probe]
    assert "Await is not supported" in results_of(report, "smolagents")["fan_out"]["unsupported"]
    assert results_of(report, "smolagents")["sequential_tool_calls"]["value"] > 0  # sync form


def test_the_tool_less_engine_is_unsupported_where_tools_are_needed(
    report: dict[str, Any],
) -> None:
    fresh = results_of(report, "python -I -S")
    assert "no tool bridge" in fresh["sequential_tool_calls"]["unsupported"]
    assert "no tool bridge" in fresh["fan_out"]["unsupported"]
    assert fresh["cold_start"]["value"] > 0


def test_no_engine_beats_the_ideal_fan_out(report: dict[str, Any]) -> None:
    assert results_of(report, "openptc local")["fan_out"]["value"] >= 100


def test_the_tables_render(report: dict[str, Any]) -> None:
    console = Console(record=True, width=200)
    for table in peer_tables(report):
        console.print(table)
    text = console.export_text()
    assert all(name in text for name in ENGINES)
    assert "Await is not supported" in text


class _Broken:
    pid = None

    async def run(self, code: str) -> str:
        raise RuntimeError("the engine fell over")

    async def close(self) -> None:
        return None


class _BrokenEngine(Engine):
    name = "broken"

    async def open(self) -> PeerSession:
        return _Broken()


async def test_an_engine_that_fails_is_recorded_with_its_reason() -> None:
    results, wrong = await peer_workloads.coverage(_Broken())
    assert set(results) == set(peer_workloads.PROBES) and not wrong
    assert all(v == "unsupported: RuntimeError: the engine fell over" for v in results.values())
    contender = peer_workloads.Contender(_BrokenEngine(), _Broken())
    samples = await peer_workloads.interleave([contender], 2, peer_workloads.warm_ms)
    assert samples.failed == {"broken": "RuntimeError: the engine fell over"}
    assert not samples.values
