"""`ptc serve` as its own process: it drains on SIGTERM, and what a SIGKILLed one leaves behind
is cleaned up by the next.

The proxy runs as a real subprocess; its backend is a fake of the Anthropic API in this process
(driven by the proxy's real Anthropic adapter), and its clients are the official SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from fakes.anthropic_server import FAKE_API_KEY, anthropic_app
from fakes.harness import Recorder, free_port, serve
from openptc.models.base import ModelRequest, ToolResultBlock
from openptc.models.scripted import Turn
from openptc.proxy.drain import DRAINING_HEADER
from openptc.sandbox.bundle import PREFIX, build_bundle

PTC = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "ptc")
KEY = "sk-proxy-process-test"
CODE_TOOL = {"type": "code_execution_20260120", "name": "code_execution"}
SLOW = "await asyncio.sleep(2)\nprint('finished while draining')"


def _brain(request: ModelRequest) -> Turn:
    """Write SLOW; once its result is back, answer with it."""
    from openptc.models.base import ToolUseBlock

    results = [b for b in request.messages[-1].content if isinstance(b, ToolResultBlock)]
    if results:
        return f"the program said: {results[-1].content}"
    return [ToolUseBlock(id="toolu_slow", name="code_execution", input={"code": SLOW})]


@contextlib.contextmanager
def _ptc_serve(backend_url: str, tmp: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`ptc serve` on a free port with its own temporary directory; yields its URL when up."""
    port = free_port()
    process = subprocess.Popen(
        [
            PTC,
            "serve",
            "--model",
            f"*=anthropic:claude-fake@{backend_url}",
            "--api-key",
            KEY,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ANTHROPIC_API_KEY": FAKE_API_KEY,
            "TMPDIR": str(tmp),
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"ptc serve exited: {process.communicate()[0]}"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "ptc serve did not become ready"
            time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)


@contextlib.asynccontextmanager
async def _backend() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    async with serve(anthropic_app(_brain, recorder)) as url:
        yield url, recorder


async def test_sigterm_drains_requests_in_flight_refuses_new_ones_and_exits_0(
    tmp_path: Path,
) -> None:
    async with _backend() as (backend_url, recorder):
        with _ptc_serve(backend_url, tmp_path) as (url, process):
            client = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=0)
            request: dict[str, Any] = {
                "model": "claude-any",
                "max_tokens": 256,
                "tools": [CODE_TOOL],
                "messages": [{"role": "user", "content": "run the slow program"}],
            }

            async def streamed() -> Any:
                async with client.messages.stream(**request) as stream:
                    return await stream.get_final_message()

            plain = asyncio.create_task(client.messages.create(**request))
            stream = asyncio.create_task(streamed())
            while len(recorder.requests) < 2:  # both are in the proxy, their programs starting
                assert not plain.done() and not stream.done()
                await asyncio.sleep(0.02)
            process.send_signal(signal.SIGTERM)

            async with httpx.AsyncClient() as http:
                for _ in range(100):
                    ready = await http.get(f"{url}/readyz")
                    if ready.status_code == 503:
                        break
                    await asyncio.sleep(0.02)
                assert ready.json() == {"status": "draining"}
            fresh = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=0)
            with pytest.raises(anthropic.InternalServerError) as refused:
                await fresh.messages.create(**request)  # new work goes elsewhere
            assert refused.value.status_code == 503
            assert "shutting down" in refused.value.message
            assert refused.value.response.headers[DRAINING_HEADER] == "1"

            for finished in (await plain, await stream):  # in flight: finished normally
                result = finished.content[1].content
                assert (result.return_code, result.stdout) == (0, "finished while draining\n")
                assert finished.stop_reason == "end_turn"
            await asyncio.to_thread(process.wait, 60)  # then the proxy stops by itself
            output = process.communicate()[0]
    assert process.returncode == 0, output
    assert '"draining"' in output and '"drained"' in output
    assert "Traceback" not in output


def _bundles(tmp: Path) -> set[str]:
    return {p.name for p in tmp.iterdir() if p.name.startswith(PREFIX)}


def _owned_by(pid: int, names: set[str]) -> set[str]:
    return {n for n in names if n.removeprefix(PREFIX).split("-")[1] == str(pid)}


async def test_a_sigkilled_proxys_runtime_directory_is_removed_by_the_next_start(
    tmp_path: Path,
) -> None:
    async with _backend() as (backend_url, _recorder):
        with (
            _ptc_serve(backend_url, tmp_path) as (_, survivor),
            _ptc_serve(backend_url, tmp_path) as (_, victim),
        ):
            alive = _owned_by(survivor.pid, _bundles(tmp_path))
            killed = _owned_by(victim.pid, _bundles(tmp_path))
            assert len(alive) == 1 and len(killed) == 1
            victim.send_signal(signal.SIGKILL)
            victim.wait(30)
            assert killed <= _bundles(tmp_path)  # a SIGKILLed process cannot clean up
            # The next sandbox to start (another proxy, a sandbox server, a library user)
            # removes the dead one's directory, and only that.
            mine = build_bundle(str(tmp_path))
            try:
                left = _bundles(tmp_path)
                assert not killed & left
                assert alive <= left and Path(mine.directory).name in left
            finally:
                mine.remove()
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(60)
    assert survivor.returncode == 0
    assert _bundles(tmp_path) == set()  # a proxy that stops cleanly removes its own
