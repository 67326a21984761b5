"""A private Docker engine with the sandbox image, for tests: ``scripts/docker.sh`` starts the
engine (installing docker.io with apt when it is missing and the machine allows), and
``scripts/sandbox-image.sh --local-base`` builds the image from a base made on this machine,
since no image registry needs to be reachable.

Everything lives in one fresh directory (the engine's data, sockets, pidfile and log), so a
test run never touches a system-wide engine. When no engine can be had, ``start_docker`` says
why instead of failing, so that only then the Docker tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

# Installing docker.io (and refreshing the package lists first, if needed) can take a while on a
# cold machine; starting an installed engine takes about a second, building the image a few.
START_TIMEOUT_S = 600.0
BUILD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DockerHandle:
    """A running private engine: its address, the sandbox image on it, and how to stop it."""

    host: str
    image: str
    directory: Path
    setup_s: float

    def stop(self) -> None:
        """Stop this engine (by its own pidfile) and remove its directory; harmless twice."""
        subprocess.run(
            ["bash", str(SCRIPTS / "docker.sh"), "stop", str(self.directory)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if not _mounted_under(self.directory):  # never delete through a leftover mount
            shutil.rmtree(self.directory, ignore_errors=True)


def _mounted_under(directory: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return True
    prefix = str(directory) + "/"
    return any(line.split()[1].startswith(prefix) for line in mounts if len(line.split()) > 1)


class ScriptFailed(Exception):
    """A set-up script did not do its job; the message says why."""


def _run(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a set-up script; what it printed on stdout."""
    name = Path(argv[1]).name
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScriptFailed(f"could not run {name}: {exc}") from None
    if done.returncode != 0 or not done.stdout.strip():
        raise ScriptFailed(f"{name}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout.strip()


def start_docker() -> DockerHandle | str:
    """Start a private engine and build the sandbox image on it; the reason when it cannot."""
    started = time.perf_counter()
    directory = Path(tempfile.mkdtemp(prefix="openptc-docker-", dir="/tmp"))
    handle = DockerHandle("", "", directory, 0)
    try:
        host = _run(["bash", str(SCRIPTS / "docker.sh"), "start", str(directory)], START_TIMEOUT_S)
        env = {**os.environ, "DOCKER_HOST": host}
        image = _run(
            ["bash", str(SCRIPTS / "sandbox-image.sh"), "--local-base"], BUILD_TIMEOUT_S, env
        )
    except ScriptFailed as exc:
        handle.stop()
        return f"no Docker engine with the sandbox image for the Docker tests: {exc}"
    return DockerHandle(host, image, directory, time.perf_counter() - started)
