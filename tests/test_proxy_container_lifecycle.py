"""A container holds a live sandbox only while it needs one.

A key's limit bounds the containers it has *in use* (a request running in them, or a program
paused waiting for tool results), not the conversations it had: an idle container gives its
sandbox back (after ``container_warm_s``, or at once when its key needs room) and is rebuilt by
re-running its programs with their recorded tool results when it is used again.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from fakes.load_and_read import TOOLS, expected_outputs, load_and_read_backend
from fakes.proxy_setup import (
    KEY_B,
    Proxy,
    answer_calls,
    config,
    running_proxy,
)


async def _load(client: anthropic.AsyncAnthropic) -> tuple[Any, list[dict[str, Any]]]:
    """One whole conversation: the program pauses on its tool call, the client answers, the
    program finishes. Returns the last response and the history."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "load"}]
    paused = await client.messages.create(model="m", max_tokens=256, messages=messages, tools=TOOLS)
    assert paused.stop_reason == "tool_use"
    messages += [
        {"role": "assistant", "content": paused.content},
        {"role": "user", "content": await answer_calls(paused.content)},
    ]
    done = await client.messages.create(
        model="m",
        max_tokens=256,
        messages=messages,
        tools=TOOLS,
        container=paused.container.id,
    )
    messages.append({"role": "assistant", "content": done.content})
    return done, messages


async def _read(
    client: anthropic.AsyncAnthropic, messages: list[dict[str, Any]], container: str
) -> Any:
    """A later turn in the same container that needs the variables of the first one."""
    return await client.messages.create(
        model="m",
        max_tokens=256,
        messages=[*messages, {"role": "user", "content": "read"}],
        tools=TOOLS,
        container=container,
    )


async def _health(proxy: Proxy) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{proxy.url}/health")).json()
    assert isinstance(body, dict)
    return body


async def test_a_hundred_sequential_conversations_on_one_key_all_succeed() -> None:
    expected = (await expected_outputs())[0]
    async with running_proxy(config(), load_and_read_backend("scripted:lifecycle")) as proxy:
        client = proxy.client()  # KEY_A: the default limit of 32 containers in use
        for number in range(100):
            done, _ = await _load(client)
            result = done.content[0].content
            assert (number, result.return_code, result.stdout) == (number, 0, expected)
        health = await _health(proxy)
    # Idle containers were released to make room: never more live ones than the key's limit.
    assert health["containers"] <= 32


async def test_a_container_whose_sandbox_was_evicted_is_rebuilt_on_its_next_turn() -> None:
    first_id = (await expected_outputs())[1].strip()
    async with running_proxy(config(), load_and_read_backend("scripted:lifecycle")) as proxy:
        client = proxy.client(key=KEY_B)  # may have 2 containers in use
        done, history = await _load(client)
        container = done.container.id
        for _ in range(2):  # two more conversations: the first container is the least recent
            await _load(client)
        assert (await _health(proxy))["containers"] == 2
        again = await _read(client, history, container)
    result = again.content[1].content
    assert (result.return_code, result.stdout) == (0, f"{first_id}\n"), result.stderr
    assert again.container.id == container


async def test_an_idle_container_releases_its_sandbox_after_the_warm_time() -> None:
    import asyncio

    first_id = (await expected_outputs())[1].strip()
    settings = config(container_warm_s=0.5)
    async with running_proxy(settings, load_and_read_backend("scripted:lifecycle")) as proxy:
        client = proxy.client()
        done, history = await _load(client)
        for _ in range(100):  # the reaper runs every container_warm_s / 2
            if (await _health(proxy))["containers"] == 0:
                break
            await asyncio.sleep(0.1)
        assert (await _health(proxy))["containers"] == 0
        again = await _read(client, history, done.container.id)
    result = again.content[1].content
    assert (result.return_code, result.stdout) == (0, f"{first_id}\n"), result.stderr


async def test_paused_programs_keep_their_sandboxes_and_count_toward_the_limit() -> None:
    async with running_proxy(config(), load_and_read_backend("scripted:lifecycle")) as proxy:
        client = proxy.client(key=KEY_B)
        request: dict[str, Any] = {
            "model": "m",
            "max_tokens": 256,
            "tools": TOOLS,
            "messages": [{"role": "user", "content": "load"}],
        }
        paused = [await client.messages.create(**request) for _ in range(2)]
        with pytest.raises(anthropic.RateLimitError, match="limit of 2") as caught:
            await client.messages.create(**request)
        assert "paused" in caught.value.message
        # Both paused programs are still there and finish correctly.
        for response in paused:
            messages = [
                *request["messages"],
                {"role": "assistant", "content": response.content},
                {"role": "user", "content": await answer_calls(response.content)},
            ]
            done = await client.messages.create(
                **{**request, "messages": messages}, container=response.container.id
            )
            assert done.content[0].content.return_code == 0
        # Finished, they are idle: a new conversation gets a container at once.
        third = await client.messages.create(**request)
        assert third.stop_reason == "tool_use"
