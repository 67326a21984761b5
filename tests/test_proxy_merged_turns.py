"""Consecutive messages of one role are one turn, as the API reads them, before its rules apply:
a second user message after the results of a paused program's calls is text beside pending
results (a 400), never a request that silently drops those results."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from fakes.proxy_setup import (
    CODE_TOOL,
    answer_calls,
    answer_until_done,
    config,
    expense_tools,
    running_proxy,
    scripted,
)
from openptc.models.base import Message, TextBlock
from openptc.scenarios import expense

TOOLS = [CODE_TOOL, *expense_tools()]
REQUEST: dict[str, Any] = {"model": "claude-expense", "max_tokens": 1024, "tools": TOOLS}


async def test_text_after_pending_results_is_a_400_and_the_program_still_finishes() -> None:
    async with running_proxy(config()) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
        first = await client.messages.create(messages=messages, **REQUEST)
        assert first.stop_reason == "tool_use"
        container = first.container.id
        results = await answer_calls(first.content)
        answered = [*messages, {"role": "assistant", "content": first.content}]
        hurry = {"role": "user", "content": "and hurry up"}
        for wrong in (
            [*answered, {"role": "user", "content": results}, hurry],
            [*answered, hurry, {"role": "user", "content": results}],
        ):
            with pytest.raises(anthropic.BadRequestError) as caught:
                await client.messages.create(messages=wrong, container=container, **REQUEST)
            message = caught.value.message
            assert "must contain only tool_result blocks" in message
            assert "messages.2, messages.3 are consecutive user messages" in message
            with pytest.raises(anthropic.BadRequestError, match="only tool_result blocks"):
                async with client.messages.stream(
                    messages=wrong, container=container, **REQUEST
                ) as events:
                    await events.get_final_message()
        # Nothing was lost: the paused program takes the results sent as the API wants them.
        final = await answer_until_done(client, messages, first, **REQUEST)
    assert final.content[0].type == "code_execution_tool_result"
    assert final.content[0].content.return_code == 0
    assert expense.is_correct(final.content[-1].text)


async def test_consecutive_user_messages_reach_the_backend_as_one_turn() -> None:
    backend = scripted("noted")
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        await proxy.client().messages.create(
            model="m",
            max_tokens=64,
            messages=[
                {"role": "user", "content": "first this"},
                {"role": "user", "content": [{"type": "text", "text": "then that"}]},
            ],
        )
    assert backend.requests[0].messages == (
        Message("user", (TextBlock("first this"), TextBlock("then that"))),
    )
