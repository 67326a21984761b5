"""What every fake provider shares: serving on loopback, recording requests, injecting faults.

A fake speaks the provider's HTTP protocol (paths, bodies, headers, error shapes, streams) and
is driven by the provider's real SDK pointed at it; only the *answers* are scripted, by a brain
(``openptc.models.scripted.Policy``) that sees the conversation in normalized form.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class Fault:
    """One canned failure answered instead of the next request."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        return Response(
            json.dumps(self.body),
            status_code=self.status,
            headers={"content-type": "application/json", **self.headers},
        )


@dataclass
class Recorder:
    """Requests the fake received (path, headers, JSON body) and faults waiting to be served."""

    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    async def record(self, request: Request) -> Any:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append((request.url.path, dict(request.headers), body))
        return body

    def next_fault(self) -> Response | None:
        return self.faults.pop(0).response() if self.faults else None


@contextlib.asynccontextmanager
async def serve(app: Starlette, *, lifespan: bool = False, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a loopback port (a free one by default); yields its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on" if lifespan else "off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def free_port() -> int:
    """A loopback port nothing listens on right now (for a server that must know its URL)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def wait_until_ready(url: str, process: Any, *, timeout_s: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail with the process's output if it died first."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start: {process.communicate()}") from None
            time.sleep(0.1)
