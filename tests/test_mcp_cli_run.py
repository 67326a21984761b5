"""``ptc run --mcp mcp.json``: a model's program calls the tools of real MCP servers.

The model is a replayed transcript (offline, labelled as such): its one program reads files
through server-filesystem, the log through mcp-server-git, and writes what it found back through
server-filesystem, so the file on disk proves the program ran against the real servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mcp_real_servers import COMMITS, make_workspace

PTC = [sys.executable, "-c", "from openptc.cli import app; app()"]

PROGRAM = """
import json
files = await asyncio.gather(
    filesystem_tools.read_text_file({"path": FILES + "/north.txt"}),
    filesystem_tools.read_text_file({"path": FILES + "/south.txt"}),
)
widgets = sum(int(f["content"].split(":")[1]) for f in files)
log = await git_tools.git_log(repo_path=REPO, max_count=1)
newest = [l for l in log.splitlines() if l.startswith("Message: ")][0][9:]
answer = f"{widgets} widgets; {newest}"
await filesystem_tools.write_file(path=FILES + "/answer.txt", content=answer)
print(widgets, newest)
"""


def _transcript(path: Path, program: str) -> None:
    header = {"format": "openptc-transcript", "version": 1, "model": "replayed", "mode": "ptc"}
    use = {"type": "tool_use", "id": "t1", "name": "execute_code", "input": {"code": program}}
    responses = [
        {"type": "response", "stop_reason": "tool_use", "usage": None, "content": [use]},
        {
            "type": "response",
            "stop_reason": "end_turn",
            "usage": None,
            "content": [{"type": "text", "text": "There are 42 widgets."}],
        },
    ]
    path.write_text("\n".join(json.dumps(line) for line in [header, *responses]) + "\n")


def _ptc(*args: str) -> subprocess.CompletedProcess[str]:
    wide = {**os.environ, "COLUMNS": "300"}  # one line per message: rich wraps at the width
    return subprocess.run(
        [*PTC, *args], capture_output=True, text=True, timeout=180, check=False, env=wide
    )


def test_ptc_run_with_mcp_servers(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path)
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(workspace.config("filesystem", "git")))
    transcript = tmp_path / "turns.jsonl"
    program = f"REPO = {str(workspace.repo)!r}\nFILES = {str(workspace.files)!r}\n{PROGRAM}"
    _transcript(transcript, program)

    done = _ptc("run", "How many widgets?", "--mcp", str(config), "--replay", str(transcript))

    assert done.returncode == 0, done.stdout + done.stderr
    assert (workspace.files / "answer.txt").read_text() == f"42 widgets; {COMMITS[-1]}"
    assert "filesystem_tools.read_text_file" in done.stdout  # the tools line names MCP tools
    assert "expense" not in done.stdout  # --mcp replaces the demo's default tools
    assert "There are 42 widgets." in done.stdout
    assert "4 tool calls, 1 programs" in done.stdout and "stopped: answered" in done.stdout


def test_ptc_run_names_the_server_of_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"ghost": {"command": "no-such-server-cmd"}}}))
    done = _ptc("run", "hi", "--mcp", str(config), "--model", "scripted:expense-audit")
    assert done.returncode == 2
    assert "MCP server 'ghost': command 'no-such-server-cmd' not found" in done.stdout
    config.write_text(json.dumps({"mcpServers": {"odd": {"args": ["x"]}}}))
    done = _ptc("run", "hi", "--mcp", str(config))
    assert done.returncode == 2
    assert "server 'odd' needs 'command'" in done.stdout
