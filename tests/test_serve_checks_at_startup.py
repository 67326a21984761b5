"""``ptc serve`` refuses to start (exit 2, one line) on what would fail every request: a model
string that does not resolve, a model whose SDK is not installed, a Redis that does not answer.
Started anyway, it would listen and answer each request with an error."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from fakes.harness import closed_port_url, free_port, wait_until_ready
from fakes.ptc_process import PTC, environment, ptc

SERVE = ("serve", "--api-key", "k", "--port")


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused start prints."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = done.stdout.splitlines()
    return line


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ("bad=nope:x", "ptc serve: the model for 'bad': unknown model 'nope:x': expected "),
        (
            "*=scripted:no-such-brain",
            "ptc serve: the model for '*': unknown scripted model 'no-such-brain'; known: ",
        ),
        (
            "local=openai-compatible:qwen3",
            "ptc serve: the model for 'local': openai-compatible needs the server's address",
        ),
    ],
)
def test_a_model_string_that_does_not_resolve_stops_the_start(mapping: str, expected: str) -> None:
    line = refused(ptc(*SERVE, str(free_port()), "--model", mapping))
    assert line.startswith(expected), line


def test_a_model_whose_sdk_is_missing_stops_the_start() -> None:
    done = ptc(
        *SERVE,
        str(free_port()),
        "--model",
        "fast=scripted:expense-audit",
        "--model",
        "*=anthropic:claude-sonnet-4-6",
        missing=["anthropic"],
    )
    assert refused(done) == (
        "ptc serve: the model for '*': the model 'anthropic:claude-sonnet-4-6' needs the "
        "anthropic package, which is not installed: pip install 'openptc[anthropic]'"
    )


def test_an_unreachable_redis_stops_the_start() -> None:
    nothing_there = closed_port_url().replace("http://", "redis://:s3cret@") + "/0"
    done = ptc(
        *SERVE,
        str(free_port()),
        "--model",
        "*=scripted:expense-audit",
        "--redis-url",
        nothing_there,
    )
    line = refused(done)
    assert line.startswith("ptc serve: cannot reach Redis at redis://:***@127.0.0.1:"), line
    assert "s3cret" not in line and "scripts/redis.sh start DIR" in line


def test_a_reachable_redis_and_resolvable_models_start(redis_url: str) -> None:
    port = free_port()
    server = subprocess.Popen(
        [PTC, *SERVE, str(port), "--model", "*=scripted:expense-audit", "--redis-url", redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/health", server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            health = json.loads(response.read())
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert health["store"] == "ok"
