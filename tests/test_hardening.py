"""A server marked undumpable keeps its environment from programs running as its own user."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

NOBODY = 65534
HARDENING = Path(__file__).resolve().parents[1] / "src" / "openptc" / "hardening.py"
# The module's source, run by the system interpreter: nobody may not enter root's pyenv, venv
# or checkout (a fresh clone lives in a 0700 temporary directory).
SERVER = """
import sys, time
module = {"__name__": "hardening"}
exec(sys.argv[2], module)
if sys.argv[1] == "harden":
    assert module["make_undumpable"]()
print("ready", flush=True)
time.sleep(30)
"""
PYTHON = "/usr/bin/python3"
READER = "import sys; print(open(f'/proc/{sys.argv[1]}/environ', 'rb').read().count(b'SECRET'))"


def _as_nobody() -> None:
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run both processes as one user")
@pytest.mark.skipif(not Path(PYTHON).exists(), reason="needs the system python3")
@pytest.mark.parametrize("mode", ["harden", "plain"])
def test_same_user_cannot_read_an_undumpable_servers_environment(mode: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "TOKEN": "SECRET"}
    server = subprocess.Popen(
        [PYTHON, "-c", SERVER, mode, HARDENING.read_text()],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_as_nobody,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        time.sleep(0.05)
        reader = subprocess.run(
            [PYTHON, "-c", READER, str(server.pid)],
            capture_output=True,
            text=True,
            preexec_fn=_as_nobody,
            env={"PATH": "/usr/bin:/bin"},
        )
    finally:
        server.kill()
        server.wait()
    if mode == "harden":
        assert reader.returncode != 0 and "PermissionError" in reader.stderr
    else:
        assert reader.returncode == 0 and reader.stdout.strip() == "1"
