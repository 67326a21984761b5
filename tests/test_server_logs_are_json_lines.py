"""``ptc serve`` and ``ptc sandbox-server`` write only JSON lines on stderr — uvicorn's own lines
(startup, shutdown, access) included — so a log collector never meets plain text; and the
sandbox server starts without a deprecation warning."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from typing import Any

from fakes.harness import free_port, wait_until_ready
from fakes.ptc_process import PTC, environment


def run_until_ready(argv: list[str], probe: str) -> tuple[str, list[dict[str, Any]]]:
    """Start ``ptc argv``, wait for ``probe`` to answer, GET it once more, stop the server with
    SIGTERM; its stdout, and its stderr parsed line by line as JSON."""
    port = free_port()
    server = subprocess.Popen(
        [PTC, *argv, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}{probe}", server)
        urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=5).close()
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert "Warning" not in stderr, stderr
    return stdout, [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_the_sandbox_server_logs_uvicorn_as_json() -> None:
    stdout, lines = run_until_ready(
        ["sandbox-server", "--token", "t", "--pool-size", "0"], "/readyz"
    )
    assert stdout.startswith("openptc sandbox server on http://127.0.0.1:")
    loggers = {line["logger"] for line in lines}
    assert {"openptc.server", "uvicorn.error", "uvicorn.access"} <= loggers
    messages = [line["message"] for line in lines]
    assert any(m.startswith("Uvicorn running on http://127.0.0.1:") for m in messages)
    assert "Finished server process" in messages[-1]
    assert all("color_message" not in line for line in lines)


def test_the_proxy_logs_uvicorn_as_json() -> None:
    argv = ["serve", "--model", "*=scripted:expense-audit", "--api-key", "k"]
    stdout, lines = run_until_ready(argv, "/health")
    assert stdout.startswith("openptc proxy on http://127.0.0.1:")
    loggers = {line["logger"] for line in lines}
    assert {"openptc.proxy", "uvicorn.error"} <= loggers
    assert any(line["message"] == "Application startup complete." for line in lines)
