"""A Redis killed and restarted under the proxy: clear, retryable errors, never a wrong answer.

A real redis-server (scripts/redis.sh) is SIGKILLed mid-run and started again on the same port.
While it is down, every request that needs the container store is a 503 in the API's shape that
says the store is unreachable and to retry (the SDK sees a retryable status), and the log says
so once, not a traceback per request. After a restart without persistence, containers are gone
and the 404 says the store lost them instead of "expired"; with appendonly they resume.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import redis.asyncio as aioredis

from fakes.load_and_read import TOOLS, expected_outputs, load_and_read_backend
from fakes.proxy_setup import (
    answer_calls,
    config,
    running_proxy,
)
from fakes.redis_service import SCRIPT, RedisHandle, start_redis


def _backend() -> dict[str, Any]:
    return load_and_read_backend("scripted:outage")


class _Redis:
    """A redis-server on a fixed port that the test kills (SIGKILL) and starts again."""

    def __init__(self, directory: Path) -> None:
        started = start_redis(directory)
        if isinstance(started, str):
            pytest.skip(started)
        self.handle: RedisHandle = started
        self.url = started.url
        self.port = self.url.rsplit(":", 1)[1].split("/")[0]

    def kill(self) -> None:
        pid = int((self.handle.directory / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    async def wait_gone(self) -> None:
        for _ in range(200):
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=0.5)
            try:
                await client.ping()
            except Exception:
                return
            finally:
                await client.aclose()
            await asyncio.sleep(0.05)
        raise AssertionError("the killed redis-server still answers")

    def restart(self, *, appendonly: bool = False) -> None:
        """Start again on the same port, in the same directory (where the AOF, if any, is)."""
        if appendonly:  # the script starts servers without persistence: this one has it
            pid_file, directory = self.handle.directory / "redis.pid", self.handle.directory
            pid_file.unlink(missing_ok=True)
            subprocess.run(
                ["redis-server", "--bind", "127.0.0.1", "--port", self.port, "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "yes",
                 "--pidfile", str(pid_file), "--dir", str(directory),
                 "--logfile", str(directory / "redis.log")],
                check=True,
                timeout=30,
            )  # fmt: skip
            return
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", str(self.handle.directory), self.port],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    async def wait_up(self) -> None:
        for _ in range(200):
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=0.5)
            try:
                await client.ping()
                return
            except Exception:
                await asyncio.sleep(0.05)
            finally:
                await client.aclose()
        raise AssertionError("the restarted redis-server does not answer")

    async def enable_appendonly(self) -> None:
        """Turn on AOF at run time, and wait until the first rewrite has written it."""
        client = aioredis.Redis.from_url(self.url, decode_responses=True)
        try:
            await client.config_set("appendonly", "yes")
            await client.config_set("appendfsync", "always")
            for _ in range(200):
                info = await client.info("persistence")
                busy = info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]
                if info["aof_enabled"] and not busy:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("appendonly was not enabled")
        finally:
            await client.aclose()


async def _paused(client: anthropic.AsyncAnthropic) -> tuple[Any, list[dict[str, Any]]]:
    """A conversation whose program waits for the client's tool result."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "load"}]
    paused = await client.messages.create(model="m", max_tokens=256, messages=messages, tools=TOOLS)
    assert paused.stop_reason == "tool_use"
    messages += [
        {"role": "assistant", "content": paused.content},
        {"role": "user", "content": await answer_calls(paused.content)},
    ]
    return paused, messages


async def _resume(client: anthropic.AsyncAnthropic, paused: Any, messages: list[Any]) -> Any:
    return await client.messages.create(
        model="m", max_tokens=256, messages=messages, tools=TOOLS, container=paused.container.id
    )


def _assert_unavailable(error: anthropic.APIStatusError) -> None:
    assert isinstance(error, anthropic.InternalServerError)  # what the SDK retries
    assert error.status_code == 503
    assert error.response.headers["retry-after"]
    body = error.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    message = body["error"]["message"]
    assert "container store is unreachable" in message and "again" in message


def _requests(caplog: pytest.LogCaptureFixture, status: int) -> list[logging.LogRecord]:
    """The proxy's log line of each request it answered with ``status``."""
    return [
        r
        for r in caplog.records
        if r.name == "openptc.proxy"
        and r.getMessage() == "request"
        and getattr(r, "status", None) == status
    ]


def _store_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "openptc.proxy" and "store" in r.getMessage()]


async def test_a_redis_killed_and_restarted_mid_run_gives_clear_retryable_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="openptc.proxy")
    loaded, first_id = await expected_outputs()
    redis = _Redis(tmp_path / "redis")
    try:
        async with running_proxy(config(redis_url=redis.url), _backend()) as proxy:
            client = proxy.client()
            paused, messages = await _paused(client)
            redis.kill()
            await redis.wait_gone()

            # Down: every request that needs the store is a retryable 503 that says why.
            failures = 0
            for attempt in (
                _resume(client, paused, messages),
                client.messages.create(
                    model="m",
                    max_tokens=64,
                    messages=[{"role": "user", "content": "load"}],
                    tools=TOOLS,
                ),
                _resume(client, paused, messages),
            ):
                with pytest.raises(anthropic.APIStatusError) as caught:
                    await attempt
                _assert_unavailable(caught.value)
                failures += 1
            # The SDK's own retries see the same retryable status (and give up after them).
            retrying = proxy.client().with_options(max_retries=1)
            before = len(_requests(caplog, 503))
            with pytest.raises(anthropic.InternalServerError) as caught:
                await _resume(retrying, paused, messages)
            _assert_unavailable(caught.value)
            assert len(_requests(caplog, 503)) == before + 2  # the first try and one retry
            async with httpx.AsyncClient() as http:
                health = (await http.get(f"{proxy.url}/health")).json()
            assert health["store"] == "unreachable"
            # What needs no store still works.
            counted = await client.messages.count_tokens(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
            assert counted.input_tokens > 0

            # Back, but empty (no persistence): the paused conversation is gone, and said so.
            redis.restart()
            await redis.wait_up()
            with pytest.raises(anthropic.NotFoundError) as lost:
                await _resume(client, paused, messages)
            assert "store lost its data" in lost.value.message
            assert "had not expired" in lost.value.message  # not "expired after 300 s"
            with pytest.raises(anthropic.NotFoundError) as unknown:
                await client.messages.create(
                    model="m",
                    max_tokens=64,
                    messages=[{"role": "user", "content": "read"}],
                    tools=TOOLS,
                    container="container_never_seen_here",
                )
            assert "container store lost it" in unknown.value.message
            assert "This proxy saw that the container store" in unknown.value.message

            # New conversations work, with the right answer.
            fresh, fresh_messages = await _paused(client)
            done = await _resume(client, fresh, fresh_messages)
            assert (done.content[0].content.return_code, done.content[0].content.stdout) == (
                0,
                loaded,
            )
            followup = await client.messages.create(
                model="m",
                max_tokens=256,
                messages=[
                    *fresh_messages,
                    {"role": "assistant", "content": done.content},
                    {"role": "user", "content": "read"},
                ],
                tools=TOOLS,
                container=fresh.container.id,
            )
            assert followup.content[1].content.stdout == first_id
    finally:
        redis.handle.stop()
    assert failures == 3
    logs = _store_logs(caplog)
    assert all(r.exc_info is None for r in caplog.records if r.name == "openptc.proxy")
    down = [r for r in logs if "unreachable" in r.getMessage() and r.levelno >= logging.ERROR]
    back = [r for r in logs if "reachable again" in r.getMessage()]
    assert len(down) == 1 and len(back) == 1  # once per outage, however many requests failed
    assert any("does not persist" in r.getMessage() for r in logs)  # said at startup


async def test_with_appendonly_a_paused_conversation_survives_a_redis_restart(
    tmp_path: Path,
) -> None:
    loaded, _ = await expected_outputs()
    redis = _Redis(tmp_path / "redis")
    try:
        await redis.enable_appendonly()
        async with running_proxy(config(redis_url=redis.url), _backend()) as proxy:
            client = proxy.client()
            paused, messages = await _paused(client)
            redis.kill()
            await redis.wait_gone()
            with pytest.raises(anthropic.APIStatusError) as caught:
                await _resume(client, paused, messages)
            _assert_unavailable(caught.value)
            redis.restart(appendonly=True)
            await redis.wait_up()
            done = await _resume(client, paused, messages)  # the same request, retried
        result = done.content[0].content
        assert (result.return_code, result.stdout) == (0, loaded)
    finally:
        redis.handle.stop()
