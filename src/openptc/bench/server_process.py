"""A real `ptc sandbox-server` process for the benchmarks, watched from outside.

It keeps what a benchmark needs to judge the server: its pid (for memory and its sandbox
processes), its log (warnings and errors it wrote, and why it did not start), its Prometheus
counters (to check they agree with the client), and how it exited on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

TOKEN = "bench-token"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_SAMPLE = re.compile(r"^(ptc_sandbox_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """The running server: where it listens, its process and its log."""

    url: str
    process: subprocess.Popen[bytes]
    exit_code: int | None = None
    stop_s: float | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def metrics(self) -> dict[str, float]:
        """The server's ``ptc_sandbox_*`` samples, by name and labels."""

        def fetch() -> str:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
                return str(response.read().decode())

        samples: dict[str, float] = {}
        for line in (await asyncio.to_thread(fetch)).splitlines():
            if match := _SAMPLE.match(line):
                samples[match[1] + (match[2] or "")] = float(match[3])
        return samples

    def summary(self) -> dict[str, Any]:
        """How it stopped and what it logged (its start banner aside)."""
        noteworthy = [line for line in self.lines if "openptc sandbox server on" not in line]
        return {
            "exit_code": self.exit_code,
            "stop_s": self.stop_s,
            "log_lines": len(noteworthy),
            "log_samples": noteworthy[:10],
        }


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                said = log.read().decode(errors="replace")[-2000:].strip() or "nothing"
                raise RuntimeError(
                    f"the sandbox server did not start (exit {process.poll()}); it said: {said}"
                ) from None
            time.sleep(0.1)


@contextmanager
def sandbox_server(*, sessions: int, pool_size: int) -> Iterator[ServerProcess]:
    """`ptc sandbox-server` on 127.0.0.1; stopped with SIGTERM (it drains) on the way out."""
    port = free_port()
    ptc = str(Path(sys.executable).with_name("ptc"))
    with tempfile.TemporaryFile() as log:  # nameless: leaves nothing in /tmp
        process = subprocess.Popen(
            [ptc, "sandbox-server", "--port", str(port), "--pool-size", str(pool_size),
             "--max-sessions-per-token", str(sessions), "--log-level", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PTC_SANDBOX_TOKENS": TOKEN},
        )  # fmt: skip
        server = ServerProcess(f"http://127.0.0.1:{port}", process)
        try:
            _wait_ready(server.url, process, log)
            yield server
        finally:
            started = time.monotonic()
            process.terminate()
            try:
                server.exit_code = process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                server.exit_code = process.wait(STOP_TIMEOUT_S)
            server.stop_s = time.monotonic() - started
            log.seek(0)
            server.lines = log.read().decode(errors="replace").splitlines()
