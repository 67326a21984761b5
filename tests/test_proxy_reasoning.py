"""Reasoning through the proxy: the client's ``thinking`` reaches the backend, the backend's
reasoning reaches the client as ``thinking``/``redacted_thinking`` blocks (plain and streamed),
and those blocks come back to the backend exactly as it issued them — across a paused program,
whatever the backend's wire, and even from a client that left them out of its history."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from fakes.proxy_setup import (
    CODE_TOOL,
    answer_calls,
    code_turn,
    config,
    expense_tools,
    running_proxy,
    scripted,
)
from openptc.models.base import (
    Message,
    ModelRequest,
    ModelResponse,
    ReasoningBlock,
    TextBlock,
    ToolResultBlock,
)
from openptc.models.settings import Reasoning
from openptc.proxy.errors import ApiError
from openptc.proxy.reasoning import PREFIX, from_content, to_content
from openptc.proxy.store import RecordStore
from openptc.proxy.wire import RedactedThinkingContent, ThinkingContent

BACKEND = "scripted:expense-audit"  # what the test config maps every model name to
PROGRAM = """\
members = json.loads(await get_team_members({"department": "engineering"}))
print(len(members), "members")
"""
TOOLS = [CODE_TOOL, *expense_tools()]
THINK = {"type": "enabled", "budget_tokens": 2048}


def _turn(*blocks: Any, stop: str = "end_turn") -> ModelResponse:
    return ModelResponse(tuple(blocks), stop, None, "scripted:test")  # type: ignore[arg-type]


def _reasoning(request: ModelRequest) -> list[ReasoningBlock]:
    return [b for m in request.messages for b in m.content if isinstance(b, ReasoningBlock)]


def _code_message(request: ModelRequest) -> Message:
    """The backend's own turn that called its code tool, as the request gives it back."""
    return next(m for m in request.messages if any(u.name == "code_execution" for u in m.tool_uses))


async def test_thinking_across_a_paused_program_comes_back_unchanged() -> None:
    plan = ReasoningBlock("I should list the team first.", "anthropic", signature="sig-plan-1")
    done = ReasoningBlock("Now I can answer.", "anthropic", signature="sig-done-2")
    later = ReasoningBlock("Same answer.", "anthropic", signature="sig-later-3")
    backend = scripted(
        _turn(plan, TextBlock("Let me look."), *code_turn(1, PROGRAM), stop="tool_use"),
        _turn(done, TextBlock("Engineering has 4 members.")),
        _turn(later, TextBlock("Still 4.")),
    )
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "How big is engineering?"}]
        request: dict[str, Any] = {"model": "m", "max_tokens": 4096, "tools": TOOLS}
        first = await client.messages.create(messages=messages, thinking=THINK, **request)
        assert [b.type for b in first.content] == [
            "thinking",
            "text",
            "server_tool_use",
            "tool_use",
        ]
        assert first.content[0].thinking == plan.text
        assert first.content[0].signature == "sig-plan-1"  # an Anthropic-wire one, as it is
        sent = backend.requests[0]
        assert sent.settings.reasoning == Reasoning(budget_tokens=2048)
        assert sent.max_tokens == 4096 - 2048  # the budget goes on top again in the adapter

        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": await answer_calls(first.content)},
        ]
        final = await client.messages.create(
            messages=messages, thinking=THINK, container=first.container.id, **request
        )
        assert [b.type for b in final.content] == ["code_execution_tool_result", "thinking", "text"]
        assert final.content[0].content.stdout == "24 members\n"
        assert (final.content[1].thinking, final.content[1].signature) == (done.text, "sig-done-2")
        # The backend read its program's result with the reasoning that wrote the program.
        resumed = backend.requests[1]
        assert _code_message(resumed).content[:2] == (plan, TextBlock("Let me look."))
        assert isinstance(resumed.messages[-1].content[0], ToolResultBlock)

        messages += [
            {"role": "assistant", "content": final.content},
            {"role": "user", "content": "Sure?"},
        ]
        again = await client.messages.create(messages=messages, thinking=THINK, **request)
        assert again.content[-1].text == "Still 4."
        assert _reasoning(backend.requests[2]) == [plan, done]


async def test_within_one_request_the_backend_reads_its_result_with_its_reasoning() -> None:
    # The program needs no client tool: it finishes, and the backend's next call in the same
    # request (hidden from the client but for the blocks) carries the reasoning that wrote it.
    plan = ReasoningBlock("Compute it in code.", "openai-responses", id="rs_7", encrypted="e==")
    backend = scripted(
        _turn(plan, *code_turn(1, "print(6 * 7)"), stop="tool_use"),
        _turn(TextBlock("42.")),
    )
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        message = await proxy.client().messages.create(
            model="m",
            max_tokens=4096,
            thinking=THINK,
            tools=[CODE_TOOL],
            messages=[{"role": "user", "content": "6 times 7?"}],
        )
    assert [b.type for b in message.content] == [
        "thinking",
        "server_tool_use",
        "code_execution_tool_result",
        "text",
    ]
    second = backend.requests[1]
    assert _code_message(second).content[0] == plan
    assert second.messages[-1].content[0] == ToolResultBlock(message.content[1].id, "42", False)


async def test_streamed_thinking_of_other_wires_round_trips_in_its_envelope() -> None:
    summary = ReasoningBlock(
        "Plan: list the team.", "openai-responses", id="rs_1", encrypted="gAAAA-opaque=="
    )
    hidden = ReasoningBlock("", "bedrock", redacted="cmVkYWN0ZWQgYnl0ZXM=")
    backend = scripted(
        _turn(summary, hidden, TextBlock("Looking."), *code_turn(1, PROGRAM), stop="tool_use"),
        _turn(TextBlock("Engineering has 4 members.")),
    )
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "How big is engineering?"}]
        request: dict[str, Any] = {"model": "m", "max_tokens": 4096, "tools": TOOLS}
        seen: list[tuple[str, str | None]] = []
        async with client.messages.stream(messages=messages, thinking=THINK, **request) as events:
            async for event in events:
                if event.type == "content_block_start" and event.index == 0:
                    seen.append((event.type, event.content_block.type))
                elif event.type == "content_block_delta" and event.index == 0:
                    seen.append((event.type, event.delta.type))
                elif event.type == "content_block_stop" and event.index == 0:
                    seen.append((event.type, None))
            first = await events.get_final_message()
        assert seen == [
            ("content_block_start", "thinking"),
            ("content_block_delta", "thinking_delta"),
            ("content_block_delta", "signature_delta"),
            ("content_block_stop", None),
        ]
        assert [b.type for b in first.content][:3] == ["thinking", "redacted_thinking", "text"]
        thinking, redacted = first.content[0], first.content[1]
        assert thinking.thinking == summary.text and thinking.signature.startswith(PREFIX)
        assert redacted.data.startswith(PREFIX)

        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": await answer_calls(first.content)},
        ]
        async with client.messages.stream(
            messages=messages, thinking=THINK, container=first.container.id, **request
        ) as events:
            final = await events.get_final_message()
        assert final.content[-1].text == "Engineering has 4 members."
        assert _code_message(backend.requests[1]).content[:3] == (
            summary,
            hidden,
            TextBlock("Looking."),
        )


async def test_anthropic_redacted_thinking_is_shown_as_it_is_and_given_back() -> None:
    redacted = ReasoningBlock("", "anthropic", redacted="EmwKAhgBEgy3va3pzix/LafPsn4a")
    backend = scripted(_turn(redacted, TextBlock("Hello.")), _turn(TextBlock("Again.")))
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
        first = await client.messages.create(
            model="m", max_tokens=4096, thinking=THINK, messages=messages
        )
        assert first.content[0].type == "redacted_thinking"
        assert first.content[0].data == redacted.redacted
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "again"},
        ]
        await client.messages.create(model="m", max_tokens=4096, thinking=THINK, messages=messages)
    assert _reasoning(backend.requests[1]) == [redacted]


async def test_reasoning_after_live_streamed_text_goes_back_before_it() -> None:
    # Not asked for thinking, the client gets the text as it is written; the reasoning the
    # backend sent anyway can only follow it, and is put back first on the way back.
    thought = ReasoningBlock("The team tool will do.", "openai-chat")
    backend = scripted(
        _turn(thought, TextBlock("Looking."), *code_turn(1, PROGRAM), stop="tool_use"),
        _turn(TextBlock("Engineering has 4 members.")),
    )
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "How big is engineering?"}]
        request: dict[str, Any] = {"model": "m", "max_tokens": 1024, "tools": TOOLS}
        async with client.messages.stream(messages=messages, **request) as events:
            first = await events.get_final_message()
        assert [b.type for b in first.content][:3] == ["text", "thinking", "server_tool_use"]
        assert backend.requests[0].settings.reasoning is None
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": await answer_calls(first.content)},
        ]
        await client.messages.create(messages=messages, container=first.container.id, **request)
    assert _code_message(backend.requests[1]).content[:2] == (thought, TextBlock("Looking."))


async def test_a_program_keeps_its_reasoning_for_a_client_that_drops_it(store: RecordStore) -> None:
    # Replica A pauses the program; B, sharing only the store, resumes it for a client that
    # stripped the thinking blocks: the backend still gets the reasoning that wrote the program.
    plan = ReasoningBlock("List the team.", "bedrock", signature="c2lnbmF0dXJl")
    backend = scripted(
        _turn(plan, *code_turn(1, PROGRAM), stop="tool_use"),
        _turn(TextBlock("Engineering has 4 members.")),
    )
    async with (
        running_proxy(config(), {BACKEND: backend}, store=store) as a,
        running_proxy(config(), {BACKEND: backend}, store=store) as b,
    ):
        messages: list[dict[str, Any]] = [{"role": "user", "content": "How big is engineering?"}]
        request: dict[str, Any] = {"model": "m", "max_tokens": 4096, "tools": TOOLS}
        first = await a.client().messages.create(messages=messages, thinking=THINK, **request)
        assert first.content[0].type == "thinking"
        stripped = [b for b in first.content if b.type != "thinking"]
        messages += [
            {"role": "assistant", "content": stripped},
            {"role": "user", "content": await answer_calls(first.content)},
        ]
        final = await b.client().messages.create(
            messages=messages, thinking=THINK, container=first.container.id, **request
        )
        assert final.content[0].content.stdout == "24 members\n"
    assert _code_message(backend.requests[1]).content[0] == plan


@pytest.mark.parametrize(
    "block",
    [
        ReasoningBlock("a thought", "anthropic", signature="EqQBCkYIBxgCKkBq"),
        ReasoningBlock("", "anthropic", redacted="EmwKAhgBEgy3va3p"),
        ReasoningBlock("summary", "openai-responses", id="rs_9", encrypted="gAAAAB=="),
        ReasoningBlock("", "openai-responses", id="rs_10"),
        ReasoningBlock("thinking aloud", "openai-chat"),
        ReasoningBlock("checked", "bedrock", signature="c2ln"),
        ReasoningBlock("", "bedrock", redacted="cmVk"),
        ReasoningBlock("text and redacted", "bedrock", redacted="cmVk"),
        ReasoningBlock("odd", "anthropic", signature=None),
        ReasoningBlock("ünïcödé ✓", "anthropic", signature=f"{PREFIX}looks-like-ours"),
    ],
)
def test_every_reasoning_block_survives_the_client(block: ReasoningBlock) -> None:
    for moved in (False, True):
        shown = to_content(block, moved=moved)
        wire = type(shown).model_validate(json.loads(shown.model_dump_json()))
        assert from_content(wire, "messages.1.content.0") == (block, moved)


def test_a_signature_the_proxy_did_not_issue_is_the_anthropic_apis() -> None:
    block, moved = from_content(ThinkingContent(thinking="t", signature="ErUBCkYIAx"), "here")
    assert block == ReasoningBlock("t", "anthropic", signature="ErUBCkYIAx") and not moved
    block, _ = from_content(RedactedThinkingContent(data="EmwKAh"), "here")
    assert block == ReasoningBlock("", "anthropic", redacted="EmwKAh")


def test_a_changed_envelope_is_refused_naming_the_block() -> None:
    shown = to_content(ReasoningBlock("x", "openai-chat"))
    assert isinstance(shown, ThinkingContent)
    for forged in (shown.signature[:-3], f"{PREFIX}!!!", f"{PREFIX}e30"):  # cut, junk, {}
        with pytest.raises(ApiError) as caught:
            from_content(ThinkingContent(thinking="x", signature=forged), "messages.3.content.1")
        assert caught.value.status == 400
        assert caught.value.message.startswith("messages.3.content.1: ")
        assert "exactly as they were received" in caught.value.message


async def test_thinking_settings_and_their_mistakes() -> None:
    backend = scripted(*(["ok"] * 5))
    async with running_proxy(config(), {BACKEND: backend}) as proxy:
        client = proxy.client()
        base: dict[str, Any] = {
            "model": "m",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "hi"}],
        }
        await client.messages.create(**base, thinking={"type": "disabled"})
        await client.messages.create(**base, thinking={"type": "adaptive"})
        await client.messages.create(
            **base, thinking={"type": "adaptive"}, output_config={"effort": "low"}
        )
        await client.messages.create(**base, thinking={"type": "between_tools"})
        await client.messages.create(**base)
        assert [r.settings.reasoning for r in backend.requests] == [
            None,
            Reasoning(effort="high"),  # the API's default effort
            Reasoning(effort="low"),
            None,
            None,
        ]
        assert [r.max_tokens for r in backend.requests] == [4096] * 5
        with pytest.raises(anthropic.BadRequestError, match=r"thinking\.enabled\.budget_tokens"):
            await client.messages.create(**base, thinking={"type": "enabled", "budget_tokens": 512})
        with pytest.raises(anthropic.BadRequestError, match="must be greater than"):
            await client.messages.create(
                **base, thinking={"type": "enabled", "budget_tokens": 4096}
            )
        with pytest.raises(anthropic.BadRequestError, match="exactly as they were received"):
            await client.messages.create(
                model="m",
                max_tokens=4096,
                messages=[
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "thinking", "thinking": "x", "signature": f"{PREFIX}junk"},
                            {"type": "text", "text": "hello"},
                        ],
                    },
                    {"role": "user", "content": "again"},
                ],
            )
    assert len(backend.requests) == 5  # the refused requests never reached the backend
