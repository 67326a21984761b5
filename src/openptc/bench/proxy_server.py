"""The servers ``ptc bench proxy`` measures, each in a child process of its own: the real proxy
with the scripted backends, run as ``ptc serve`` runs it, and a bare Starlette endpoint on the
same uvicorn setup (the HTTP floor). Also how the client side starts, waits for and stops them,
and reads the CPU time they use.

Run as ``python -m openptc.bench.proxy_server {proxy,bare}`` by :func:`served`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from openptc.bench.proxy_workload import (
    API_KEY,
    PTC_MODEL,
    TEXT_MODEL,
    ptc_backend,
    text_backend,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

LOG_LEVEL = "info"  # ``ptc serve``'s default: one JSON log line per request
KEEP_ALIVE_S = 30  # uvicorn's default is 5 s; longer, so no idle connection closes mid-phase
SERVER_START_TIMEOUT_S = 60.0


def proxy_app() -> Starlette:
    """The real proxy with the two scripted backends; the default store and sandbox."""
    from pydantic import SecretStr

    from openptc.proxy.app import create_app
    from openptc.proxy.config import ApiKey, ProxyConfig

    backends = {"scripted:bench-text": text_backend(), "scripted:bench-ptc": ptc_backend()}
    config = ProxyConfig(
        # Every PTC request makes a container; the default limit per key (32) is lower than
        # the number this benchmark makes.
        api_keys=(ApiKey(key=SecretStr(API_KEY), name="bench", max_containers=100_000),),
        models={TEXT_MODEL: "scripted:bench-text", PTC_MODEL: "scripted:bench-ptc"},
    )
    return create_app(config, model_for=backends.__getitem__)


def bare_app(body: bytes) -> Starlette:
    """The HTTP floor: read the request, answer fixed JSON bytes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def messages(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status": "ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def serve_main(argv: Sequence[str]) -> None:
    """Child process: serve ``proxy`` or ``bare`` (response body on stdin) on a free loopback
    port, print the port, and run until SIGTERM."""
    import uvicorn

    kind = argv[0]
    if kind == "proxy":
        from openptc.logs import configure

        configure(LOG_LEVEL)  # as ``ptc serve`` does
        app = proxy_app()
    elif kind == "bare":
        app = bare_app(sys.stdin.buffer.read())
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets whose proto says TCP, as
    # on the sockets uvicorn binds itself for ``ptc serve`` (with proto 0 every response after
    # the first waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app, log_level=LOG_LEVEL, access_log=False, timeout_keep_alive=KEEP_ALIVE_S
    )
    uvicorn.Server(config).run(sockets=[sock])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_ms(self) -> float | None:
        """CPU time the server process has used (user + system), or None off Linux."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") * 1000


@contextlib.asynccontextmanager
async def served(kind: str, log_dir: Path, body: bytes = b"") -> AsyncIterator[Server]:
    """Start a server child process; yield it once ``/health`` answers; stop it."""
    log_path = log_dir / f"{kind}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "openptc.bench.proxy_server",
            kind,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(body)
        process.stdin.close()
        line = await asyncio.wait_for(process.stdout.readline(), SERVER_START_TIMEOUT_S)
        if not line.strip().isdigit():
            raise RuntimeError(f"the {kind} server did not start:\n{log_path.read_text()}")
        url = f"http://127.0.0.1:{int(line)}"
        await _wait_healthy(url, process, kind, log_path)
        yield Server(url, process.pid)
    finally:
        if process.returncode is None:
            process.terminate()  # uvicorn shuts down gracefully: the proxy closes its sandboxes
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_healthy(
    url: str, process: asyncio.subprocess.Process, kind: str, log_path: Path
) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server is not healthy:\n{log_path.read_text()}")
            await asyncio.sleep(0.02)


class CpuMeter:
    """A server's CPU time over a whole phase, per request served in it.

    Read once at each end, not per stretch: the clock ticks in 10 ms steps, and a server that
    waits while the other is measured uses no CPU.
    """

    def __init__(self, server: Server) -> None:
        self._server = server
        self._started = server.cpu_ms()

    def per_request(self, requests: int) -> float | None:
        ended = self._server.cpu_ms()
        if ended is None or self._started is None or not requests:
            return None
        return (ended - self._started) / requests


if __name__ == "__main__":
    serve_main(sys.argv[1:])
