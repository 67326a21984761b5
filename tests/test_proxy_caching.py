"""Prompt caching through the proxy: the client's ``cache_control`` turns the backend's cache on
(and its absence leaves it off, as with the API), and the backend's cache reads and writes reach
the client's usage apart from fresh input, over every backend call of a PTC turn."""

from __future__ import annotations

from typing import Any

import pytest

from fakes.proxy_setup import CODE_TOOL, MeteredModel, code_turn, config, running_proxy, scripted
from openptc.models.base import ModelResponse, ModelUsage, ReasoningBlock, TextBlock

BACKEND = "scripted:expense-audit"  # what the test config maps every model name to
MARK = {"type": "ephemeral"}
TOOL = {"name": "lookup", "description": "Looks up.", "input_schema": {"type": "object"}}


async def test_the_backend_caches_when_the_client_marks_anything() -> None:
    marked: list[dict[str, Any]] = [
        {"system": [{"type": "text", "text": "Be brief.", "cache_control": MARK}]},
        {"tools": [{**TOOL, "cache_control": MARK}]},
        {"cache_control": MARK},  # the top-level form marks the last cacheable block
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": MARK}]}
            ]
        },
    ]
    unmarked: list[dict[str, Any]] = [{"system": "Be brief."}, {"tools": [TOOL]}, {}]
    backend = scripted(*(["ok"] * (len(marked) + len(unmarked))))
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        for extra in [*marked, *unmarked]:
            request: dict[str, Any] = {
                "model": "m",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "hi"}],
            }
            await client.messages.create(**{**request, **extra})
    caching = [r.settings.cache for r in backend.requests]
    assert caching == [True] * len(marked) + [False] * len(unmarked)


def _metered(*blocks: Any, usage: ModelUsage, stop: str = "end_turn") -> ModelResponse:
    return ModelResponse(tuple(blocks), stop, usage, "scripted:metered")  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [False, True])
async def test_cache_reads_and_writes_reach_the_clients_usage(stream: bool) -> None:
    # One PTC request, two backend calls: the program's, then the answer; usage is their sum.
    backend = MeteredModel(
        _metered(
            *code_turn(1, "print(6 * 7)"),
            usage=ModelUsage(120, 30, cache_write_tokens=2000, reasoning_tokens=0),
            stop="tool_use",
        ),
        _metered(
            ReasoningBlock("It printed 42.", "anthropic", signature="sig"),
            TextBlock("42."),
            usage=ModelUsage(15, 12, cache_read_tokens=2100, reasoning_tokens=5),
        ),
    )
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        request: dict[str, Any] = {
            "model": "m",
            "max_tokens": 4096,
            "tools": [{**CODE_TOOL, "cache_control": MARK}],
            "messages": [{"role": "user", "content": "What is 6 times 7?"}],
        }
        if stream:
            async with client.messages.stream(**request) as events:
                message = await events.get_final_message()
        else:
            message = await client.messages.create(**request)
    assert [b.text for b in message.content if b.type == "text"] == ["42."]
    usage = message.usage
    assert usage.input_tokens == 135  # fresh input only
    assert usage.cache_creation_input_tokens == 2000
    assert usage.cache_read_input_tokens == 2100
    assert usage.output_tokens == 42
    assert usage.output_tokens_details is not None
    assert usage.output_tokens_details.thinking_tokens == 5
    assert all(r.settings.cache for r in backend.requests)
