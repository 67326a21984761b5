"""Real third-party MCP servers for the tests, installed by ``scripts/mcp-servers.sh``.

The script installs them from PyPI and npm into ``.mcp-servers/`` (once; later runs only check)
and prints each server's executable or why it is missing; a test that needs a missing server is
skipped with that reason. Also here: the temporary git repository and folder the servers work on,
and a way to find (and kill) the process of a stdio server this test process started.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mcp-servers.sh"
CHANGING_TOOLS_SERVER = Path(__file__).parent / "mcp_test_servers" / "changing_tools.py"


@functools.cache
def installed() -> dict[str, str]:
    """Server name -> its executable, or "missing: why" (run the install script once)."""
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return dict.fromkeys(("time", "git", "everything", "filesystem", "memory"), f"missing: {e}")
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, _, what = line.partition("\t")
        found[name] = what
    if not found:
        tail = done.stderr.strip()[-2000:]
        raise RuntimeError(f"{SCRIPT} printed no server (exit {done.returncode}):\n{tail}")
    return found


def command(name: str) -> str:
    """The executable of one server, or skip the test with the reason it could not be had."""
    what = installed().get(name, f"missing: {name} is not installed by {SCRIPT.name}")
    if what.startswith("missing:"):
        pytest.skip(f"MCP server {name}: {what.removeprefix('missing:').strip()}")
    return what


@dataclass
class Workspace:
    """What the servers work on: a git repository with known commits, a folder of files."""

    repo: Path
    files: Path
    memory_file: Path

    def config(self, *names: str) -> dict[str, Any]:
        """An ``mcpServers`` document for the named servers, pointed at this workspace."""
        entries = {
            "time": lambda: {"command": command("time"), "args": ["--local-timezone", "UTC"]},
            "git": lambda: {"command": command("git"), "args": ["--repository", str(self.repo)]},
            "filesystem": lambda: {"command": command("filesystem"), "args": [str(self.files)]},
            "memory": lambda: {
                "command": command("memory"),
                "env": {"MEMORY_FILE_PATH": str(self.memory_file)},
            },
            "everything": lambda: {"command": command("everything")},
            "changing": lambda: {"command": sys.executable, "args": [str(CHANGING_TOOLS_SERVER)]},
        }
        return {"mcpServers": {name: entries[name]() for name in names}}


COMMITS = ("Add the README", "Count the widgets", "Fix the widget count")
FILES = {"north.txt": "widgets: 12\n", "south.txt": "widgets: 30\n", "notes.md": "# Notes\n"}


def make_workspace(root: Path) -> Workspace:
    """A fresh git repository with three commits and a folder with three files."""
    repo, files = root / "repo", root / "files"
    repo.mkdir()
    files.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    for number, message in enumerate(COMMITS):
        (repo / f"step{number}.txt").write_text(f"{message}\n")
        git("add", ".")
        git("commit", "-q", "-m", message)
    for name, text in FILES.items():
        (files / name).write_text(text)
    return Workspace(repo=repo, files=files, memory_file=root / "memory.jsonl")


def child_pids(marker: str) -> list[int]:
    """Processes started by this test process whose command line contains ``marker``."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if stat[1] == me and stat[0] != "Z" and marker in cmdline:
            found.append(int(entry))
    return found
