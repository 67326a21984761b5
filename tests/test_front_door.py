"""The README's example, the CLI and the benchmark, run exactly as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PTC = str(Path(sys.executable).with_name("ptc"))


def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120"},
    )


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def readme_block(containing: str) -> str:
    """The README's one python block that contains ``containing`` (blocks move; names stay)."""
    (block,) = [b for b in readme_python_blocks() if containing in b]
    return block


def test_readme_library_example_runs_as_written() -> None:
    example = readme_block("from pydantic import BaseModel")
    done = run(sys.executable, "-c", example)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "c0 spent the most: $1,650.00"
    assert lines[1] == "c0 spent the most. 2 4"


def run_readme_block(containing: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One python block of the README, as its own process, with ``env`` (plus a bare PATH)."""
    return subprocess.run(
        [sys.executable, "-c", readme_block(containing)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_readme_replay_example_runs_as_written() -> None:
    # Every python block of the README is run by a test: the four here, the one of tools
    # from schemas in test_tools_from_schemas.py, the MCP one in test_mcp_readme.py, the
    # reasoning one in test_readme_model_settings.py, the four framework ones in
    # test_readme_integrations.py and the telemetry one in test_readme_observability.py.
    assert len(readme_python_blocks()) == 12
    done = run(sys.executable, "-c", readme_block("ReplaySandbox"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "3 passes, 49 tool calls"
    assert lines[1] == "4 of 24 engineering members exceeded their Q3 travel budget"


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_ptc_demo_compares_both_modes() -> None:
    done = run(PTC, "demo")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "scripted (offline, no real model)" in out
    assert re.search(r"PTC: 2 model calls instead of \d+, \d+\.\d% fewer input tokens", out)
    assert "await get_team_members" in out  # the program the model wrote is shown
    assert out.count("yes") >= 2  # both answers judged correct
    # The README shows this table: its counted rows must be what the demo prints (wall time
    # varies from run to run and is left out).
    readme = (ROOT / "README.md").read_text()
    for row in ("model calls", "input tokens", "of which cached", "output tokens", "tool calls"):
        (shown,) = [
            line for line in readme.splitlines() if line.startswith(("│ " + row, "│   " + row))
        ]
        (printed,) = [
            line for line in out.splitlines() if line.startswith(("│ " + row, "│   " + row))
        ]
        assert shown.split("│")[2:4] == printed.split("│")[2:4], row


def test_ptc_doctor_reports_isolation() -> None:
    done = run(PTC, "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"isolation level: (bubblewrap|process)", done.stdout)
    for check in ("network blocked", "root file system read-only", "host environment absent"):
        assert check in done.stdout


def test_ptc_bench_sandbox_writes_json(tmp_path: Path) -> None:
    done = run(PTC, "bench", "sandbox", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = tmp_path.glob("sandbox-*.json")
    report = json.loads(result.read_text())
    figures = {f["name"]: f for f in report["figures"]}
    assert set(figures) == {
        "cold_start",
        "warm_execution_p50",
        "tool_call_round_trip",
        "fan_out_100x100ms",
        "idle_session_pss",
        "latency_under_flood",
    }
    for figure in figures.values():
        assert figure["value"] > 0
        assert figure["baseline"] is None or figure["baseline"] > 0
    assert figures["fan_out_100x100ms"]["value"] >= 100  # 100 ms calls cannot finish sooner


def test_ptc_bench_replay_writes_json(tmp_path: Path) -> None:
    done = run(PTC, "bench", "replay", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = tmp_path.glob("replay-*.json")
    scenarios = {s["name"]: s for s in json.loads(result.read_text())["scenarios"]}
    assert len(scenarios) == 5
    passes = sorted(s["passes"] for s in scenarios.values())
    assert passes == [1, 2, 3, 3, 4]  # pre-loaded; 1, 2 and 3 levels; the expense audit
    for scenario in scenarios.values():
        assert scenario["same_output"] is True  # replay printed what the live bridge printed
        assert scenario["replay_interpreter_ms"] > 0 and scenario["bridge_ms"] > 0


def test_readme_proxy_example_runs_against_ptc_serve() -> None:
    """`ptc serve` as a real process; the README's client, unchanged, through the official SDK."""
    from fakes.harness import free_port, wait_until_ready

    port = free_port()
    server = subprocess.Popen(
        [
            PTC,
            "serve",
            "--model",
            "*=scripted:expense-audit",
            "--api-key",
            "sk-local-1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/health", server)
        env = {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": "sk-local-1"}
        done = run_readme_block("import anthropic", env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "program paused on 1 call(s)",
            "program paused on 48 call(s)",
            "4 of 24 engineering members exceeded their Q3 travel budget",
        ]
    finally:
        server.terminate()
        _, logs = server.communicate(timeout=30)
    assert server.returncode in (0, -15)
    assert '"message": "request"' in logs and "sk-local-1" not in logs


def test_ptc_serve_says_what_is_missing() -> None:
    done = run(PTC, "serve", "--api-key", "k")
    assert done.returncode == 2
    assert "--model NAME=MODEL_STRING" in done.stdout


def test_readme_fleet_example_runs_against_ptc_sandbox_server() -> None:
    from fakes.sandbox_server import TOKEN, server_process

    with server_process() as (url, _):
        done = run_readme_block(
            "RemoteSandbox", {"PTC_SANDBOX_URL": url, "PTC_SANDBOX_TOKEN": TOKEN}
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "program ran on the server; its 49 tool calls ran here",
        "4 of 24 engineering members exceeded their Q3 travel budget",
    ]
