"""``ptc`` as a user runs it: its own process, a bare environment, optionally without some of the
packages the extras bring (``not_installed/sitecustomize.py`` makes them unimportable the way an
absent package is)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

PTC = str(Path(sys.executable).with_name("ptc"))
NOT_INSTALLED = Path(__file__).with_name("not_installed")

# Every package an extra brings, by top-level module: what a plain `pip install openptc` lacks.
EXTRA_PACKAGES = (
    "anthropic",
    "openai",
    "boto3",
    "botocore",
    "uvicorn",
    "starlette",
    "httpx",
    "redis",
    "websockets",
    "prometheus_client",
    "docker",
    "mcp",
)


def environment(missing: Iterable[str] = ()) -> dict[str, str]:
    """A bare environment; the packages in ``missing`` are not importable in it."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    names = ",".join(missing)
    if names:
        env |= {"PYTHONPATH": str(NOT_INSTALLED), "PTC_NOT_INSTALLED": names}
    return env


def ptc(
    *argv: str,
    missing: Iterable[str] = (),
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``ptc argv...`` to completion; stdout and stderr kept apart."""
    return subprocess.run(
        [PTC, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(missing),
    )
