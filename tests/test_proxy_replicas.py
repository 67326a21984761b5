"""Several proxy replicas behind a plain load balancer: any replica resumes any container.

The replica that holds a container's live sandbox answers fastest; any other one rebuilds it
from the shared record (programs and the tool results given so far) by re-running them, and
says so when a re-run does not reproduce the recorded calls instead of answering wrongly.
The shared store is Redis (started by the project's own script) or, where noted, memory.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx

from fakes.harness import free_port
from fakes.proxy_setup import (
    CODE_TOOL,
    Proxy,
    answer_calls,
    answer_until_done,
    code_turn,
    config,
    expense_tools,
    running_proxy,
)
from openptc.models.scripted import ScriptedModel, Turn
from openptc.proxy.store import RecordStore
from openptc.scenarios import expense


async def _replicas(
    store: RecordStore, count: int, models: dict[str, Any] | None = None
) -> tuple[AsyncExitStack, list[Proxy]]:
    stack = AsyncExitStack()
    proxies = [
        await stack.enter_async_context(running_proxy(config(), models, store=store))
        for _ in range(count)
    ]
    return stack, proxies


async def _audit_across(proxies: list[Proxy]) -> Any:
    """One audit whose requests go round-robin over the replicas, as a plain balancer does."""
    tools = [CODE_TOOL, *expense_tools()]
    messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
    container = None
    for turn in range(10):
        client = proxies[turn % len(proxies)].client()
        extra = {"container": container} if container else {}
        response = await client.messages.create(
            model="claude-expense", max_tokens=1024, messages=messages, tools=tools, **extra
        )
        if response.stop_reason != "tool_use":
            return response
        container = response.container.id
        messages += [
            {"role": "assistant", "content": response.content},
            {"role": "user", "content": await answer_calls(response.content)},
        ]
    raise AssertionError("the audit did not finish")


async def test_a_paused_program_resumes_on_another_replica(store: RecordStore) -> None:
    stack, proxies = await _replicas(store, 2)
    async with stack:
        final = await _audit_across(proxies)
    assert final.content[0].type == "code_execution_tool_result"
    assert final.content[0].content.return_code == 0
    assert expense.is_correct(final.content[-1].text)


async def test_a_replica_with_an_outdated_live_session_rebuilds_it(store: RecordStore) -> None:
    # Requests 1 and 3 go to replica A, request 2 to B: A's live program is then out of date.
    stack, proxies = await _replicas(store, 2)
    async with stack:
        final = await _audit_across([proxies[0], proxies[1]])
        again = await _audit_across([proxies[1], proxies[0]])
    assert expense.is_correct(final.content[-1].text)
    assert expense.is_correct(again.content[-1].text)


STATEFUL = """\
members = json.loads(await get_team_members({"department": "engineering"}))
print(len(members), "members loaded")
"""


async def test_variables_survive_a_restart_of_the_only_replica(store: RecordStore) -> None:
    turns: list[Turn] = [
        code_turn(1, STATEFUL),
        "loaded",
        code_turn(2, "print(sorted(m['id'] for m in members)[0])"),
        "done",
    ]
    backend = ScriptedModel.from_turns(turns, name="scripted:t", about="test")
    tools = [CODE_TOOL, *expense_tools()]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "load"}]
    async with running_proxy(config(), {"scripted:expense-audit": backend}, store=store) as first:
        client = first.client()
        paused = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        messages += [
            {"role": "assistant", "content": paused.content},
            {"role": "user", "content": await answer_calls(paused.content)},
        ]
        done = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=messages,
            tools=tools,
            container=paused.container.id,
        )
        assert done.content[0].content.stdout == "24 members loaded\n"
    # The replica is gone with its sandbox; a new one takes the container from the store.
    async with running_proxy(config(), {"scripted:expense-audit": backend}, store=store) as second:
        messages += [
            {"role": "assistant", "content": done.content},
            {"role": "user", "content": "first id?"},
        ]
        later = await second.client().messages.create(
            model="m",
            max_tokens=512,
            messages=messages,
            tools=tools,
            container=paused.container.id,
        )
    result = later.content[1].content
    assert result.return_code == 0, result.stderr
    assert result.stdout == "E1001\n"


NONDETERMINISTIC = """\
import os
token = os.urandom(8).hex()
text = await get_team_members({"department": "engineering", "trace": token})
print("got", len(json.loads(text)), "members")
"""


async def test_a_diverging_rerun_is_reported_not_answered(store: RecordStore) -> None:
    turns: list[Turn] = [code_turn(1, NONDETERMINISTIC), "unreachable"]
    backend = ScriptedModel.from_turns(turns, name="scripted:t", about="test")
    tools = [CODE_TOOL, *expense_tools()]
    stack, proxies = await _replicas(store, 2, {"scripted:expense-audit": backend})
    async with stack:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        paused = (
            await proxies[0]
            .client()
            .messages.create(model="m", max_tokens=512, messages=messages, tools=tools)
        )
        call = paused.content[1]
        answers = [{"type": "tool_result", "tool_use_id": call.id, "content": "[]"}]
        messages += [
            {"role": "assistant", "content": paused.content},
            {"role": "user", "content": answers},
        ]
        resumed = (
            await proxies[1]
            .client()
            .messages.create(
                model="m",
                max_tokens=512,
                messages=messages,
                tools=tools,
                container=paused.container.id,
            )
        )
    result = resumed.content[0].content
    assert result.return_code == 1
    assert "could not be resumed here" in result.stderr
    assert "get_team_members" in result.stderr
    assert "got" not in result.stdout  # no answer built on a guess


async def _holders(store: RecordStore, count: int) -> tuple[AsyncExitStack, list[Proxy]]:
    """Replicas that advertise their URLs, so that they forward to a container's holder."""
    stack = AsyncExitStack()
    proxies = []
    for _ in range(count):
        port = free_port()
        settings = config(advertise_url=f"http://127.0.0.1:{port}")
        proxies.append(
            await stack.enter_async_context(running_proxy(settings, store=store, port=port))
        )
    return stack, proxies


async def _live_containers(proxy: Proxy) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{proxy.url}/health")).json()["containers"])


async def test_replicas_forward_a_container_to_its_holder(store: RecordStore) -> None:
    stack, proxies = await _holders(store, 2)
    async with stack:
        final = await _audit_across(proxies)
        assert expense.is_correct(final.content[-1].text)
        # Replica A created the container; B forwarded its turns instead of rebuilding it.
        assert await _live_containers(proxies[0]) == 1
        assert await _live_containers(proxies[1]) == 0


async def test_when_the_holder_is_gone_another_replica_rebuilds(store: RecordStore) -> None:
    tools = [CODE_TOOL, *expense_tools()]
    messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
    stack, (holder,) = await _holders(store, 1)
    async with stack:
        paused = await holder.client().messages.create(
            model="claude-expense", max_tokens=1024, messages=messages, tools=tools
        )
    # The holder is gone (its port refuses connections); the next replica serves it itself.
    port = free_port()
    settings = config(advertise_url=f"http://127.0.0.1:{port}")
    async with running_proxy(settings, store=store, port=port) as survivor:
        response = await answer_until_done(
            survivor.client(),
            messages,
            paused,
            model="claude-expense",
            max_tokens=1024,
            tools=tools,
        )
        assert await _live_containers(survivor) == 1
    assert expense.is_correct(response.content[-1].text)


async def test_a_keys_container_limit_holds_across_replicas_under_concurrency(
    store: RecordStore,
) -> None:
    import asyncio

    import anthropic

    from fakes.proxy_setup import KEY_B  # may hold 2 containers

    stack, proxies = await _replicas(store, 2)
    async with stack:
        request: dict[str, Any] = {
            "model": "claude-expense",
            "max_tokens": 256,
            "tools": [CODE_TOOL, *expense_tools()],
            "messages": [{"role": "user", "content": expense.QUESTION}],
        }
        outcomes = await asyncio.gather(
            *(proxies[i % 2].client(key=KEY_B).messages.create(**request) for i in range(8)),
            return_exceptions=True,
        )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, anthropic.RateLimitError)]
    assert len(created) == 2 and len(refused) == 6
