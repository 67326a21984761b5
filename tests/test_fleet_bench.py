"""`ptc bench fleet` runs end to end with tiny counts; behaviour only, never timings."""

from __future__ import annotations

from openptc.bench.fleet_bench import run_fleet_bench


async def test_the_fleet_benchmark_measures_every_figure() -> None:
    seen: list[str] = []
    report = await run_fleet_bench(
        rounds=3, concurrency=(1, 2), per_session=2, progress=seen.append
    )
    names = [f["name"] for f in report["figures"]]
    assert names[:2] == ["cold session, remote", "warm execution, remote"]
    assert all(f["ratio"] > 0 and f["ours_p50"] > 0 for f in report["figures"])
    assert [t["sessions"] for t in report["throughput"]] == [1, 2]
    assert all(t["remote_per_s"] > 0 and t["local_per_s"] > 0 for t in report["throughput"])
    assert report["docker"] == "measured" or report["docker"].startswith("skipped: ")
    if report["docker"] == "measured":
        assert "warm execution, docker" in names
    assert any("throughput" in line for line in seen)
