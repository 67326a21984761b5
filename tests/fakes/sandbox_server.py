"""A real sandbox server for tests: in this process (uvicorn) or as `ptc sandbox-server`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from pydantic import SecretStr

from fakes.harness import free_port, serve, wait_until_ready
from openptc.server.app import create_server_app
from openptc.server.config import ServerConfig

TOKEN = "tok-orchestrator-1"
OTHER_TOKEN = "tok-orchestrator-2"
PTC = str(Path(sys.executable).with_name("ptc"))


def server_config(**overrides: object) -> ServerConfig:
    values: dict[str, object] = {
        "tokens": (SecretStr(TOKEN), SecretStr(OTHER_TOKEN)),
        "pool_size": 1,
    }
    values.update(overrides)
    return ServerConfig(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_server(**overrides: object) -> AsyncIterator[str]:
    async with serve(create_server_app(server_config(**overrides)), lifespan=True) as url:
        yield url


@contextlib.contextmanager
def server_process(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`ptc sandbox-server` as its own process; yields its URL once it is ready."""
    port = free_port()
    process = subprocess.Popen(
        [PTC, "sandbox-server", "--port", str(port), "--pool-size", "1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PTC_SANDBOX_TOKENS": TOKEN},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/readyz", process)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
