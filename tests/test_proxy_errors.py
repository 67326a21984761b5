"""Bad input to the proxy: the right 4xx in Anthropic's error shape, and nothing else disturbed.

Each bad request is sent while a program is paused in a container; after all of them the same
program resumes and finishes correctly, and another key's requests still work.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from fakes.proxy_setup import (
    CODE_TOOL,
    KEY_A,
    KEY_B,
    Proxy,
    answer_calls,
    answer_until_done,
    config,
    expense_tools,
    running_proxy,
)
from openptc.proxy.history import CONTAINER_REQUIRED
from openptc.scenarios import expense

HEADERS = {"x-api-key": KEY_A, "anthropic-version": "2023-06-01"}


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    async with running_proxy(
        config(max_body_bytes=4 * 1024 * 1024, container_idle_s=30)
    ) as running:
        yield running


async def _paused(proxy: Proxy) -> tuple[list[dict[str, Any]], Any]:
    """An audit paused on its first call: the history so far and that response."""
    client = proxy.client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
    first = await client.messages.create(
        model="claude-expense", max_tokens=1024, messages=messages, tools=_tools()
    )
    assert first.stop_reason == "tool_use"
    messages.append({"role": "assistant", "content": first.content})
    return messages, first


def _tools() -> list[dict[str, Any]]:
    return [CODE_TOOL, *expense_tools()]


def _wire(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history as JSON (SDK blocks dumped), for raw HTTP requests."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            content = [
                b if isinstance(b, dict) else b.model_dump(exclude_none=True) for b in content
            ]
        out.append({"role": m["role"], "content": content})
    return out


def _assert_error(response: httpx.Response, status: int, kind: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert response.headers["request-id"].startswith("req_")
    for word in words:
        assert word in body["error"]["message"], body["error"]["message"]


async def test_bad_requests_get_4xx_and_the_paused_program_still_finishes(proxy: Proxy) -> None:
    messages, first = await _paused(proxy)
    container = first.container.id
    answers = await answer_calls(first.content)
    base = {"model": "claude-expense", "max_tokens": 1024, "tools": _tools()}
    resume = {**base, "messages": _wire([*messages, {"role": "user", "content": answers}])}
    url = f"{proxy.url}/v1/messages"
    async with httpx.AsyncClient(timeout=30) as http:
        # Malformed JSON.
        bad = await http.post(
            url, content=b'{"model": ', headers={**HEADERS, "content-type": "application/json"}
        )
        _assert_error(bad, 400, "invalid_request_error", "not valid JSON")
        # Wrong content type.
        bad = await http.post(
            url, content=json.dumps(resume), headers={**HEADERS, "content-type": "text/plain"}
        )
        _assert_error(bad, 400, "invalid_request_error", "content-type")
        # Oversized body.
        huge = {**base, "messages": [{"role": "user", "content": "x" * 5_000_000}]}
        bad = await http.post(url, json=huge, headers=HEADERS)
        _assert_error(bad, 413, "request_too_large")
        # Unknown tool type.
        bad = await http.post(
            url,
            json={
                **resume,
                "tools": [*_tools(), {"type": "web_search_20250305", "name": "web_search"}],
            },
            headers=HEADERS,
        )
        _assert_error(bad, 400, "invalid_request_error", "web_search_20250305")
        # Missing container id while programmatic calls are pending: the API's own message.
        bad = await http.post(url, json=resume, headers=HEADERS)
        _assert_error(bad, 400, "invalid_request_error", CONTAINER_REQUIRED)
        # A tool_result for an unknown tool_use_id.
        forged = [*answers, {"type": "tool_result", "tool_use_id": "toolu_forged", "content": "x"}]
        bad = await http.post(
            url,
            json={
                **base,
                "container": container,
                "messages": _wire([*messages, {"role": "user", "content": forged}]),
            },
            headers=HEADERS,
        )
        _assert_error(bad, 400, "invalid_request_error", "toolu_forged")
        # Missing results for pending calls.
        bad = await http.post(
            url,
            json={
                **base,
                "container": container,
                "messages": _wire(
                    [*messages, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
                ),
            },
            headers=HEADERS,
        )
        _assert_error(bad, 400, "invalid_request_error", "without `tool_result` blocks")
        # Text next to the results of pending programmatic calls.
        mixed = [*answers, {"type": "text", "text": "and also"}]
        bad = await http.post(
            url,
            json={
                **base,
                "container": container,
                "messages": _wire([*messages, {"role": "user", "content": mixed}]),
            },
            headers=HEADERS,
        )
        _assert_error(bad, 400, "invalid_request_error", "only tool_result blocks")
        # Another key's container: not found, not the container.
        bad = await http.post(
            url, json={**resume, "container": container}, headers={**HEADERS, "x-api-key": KEY_B}
        )
        _assert_error(bad, 404, "not_found_error", "was not found")
        # A container that never existed (or expired: the same answer).
        bad = await http.post(url, json={**resume, "container": "container_nope"}, headers=HEADERS)
        _assert_error(bad, 404, "not_found_error", "expire")
        # tool_choice naming a tool only code may call.
        bad = await http.post(
            url,
            json={
                **base,
                "messages": [{"role": "user", "content": "hi"}],
                "tool_choice": {"type": "tool", "name": "get_expenses"},
            },
            headers=HEADERS,
        )
        _assert_error(bad, 400, "invalid_request_error", "can only be called from code execution")
        # Invalid fields, with where they are.
        bad = await http.post(url, json={**base, "messages": []}, headers=HEADERS)
        _assert_error(bad, 400, "invalid_request_error", "messages")
        bad = await http.post(
            url,
            json={**base, "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]},
            headers=HEADERS,
        )
        _assert_error(bad, 400, "invalid_request_error", "max_tokens")
        # Unknown model name when no "*" route... here "*" exists; an unknown route is a 404.
        bad = await http.get(f"{proxy.url}/v1/nothing", headers=HEADERS)
        _assert_error(bad, 404, "not_found_error")

    # Nothing was disturbed: the paused program resumes and the audit ends correctly.
    messages.pop()  # answer_until_done appends the assistant turn and the answers itself
    response = await answer_until_done(
        proxy.client(), messages, first, model="claude-expense", max_tokens=1024, tools=_tools()
    )
    assert expense.is_correct(response.content[-1].text)


async def test_authentication_accepts_x_api_key_and_bearer_and_both_versions(proxy: Proxy) -> None:
    body = {
        "model": "claude-expense",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    url = f"{proxy.url}/v1/messages"
    async with httpx.AsyncClient(timeout=30) as http:
        for headers in (
            {"x-api-key": KEY_A, "anthropic-version": "2023-06-01"},
            {"authorization": f"Bearer {KEY_A}", "anthropic-version": "2026-10-21"},
        ):
            ok = await http.post(url, json=body, headers=headers)
            assert ok.status_code == 200, ok.text
            assert ok.json()["type"] == "message"
        _assert_error(await http.post(url, json=body), 401, "authentication_error", "x-api-key")
        wrong = await http.post(
            url, json=body, headers={"x-api-key": "sk-wrong", "anthropic-version": "2023-06-01"}
        )
        _assert_error(wrong, 401, "authentication_error")
        old = await http.post(
            url, json=body, headers={"x-api-key": KEY_A, "anthropic-version": "2020-01-01"}
        )
        _assert_error(old, 400, "invalid_request_error", "anthropic-version")
        sampled = await http.post(
            url,
            json={**body, "temperature": 0.5},
            headers={"x-api-key": KEY_A, "anthropic-version": "2026-10-21"},
        )
        _assert_error(sampled, 400, "invalid_request_error", "temperature")
    # The official SDK (which sends the key as it does in this release) is accepted.
    with pytest.raises(anthropic.AuthenticationError):
        await proxy.client(key="sk-wrong").messages.create(
            model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )


async def test_per_key_container_limit_is_a_429_and_other_keys_are_unaffected(proxy: Proxy) -> None:
    client_b = proxy.client(key=KEY_B)  # KEY_B may hold 2 containers
    request: dict[str, Any] = {
        "model": "claude-expense",
        "max_tokens": 512,
        "tools": _tools(),
        "messages": [{"role": "user", "content": expense.QUESTION}],
    }
    held = [await client_b.messages.create(**request) for _ in range(2)]
    assert len({r.container.id for r in held}) == 2
    with pytest.raises(anthropic.RateLimitError, match="limit of 2"):
        await client_b.messages.create(**request)
    other = await proxy.client().messages.create(**request)
    assert other.stop_reason == "tool_use"


async def test_count_tokens_and_models(proxy: Proxy) -> None:
    client = proxy.client()
    small = await client.messages.count_tokens(
        model="claude-expense", messages=[{"role": "user", "content": "hi"}]
    )
    big = await client.messages.count_tokens(
        model="claude-expense", messages=[{"role": "user", "content": "hi " * 500}], tools=_tools()
    )
    assert 0 < small.input_tokens < big.input_tokens
    models = await client.models.list()
    assert [m.id for m in models.data] == ["claude-expense"]
    assert (await client.models.retrieve("claude-expense")).id == "claude-expense"
    with pytest.raises(anthropic.NotFoundError):
        await client.models.retrieve("gpt-nothing")


def _parents() -> dict[int, int]:
    """Every process's parent, as /proc says now."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _sandbox_processes() -> int:
    """Sandbox interpreters started by this test process (their command line carries the
    bridge fds); other processes' sandboxes on a shared machine are not counted."""
    parents, me, count = _parents(), os.getpid(), 0
    for pid in parents:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b'"in_fd"' not in cmdline or b"bwrap" in cmdline.split(b"\0", 1)[0]:
            continue
        ancestor = parents.get(pid, 0)
        while ancestor > 1 and ancestor != me:
            ancestor = parents.get(ancestor, 0)
        count += ancestor == me
    return count


async def _settle(expected: int) -> int:
    for _ in range(100):
        if _sandbox_processes() == expected:
            break
        await asyncio.sleep(0.1)
    return _sandbox_processes()


async def test_an_expired_container_is_closed_and_then_not_found() -> None:
    settings = config(container_idle_s=1.0, pool_size=0)
    baseline = _sandbox_processes()
    async with running_proxy(settings) as proxy:
        messages, first = await _paused(proxy)
        answers = await answer_calls(first.content)
        assert _sandbox_processes() == baseline + 1  # the container's sandbox
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{proxy.url}/health")).json()
            assert health["containers"] == 1
            await asyncio.sleep(2.0)
            assert (await http.get(f"{proxy.url}/health")).json()["containers"] == 0
        assert await _settle(baseline) == baseline  # its processes were killed and reaped
        with pytest.raises(anthropic.NotFoundError, match="expire"):
            await proxy.client().messages.create(
                model="claude-expense",
                max_tokens=512,
                tools=_tools(),
                messages=[*messages, {"role": "user", "content": answers}],
                container=first.container.id,
            )


async def test_a_sandbox_that_dies_mid_program_is_reported_and_the_container_goes_on() -> None:
    from openptc.models.base import ToolUseBlock
    from openptc.models.scripted import ScriptedModel

    dying = (
        "await get_team_members({'department': 'sales'})\nimport ctypes\nctypes.CDLL(None)._exit(3)"
    )

    def code(n: int, program: str) -> list[ToolUseBlock]:
        return [ToolUseBlock(id=f"toolu_c{n}", name="code_execution", input={"code": program})]

    backend = ScriptedModel.from_turns(
        [code(1, dying), "it died", code(2, "print('alive again')"), "fine"], about="test"
    )
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        paused = await client.messages.create(
            model="m", max_tokens=256, messages=messages, tools=_tools()
        )
        messages += [
            {"role": "assistant", "content": paused.content},
            {"role": "user", "content": await answer_calls(paused.content)},
        ]
        died = await client.messages.create(
            model="m",
            max_tokens=256,
            messages=messages,
            tools=_tools(),
            container=paused.container.id,
        )
        result = died.content[0].content
        assert result.return_code == 1 and "ended unexpectedly" in result.stderr
        assert "get_team_members" in result.stderr  # the calls that completed are listed
        messages += [
            {"role": "assistant", "content": died.content},
            {"role": "user", "content": "again"},
        ]
        again = await client.messages.create(
            model="m",
            max_tokens=256,
            messages=messages,
            tools=_tools(),
            container=paused.container.id,
        )
        assert again.content[1].content.stdout == "alive again\n"


async def test_a_failing_backend_is_a_502_in_the_apis_shape() -> None:
    from openptc.models.scripted import ScriptedModel

    backend = ScriptedModel.from_turns([], about="no turns at all")
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        with pytest.raises(anthropic.InternalServerError) as caught:
            await proxy.client().messages.create(
                model="m", max_tokens=16, messages=[{"role": "user", "content": "x"}]
            )
        assert caught.value.status_code == 502
        body = caught.value.body
        assert isinstance(body, dict) and body["error"]["type"] == "api_error"
        assert "backend model failed" in body["error"]["message"]


async def test_a_streaming_request_over_the_container_limit_is_a_429_not_an_event() -> None:
    from fakes.proxy_setup import KEY_B  # may hold 2 containers

    async with running_proxy(config()) as proxy:
        client = proxy.client(key=KEY_B)
        request: dict[str, Any] = {
            "model": "claude-expense",
            "max_tokens": 256,
            "tools": _tools(),
            "messages": [{"role": "user", "content": expense.QUESTION}],
        }
        for _ in range(2):
            await client.messages.create(**request)
        with pytest.raises(anthropic.RateLimitError, match="limit of 2"):
            async with client.messages.stream(**request) as stream:
                await stream.get_final_message()
