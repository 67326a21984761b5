"""The proxy end to end: the official ``anthropic`` SDK as the client, PTC as the service does it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from fakes.proxy_setup import (
    CODE_TOOL,
    KEY_A,
    Proxy,
    answer_calls,
    config,
    expense_tools,
    running_proxy,
)

from openptc.bench import expense


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    async with running_proxy(config()) as running:
        yield running


async def test_expense_audit_pauses_on_each_batch_and_answers_correctly(proxy: Proxy) -> None:
    client = proxy.client()
    tools = [CODE_TOOL, *expense_tools()]
    messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
    first = await client.messages.create(
        model="claude-expense", max_tokens=2048, messages=messages, tools=tools
    )
    assert first.stop_reason == "tool_use"
    assert first.container is not None and first.container.id.startswith("container_")
    server_use = first.content[0]
    assert server_use.type == "server_tool_use" and server_use.name == "code_execution"
    assert "get_team_members" in server_use.input["code"]
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["get_team_members"]
    assert calls[0].caller is not None
    assert calls[0].caller.type == "code_execution_20260120"
    assert calls[0].caller.tool_id == server_use.id

    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": await answer_calls(first.content)},
    ]
    second = await client.messages.create(
        model="claude-expense",
        max_tokens=2048,
        messages=messages,
        tools=tools,
        container=first.container.id,
    )
    # The gather of gathers issues every call before the program blocks: one response holds all.
    gathered = [b for b in second.content if b.type == "tool_use"]
    members = expense.default_data().team("engineering")
    assert second.stop_reason == "tool_use"
    assert len(gathered) == 2 * len(members)
    assert {b.name for b in gathered} == {"get_expenses", "get_custom_budget"}
    assert all(b.caller.tool_id == server_use.id for b in gathered)  # type: ignore[union-attr]
    assert len({b.id for b in gathered}) == len(gathered)
    assert second.container is not None and second.container.id == first.container.id

    messages += [
        {"role": "assistant", "content": second.content},
        {"role": "user", "content": await answer_calls(second.content)},
    ]
    final = await client.messages.create(
        model="claude-expense",
        max_tokens=2048,
        messages=messages,
        tools=tools,
        container=first.container.id,
    )
    assert final.stop_reason == "end_turn"
    result = final.content[0]
    assert result.type == "code_execution_tool_result"
    assert result.tool_use_id == server_use.id
    assert result.content.type == "code_execution_result"
    assert result.content.return_code == 0
    answer = final.content[-1]
    assert answer.type == "text"
    assert expense.is_correct(answer.text)
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0

