"""The proxy end to end: the official ``anthropic`` SDK as the client, PTC."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fakes.proxy_setup import (
    CODE_TOOL,
    Proxy,
    answer_calls,
    code_turn,
    config,
    expense_tools,
    running_proxy,
    scripted,
)
from openptc.models.base import ToolResultBlock, ToolUseBlock
from openptc.scenarios import expense


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


async def _audit(proxy: Proxy, *, stream: bool) -> tuple[list[Any], list[str]]:
    """Run the whole audit; return the responses and the SSE event types seen."""
    client = proxy.client()
    tools = [CODE_TOOL, *expense_tools()]
    messages: list[dict[str, Any]] = [{"role": "user", "content": expense.QUESTION}]
    responses: list[Any] = []
    event_types: list[str] = []
    container: str | None = None
    while True:
        extra: dict[str, Any] = {"container": container} if container else {}
        if stream:
            async with client.messages.stream(
                model="claude-expense", max_tokens=2048, messages=messages, tools=tools, **extra
            ) as events:
                event_types += [event.type async for event in events]
                response = await events.get_final_message()
        else:
            response = await client.messages.create(
                model="claude-expense", max_tokens=2048, messages=messages, tools=tools, **extra
            )
        responses.append(response)
        if response.stop_reason != "tool_use":
            return responses, event_types
        container = response.container.id
        messages += [
            {"role": "assistant", "content": response.content},
            {"role": "user", "content": await answer_calls(response.content)},
        ]


def _shape(response: Any) -> list[tuple[str, str]]:
    return [(b.type, getattr(b, "name", "")) for b in response.content]


async def test_streaming_gives_the_same_turns_as_plain_responses(proxy: Proxy) -> None:
    plain, _ = await _audit(proxy, stream=False)
    streamed, event_types = await _audit(proxy, stream=True)
    assert [_shape(r) for r in streamed] == [_shape(r) for r in plain]
    assert [r.stop_reason for r in streamed] == ["tool_use", "tool_use", "end_turn"]
    # The SDK rebuilt each block from the events: code, inputs, callers, container, usage.
    first = streamed[0]
    assert first.content[0].input["code"] == expense.SERVICE_STYLE_PROGRAM
    assert first.content[1].input == {"department": "engineering"}
    assert first.content[1].caller.tool_id == first.content[0].id
    assert first.container is not None
    assert streamed[-1].content[0].content.stdout == plain[-1].content[0].content.stdout
    assert expense.is_correct(streamed[-1].content[-1].text)
    assert streamed[-1].usage.output_tokens > 0
    assert event_types[0] == "message_start" and event_types[-1] == "message_stop"
    assert "input_json" in event_types and "content_block_stop" in event_types


async def test_a_second_turn_reuses_the_containers_state() -> None:
    backend = scripted(
        code_turn(1, "total = 41\nprint('stored')"),
        "Stored.",
        code_turn(2, "print(total + 1)"),
        "It is 42.",
    )
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "store 41"}]
        first = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=[CODE_TOOL]
        )
        assert first.stop_reason == "end_turn"
        assert first.content[1].content.stdout == "stored\n"
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "now add one"},
        ]
        second = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=messages,
            tools=[CODE_TOOL],
            container=first.container.id,
        )
        assert second.content[1].content.stdout == "42\n"
        assert second.container.id == first.container.id
        # The backend saw the first program's output as its code tool's result.
        seen = backend.requests[-1].messages
        assert any(
            isinstance(b, ToolResultBlock) and b.content == "stored"
            for m in seen
            for b in m.content
        )


async def test_another_container_does_not_share_state() -> None:
    backend = scripted(
        code_turn(1, "secret = 1\nprint('ok')"), "ok", code_turn(2, "print(secret)"), "?"
    )
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        first = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=[{"role": "user", "content": "a"}],
            tools=[CODE_TOOL],
        )
        other = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=[{"role": "user", "content": "b"}],
            tools=[CODE_TOOL],
        )
        assert other.container.id != first.container.id
        assert "NameError" in other.content[1].content.stderr
        assert other.content[1].content.return_code == 1


async def test_a_direct_tool_passes_through_as_ordinary_tool_use() -> None:
    backend = scripted(
        [ToolUseBlock(id="toolu_direct1", name="lookup", input={"q": "budget"})], "Found it."
    )
    lookup = {
        "name": "lookup",
        "description": "Look something up.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "look up the budget"}]
        first = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=[CODE_TOOL, lookup]
        )
        assert first.stop_reason == "tool_use"
        assert first.content[0].type == "tool_use" and first.content[0].name == "lookup"
        assert first.content[0].caller.type == "direct"
        assert first.container is None  # no code ran
        messages += [
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_direct1", "content": "5000 USD"}
                ],
            },
        ]
        second = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=[CODE_TOOL, lookup]
        )
        assert second.stop_reason == "end_turn" and second.content[0].text == "Found it."
        last = backend.requests[-1].messages[-1]
        assert last.content == (ToolResultBlock("toolu_direct1", "5000 USD"),)
        # A tool callable directly is also offered as an ordinary tool to the backend.
        assert [s.name for s in backend.requests[0].tools] == ["code_execution", "lookup"]


CATCHING_PROGRAM = """\
try:
    await get_custom_budget({"user_id": "E1001"})
except Exception as exc:
    print("caught", type(exc).__name__, exc)
members = json.loads(await get_team_members(department="engineering"))
print(len(members), "members")
"""


async def test_tool_errors_are_raised_inside_the_program_and_keywords_work() -> None:
    backend = scripted(code_turn(1, CATCHING_PROGRAM), "done")
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        tools = [CODE_TOOL, *expense_tools()]
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        response = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        for _ in range(2):
            assert response.stop_reason == "tool_use"
            messages += [
                {"role": "assistant", "content": response.content},
                {
                    "role": "user",
                    "content": await answer_calls(
                        response.content, fail=lambda name: name == "get_custom_budget"
                    ),
                },
            ]
            response = await client.messages.create(
                model="m",
                max_tokens=512,
                messages=messages,
                tools=tools,
                container=response.container.id,
            )
        calls = [
            b
            for m in messages
            if m["role"] == "assistant"
            for b in m["content"]
            if b.type == "tool_use"
        ]
        assert calls[1].input == {"department": "engineering"}  # keyword call, one dict out
        stdout = response.content[0].content.stdout
        assert "caught ToolError boom: backend down" in stdout
        assert "24 members" in stdout


@pytest.mark.parametrize(
    ("version", "caller"),
    [
        ("code_execution_20250825", "code_execution_20250825"),
        ("code_execution_20260120", "code_execution_20260120"),
        ("code_execution_20260521", "code_execution_20260120"),
    ],
)
async def test_every_code_execution_version_is_served_with_the_real_caller_type(
    version: str, caller: str
) -> None:
    backend = scripted(code_turn(1, "print(await get_team_members({'department': 'sales'}))"), "ok")
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        tools = [{"type": version, "name": "code_execution"}, *expense_tools(version)]
        kwargs: dict[str, Any] = {
            "model": "m",
            "max_tokens": 512,
            "messages": [{"role": "user", "content": "go"}],
            "tools": tools,
        }
        if version == "code_execution_20250825":  # the public-beta form
            response: Any = await client.beta.messages.create(
                betas=["advanced-tool-use-2025-11-20"], **kwargs
            )
        else:
            response = await client.messages.create(**kwargs)
        call = response.content[1]
        assert call.type == "tool_use" and call.caller.type == caller


async def test_an_unanswered_call_raises_timeout_error_inside_the_program() -> None:
    program = (
        "try:\n    await get_team_members({'department': 'sales'})\n"
        "except TimeoutError as exc:\n    print('gave up:', exc)\n"
    )
    backend = scripted(code_turn(1, program), "done")
    settings = config(tool_result_timeout_s=0.3)
    async with running_proxy(settings, {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        tools = [CODE_TOOL, *expense_tools()]
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        first = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        await asyncio.sleep(0.8)  # the client takes longer than the deadline
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": await answer_calls(first.content)},
        ]
        late = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=messages,
            tools=tools,
            container=first.container.id,
        )
        stdout = late.content[0].content.stdout
        assert "gave up: Calling tool ['get_team_members'] timed out" in stdout


async def test_a_long_turn_pauses_and_continues_when_the_client_resends() -> None:
    backend = scripted(code_turn(1, "print('one')"), code_turn(2, "print('two')"), "both ran")
    settings = config(max_code_runs_per_request=1)
    async with running_proxy(settings, {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        outputs = []
        response = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=[CODE_TOOL]
        )
        while response.stop_reason == "pause_turn":
            outputs.append(response.content[1].content.stdout)
            messages.append({"role": "assistant", "content": response.content})
            response = await client.messages.create(
                model="m",
                max_tokens=512,
                messages=messages,
                tools=[CODE_TOOL],
                container=response.container.id,
            )
        assert outputs == ["one\n", "two\n"]
        assert response.stop_reason == "end_turn" and response.content[-1].text == "both ran"


STAGGERED = """\
async def fetch(i):
    for _ in range(i):
        await asyncio.sleep(0)  # each call leaves in a different step of the event loop
    return await get_team_members({"department": f"d{i}"})

print(len(await asyncio.gather(*(fetch(i) for i in range(5)))))
"""

POLLING = """\
task = asyncio.ensure_future(get_team_members({"department": "sales"}))
while not task.done():
    await asyncio.sleep(0)
print(len(json.loads(task.result())))
"""


@pytest.mark.parametrize(
    ("program", "batches"),
    [(STAGGERED, [5]), (POLLING, [1])],
    ids=["calls-in-several-loop-steps", "program-that-polls"],
)
async def test_a_response_holds_exactly_the_calls_made_before_the_program_blocked(
    program: str, batches: list[int]
) -> None:
    backend = scripted(code_turn(1, program), "done")
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        tools = [CODE_TOOL, *expense_tools()]
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        response = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        seen = []
        while response.stop_reason == "tool_use":
            calls = [b for b in response.content if b.type == "tool_use"]
            seen.append(len(calls))
            results = [
                {"type": "tool_result", "tool_use_id": c.id, "content": "[1, 2]"} for c in calls
            ]
            messages += [
                {"role": "assistant", "content": response.content},
                {"role": "user", "content": results},
            ]
            response = await client.messages.create(
                model="m",
                max_tokens=512,
                messages=messages,
                tools=tools,
                container=response.container.id,
            )
        assert seen == batches
        assert response.content[0].content.return_code == 0, response.content[0].content.stderr


async def test_logs_carry_ids_and_never_keys_code_or_payloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="openptc.proxy")
    async with running_proxy(config()) as proxy:
        responses, _ = await _audit(proxy, stream=False)
    container = responses[0].container.id
    records = [r for r in caplog.records if r.name == "openptc.proxy"]
    assert any(getattr(r, "container_id", None) == container for r in records)
    requests = [r for r in records if r.getMessage() == "request"]
    assert len(requests) == 3 and all(getattr(r, "status", None) == 200 for r in requests)
    from openptc.logs import JsonFormatter

    lines = [JsonFormatter().format(r) for r in records]
    in_requests = [json.loads(line) for line in lines if "started" not in line]
    assert all(entry["request_id"].startswith("req_") for entry in in_requests), in_requests
    text = "\n".join(lines)
    for secret in ("sk-proxy-test-a", "get_custom_budget({", "travel_budget_usd", "E1001"):
        assert secret not in text


async def test_a_new_program_after_an_unanswered_pause_keeps_earlier_variables() -> None:
    backend = scripted(
        code_turn(1, "x = 5\nprint('set')"),
        "x is set",
        code_turn(2, "await get_team_members({'department': 'sales'})\nx = 'clobbered'"),
        code_turn(3, "print(x)"),
        "x is still 5",
    )
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        tools = [CODE_TOOL, *expense_tools()]
        messages: list[dict[str, Any]] = [{"role": "user", "content": "set x"}]
        first = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        container = first.container.id
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "fetch sales"},
        ]
        paused = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools, container=container
        )
        assert paused.stop_reason == "tool_use"
        # The client never answers; it asks something else in the same container.
        messages[-1] = {"role": "user", "content": "what is x?"}
        moved_on = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools, container=container
        )
        result = moved_on.content[1].content
        assert result.stdout == "5\n", result.stderr
        assert moved_on.stop_reason == "end_turn"


class _TypingModel:
    """A backend that writes its answer in pieces and waits between them (a real Model)."""

    name = "typing"
    label = "typing test model"

    def __init__(self) -> None:
        self.go_on = asyncio.Event()

    async def generate(self, request: Any, *, on_text: Any = None) -> Any:
        from openptc.models.base import ModelResponse, TextBlock

        if on_text is not None:
            on_text("Hello, ")
            await asyncio.wait_for(self.go_on.wait(), 10)  # until the client saw the first piece
            on_text("world.")
        return ModelResponse((TextBlock("Hello, world."),), "end_turn", None, self.name)


async def test_streaming_passes_the_backends_text_on_as_it_is_written() -> None:
    backend = _TypingModel()
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:  # type: ignore[dict-item]
        client = proxy.client()
        pieces = []
        async with client.messages.stream(
            model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            async for event in stream:
                if event.type == "text":
                    pieces.append(event.text)
                    backend.go_on.set()  # the model only finishes after this piece arrived
            final = await stream.get_final_message()
        plain = await client.messages.create(
            model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert pieces == ["Hello, ", "world."]
    assert [b.text for b in final.content] == ["Hello, world."]
    assert [b.text for b in plain.content] == ["Hello, world."]


async def test_tool_choice_reaches_the_backend() -> None:
    from openptc.models import ToolChoice

    backend = scripted("no tool needed", "still none")
    lookup = {
        "name": "lookup",
        "description": "Look something up.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        ask = [{"role": "user", "content": "hi"}]
        await client.messages.create(
            model="m",
            max_tokens=64,
            messages=ask,
            tools=[CODE_TOOL, lookup],
            tool_choice={"type": "tool", "name": "lookup"},
        )
        await client.messages.create(
            model="m",
            max_tokens=64,
            messages=ask,
            tools=[CODE_TOOL, lookup],
            tool_choice={"type": "any"},
        )
    assert [r.tool_choice for r in backend.requests] == [
        ToolChoice("tool", "lookup"),
        ToolChoice("any"),
    ]
