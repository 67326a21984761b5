"""A private redis-server for tests, started and stopped with ``scripts/redis.sh``.

The script installs redis-server with apt when it is missing and the machine allows (root + apt),
binds it to 127.0.0.1 on a free port and keeps everything in one directory, so a test run never
touches a system-wide Redis. When Redis cannot be had at all, ``start_redis`` says why instead of
failing, so that only then the Redis tests are skipped.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "redis.sh"

# Installing redis-server with apt (and refreshing the package lists first, if needed) can take a
# while on a cold machine; starting an installed one takes well under a second.
START_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RedisHandle:
    """A running redis-server: its URL and how to stop it."""

    url: str
    directory: Path

    def stop(self) -> None:
        """Stop this server (by its own pidfile); harmless when it is already gone."""
        subprocess.run(
            ["bash", str(SCRIPT), "stop", str(self.directory)],
            capture_output=True,
            timeout=30,
            check=False,
        )


def start_redis(directory: Path) -> RedisHandle | str:
    """Start a redis-server whose files live in ``directory``; the reason when it cannot."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", str(directory)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        RedisHandle("", directory).stop()
        return f"could not run {SCRIPT.name}: {exc}"
    url = done.stdout.strip()
    if done.returncode != 0 or not url.startswith("redis://"):
        why = done.stderr.strip() or f"{SCRIPT.name} exited with {done.returncode}"
        return f"no redis-server for the Redis tests: {why}"
    return RedisHandle(url, directory)
