"""The README's MCP section as written: its library example runs against the real
``mcp-server-time`` (installed by scripts/mcp-servers.sh, put on PATH as a user's install would
be), and its ``mcpServers`` snippets are configs that openptc and ``ptc mcp`` accept."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from typer.testing import CliRunner

from mcp_real_servers import command
from openptc.cli import app
from openptc.mcp import StdioServer, parse_config
from test_front_door import ROOT, run_readme_block


def mcp_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## MCP\n", 1)[1].split("\n## ", 1)[0]


def test_readme_mcp_library_example_runs_as_written() -> None:
    time_server = Path(command("time"))  # skips, saying why, when it cannot be installed
    done = run_readme_block(
        "from openptc.mcp import McpToolbox",
        {"PATH": f"{time_server.parent}{os.pathsep}/usr/bin:/bin", "HOME": os.environ["HOME"]},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Asia/Tokyo 21:00 +9.0h",
        "Asia/Kolkata 17:30 +5.5h",
        "America/Phoenix 05:00 -7.0h",
        "Noon UTC is 21:00 in Tokyo. 2 3",
    ]


def test_readme_mcp_snippets_are_configs_ptc_mcp_accepts() -> None:
    blocks = re.findall(r"```json\n(.*?)```", mcp_section(), re.S)
    upstream, client = (parse_config(json.loads(b)) for b in blocks)
    assert [s.name for s in upstream] == ["git", "filesystem", "time"]
    [openptc] = client
    assert isinstance(openptc, StdioServer) and openptc.command.endswith("/.venv/bin/ptc")
    assert openptc.args[:2] == ("mcp", "--config")
    usage = CliRunner().invoke(app, ["mcp", "--help"]).output
    for flag in ("--config", "--transport", "--sandbox", "--sandbox-url"):
        assert flag in usage
    assert "claude mcp add openptc -- " in mcp_section()


def test_readme_mcp_figures_come_from_a_committed_bench_run() -> None:
    runs = sorted((ROOT / "benchmarks" / "results").glob("mcp-*.json"))
    assert runs, "no ptc bench mcp results committed"
    report = json.loads(runs[-1].read_text())
    section = mcp_section()
    rows = {d["name"]: d for d in report["definitions"]}
    for name in ("5 real servers", "synthetic (200 tools)", "5 real + synthetic", "time"):
        assert f"| {rows[name]['upstream_tokens']:,} | {rows[name]['ptc_mcp_tokens']:,}" in section
    audit = report["expense"]
    assert f"| {audit['direct_over_mcp']['input_tokens']:,.0f} | " in section
    assert f"| {audit['through_ptc_mcp']['input_tokens']:,.0f} (" in section
