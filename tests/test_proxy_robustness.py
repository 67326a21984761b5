"""The proxy keeps a container's state through timeouts, retries, rebuilds, other keys' requests
and clients that leave mid-stream; its logs hold no tool inputs."""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx
import pytest
import uvicorn

from fakes.proxy_setup import (
    CODE_TOOL,
    KEY_A,
    KEY_B,
    Proxy,
    answer_calls,
    code_turn,
    config,
    expense_tools,
    running_proxy,
    scripted,
)
from openptc.models.base import (
    Model,
    ModelRequest,
    TextBlock,
    ToolUseBlock,
)
from openptc.models.scripted import ScriptedModel, Turn
from openptc.proxy.app import create_app
from openptc.proxy.config import ProxyConfig
from openptc.proxy.store import MemoryStore, RecordStore
from openptc.sandbox.local import LocalSandbox

HEADERS = {"x-api-key": KEY_A, "anthropic-version": "2023-06-01"}


def _by_first_user_text(table: dict[str, list[Turn]]) -> ScriptedModel:
    """A backend whose answers depend on the conversation's first user text (one script per
    conversation, so concurrent requests each follow their own)."""
    positions = {name: 0 for name in table}

    def policy(request: ModelRequest) -> Turn:
        first = request.messages[0]
        text = next(b.text for b in first.content if isinstance(b, TextBlock))
        turns = table[text]
        index = positions[text]
        positions[text] += 1
        turn = turns[index]
        if isinstance(turn, Exception):
            raise turn
        return turn

    return ScriptedModel(policy, name="scripted:review", about="review")


@asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    """Like ``fakes.harness.serve``, but a request wedged inside the proxy cannot hang the
    test's teardown (uvicorn otherwise waits for it forever)."""
    settings = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(settings)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def _proxy_with_sandbox(
    settings: ProxyConfig, model: Model, store: RecordStore | None = None
) -> AsyncIterator[tuple[Proxy, LocalSandbox]]:
    """A proxy whose sandbox the test can inspect (open sessions = live interpreters)."""
    sandbox = LocalSandbox(pool_size=0)
    app = create_app(settings, store=store, sandbox=sandbox, model_for=lambda spec: model)
    try:
        async with _serve(app) as url:
            yield Proxy(url), sandbox
    finally:
        await sandbox.aclose()


def _open_sessions(sandbox: LocalSandbox) -> int:
    return len(sandbox._sessions)


async def _live_containers(proxy: Proxy) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{proxy.url}/health")).json()["containers"])


# -- 1. a backend that keeps sending bad code input loops forever in one request -----------------
async def test_bad_code_input_counts_toward_the_run_limit() -> None:
    calls = 0

    def policy(request: ModelRequest) -> Turn:
        nonlocal calls
        calls += 1
        if calls > 20:  # a safety stop for the test: the proxy itself should stop far earlier
            raise RuntimeError("the proxy kept calling the backend")
        return [ToolUseBlock(id=f"toolu_bad{calls}", name="code_execution", input={"prog": 1})]

    backend = ScriptedModel(policy, name="scripted:review", about="review")
    settings = config(max_code_runs_per_request=2)
    async with running_proxy(settings, {"scripted:expense-audit": backend}) as proxy:
        response = await proxy.client().messages.create(
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "go"}],
            tools=[CODE_TOOL],
        )
    assert response.stop_reason == "pause_turn"
    assert calls <= 3


# -- 2. a call that timed out, then a new call: the client can never resume ----------------------
TIMEOUT_THEN_ANOTHER_CALL = """\
try:
    await get_team_members({"department": "sales"})
except TimeoutError:
    print("first call timed out")
print(await get_team_members({"department": "engineering"}))
"""


async def test_late_answer_after_a_timeout_gets_the_calls_the_program_made_since() -> None:
    backend = scripted(code_turn(1, TIMEOUT_THEN_ANOTHER_CALL), "done")
    settings = config(tool_result_timeout_s=0.3)
    async with running_proxy(settings, {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        tools = [CODE_TOOL, *expense_tools()]
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        first = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        assert first.stop_reason == "tool_use"
        await asyncio.sleep(1.0)  # past the deadline: the program went on and made a new call
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": await answer_calls(first.content)},
        ]
        # The client answers what it was asked; it was never shown the program's second call,
        # so it cannot answer that one. Today: 400 naming an id the client never received.
        late = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=messages,
            tools=tools,
            container=first.container.id,
        )
        assert late.stop_reason == "tool_use"
        asked = [b for b in late.content if b.type == "tool_use"]
        assert [b.input for b in asked] == [{"department": "engineering"}]


# -- 2b. the same with no timeout: a program that issues a call while the client is away ---------
CALL_AFTER_A_PAUSE = """\
first = asyncio.ensure_future(get_team_members({"department": "sales"}))
await asyncio.sleep(0.2)  # the program waits (the response goes out), then carries on
second = asyncio.ensure_future(get_team_members({"department": "engineering"}))
print(len(await first), len(await second))
"""


async def test_a_call_made_after_the_response_went_out_is_asked_for_not_demanded() -> None:
    backend = scripted(code_turn(1, CALL_AFTER_A_PAUSE), "done")
    async with running_proxy(config(), {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        tools = [CODE_TOOL, *expense_tools()]
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        first = await client.messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        assert [b.input for b in first.content if b.type == "tool_use"] == [{"department": "sales"}]
        await asyncio.sleep(0.6)  # the client takes a moment; the program issued its second call
        messages += [
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": await answer_calls(first.content)},
        ]
        # Today: 400 "`tool_use` ids were found without `tool_result` blocks" naming the second
        # call, which no response ever showed the client: the program can never be resumed.
        second = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=messages,
            tools=tools,
            container=first.container.id,
        )
        assert second.stop_reason == "tool_use"
        assert [b.input for b in second.content if b.type == "tool_use"] == [
            {"department": "engineering"}
        ]


# -- 3. a request waiting for a container's lock while the holder fails ---------------------------
async def test_a_request_queued_behind_a_failing_one_keeps_the_containers_state() -> None:
    from openptc.models.base import ModelError

    backend = _by_first_user_text(
        {
            "setup": [code_turn(1, "x = 41\nprint('set')"), "x is set"],
            "slow then fail": [
                code_turn(2, "await asyncio.sleep(1.0)\nprint('slept')"),
                ModelError("the backend went away"),  # type: ignore[list-item]
            ],
            "read x": [code_turn(3, "print(x + 1)"), "done"],
        }
    )
    async with _proxy_with_sandbox(config(), backend) as (proxy, sandbox):
        client = proxy.client()

        async def ask(text: str, container: str | None = None) -> Any:
            extra = {"container": container} if container else {}
            return await client.messages.create(
                model="m",
                max_tokens=64,
                messages=[{"role": "user", "content": text}],
                tools=[CODE_TOOL],
                **extra,
            )

        setup = await ask("setup")
        container = setup.container.id
        failing = asyncio.create_task(ask("slow then fail", container))
        await asyncio.sleep(0.4)  # the failing request holds the container's lock now
        queued = asyncio.create_task(ask("read x", container))
        with pytest.raises(anthropic.InternalServerError):  # 502 from the backend
            await failing
        read = await queued
        result = read.content[1].content
        sessions, live = _open_sessions(sandbox), await _live_containers(proxy)
    # The queued request ran on the container object the failed one had just discarded: a fresh
    # interpreter without the variables the record holds, and one tracked by no live container
    # (the reaper never closes it).
    assert (result.stdout, sessions) == ("42\n", live), result.stderr


# -- 4. another key naming a container evicts it from this replica without closing it ------------
async def test_another_keys_request_does_not_disturb_the_container() -> None:
    backend = _by_first_user_text(
        {
            "setup": [code_turn(1, "import random\ntoken = random.random()\nprint(token)"), "ok"],
            "read": [code_turn(2, "print(token)"), "done"],
            "probe": ["never reached"],
        }
    )
    async with _proxy_with_sandbox(config(), backend) as (proxy, sandbox):

        async def ask(key: str, text: str, container: str) -> Any:
            return await proxy.client(key).messages.create(
                model="m",
                max_tokens=64,
                messages=[{"role": "user", "content": text}],
                tools=[CODE_TOOL],
                **({"container": container} if container else {}),
            )

        setup = await ask(KEY_A, "setup", "")
        container = setup.container.id
        token = setup.content[1].content.stdout
        with pytest.raises(anthropic.NotFoundError):
            await ask(KEY_B, "probe", container)  # another key: a 404, as it should be...
        read = await ask(KEY_A, "read", container)
        sessions, live = _open_sessions(sandbox), await _live_containers(proxy)
    # ...but the probe dropped the owner's live interpreter from this replica without closing
    # it: the owner's next request rebuilt the container by re-running its programs (new random
    # value), and the old interpreter is left running, tracked by nothing.
    assert (read.content[1].content.stdout, sessions) == (token, live)


# -- 5. a streaming client that disconnects mid-program ------------------------------------------
async def test_a_client_leaving_a_stream_mid_program_does_not_wedge_the_container() -> None:
    backend = _by_first_user_text(
        {
            "setup": [code_turn(1, "x = 41\nprint('set')"), "x is set"],
            "slow": [code_turn(2, "await asyncio.sleep(1.5)\nprint('slow')"), "slow done"],
            "read x": [code_turn(3, "print(x + 1)"), "done"],
        }
    )
    async with _proxy_with_sandbox(config(), backend) as (proxy, sandbox):
        client = proxy.client()
        setup = await client.messages.create(
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "setup"}],
            tools=[CODE_TOOL],
        )
        container = setup.container.id
        body = {
            "model": "m",
            "max_tokens": 64,
            "stream": True,
            "container": container,
            "messages": [{"role": "user", "content": "slow"}],
            "tools": [CODE_TOOL],
        }
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("POST", f"{proxy.url}/v1/messages", json=body, headers=HEADERS) as response,
        ):
            async for line in response.aiter_lines():
                if "server_tool_use" in line:
                    break  # the client goes away while the program runs
        await asyncio.sleep(2.5)  # the program has finished by now
        read = await asyncio.wait_for(
            client.messages.create(
                model="m",
                max_tokens=64,
                messages=[{"role": "user", "content": "read x"}],
                tools=[CODE_TOOL],
                container=container,
            ),
            timeout=15,
        )
        sessions, live = _open_sessions(sandbox), await _live_containers(proxy)
    assert (read.content[1].content.stdout, sessions) == ("42\n", live)


# -- 6. a late answer to a timed-out call is recorded as if the program had received it ----------
TIMEOUT_IS_HANDLED = """\
try:
    v = await get_team_members({"department": "sales"})
except TimeoutError:
    v = "timed out"
print(v)
"""


async def test_a_rebuild_does_not_feed_a_program_an_answer_it_never_received() -> None:
    backend = scripted(code_turn(1, TIMEOUT_IS_HANDLED), "done", code_turn(2, "print(v)"), "ok")
    settings = config(tool_result_timeout_s=0.3)
    store = MemoryStore()
    models = {"scripted:expense-audit": backend}
    tools = [CODE_TOOL, *expense_tools()]
    async with (
        running_proxy(settings, models, store=store) as first,
        running_proxy(settings, models, store=store) as second,
    ):
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        paused = await first.client().messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        container = paused.container.id
        await asyncio.sleep(1.0)  # the call times out; the program carries on with its default
        call = next(b for b in paused.content if b.type == "tool_use")
        messages += [
            {"role": "assistant", "content": paused.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "LATE"}],
            },
        ]
        done = await first.client().messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools, container=container
        )
        assert done.content[0].content.stdout == "timed out\n"
        messages += [
            {"role": "assistant", "content": done.content},
            {"role": "user", "content": "what is v?"},
        ]
        # Another replica rebuilds the container from the record, which now says the call
        # returned "LATE": the re-run takes the other branch and v silently changes.
        again = await second.client().messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools, container=container
        )
    result = again.content[1].content
    assert result.stdout != "LATE\n", "the rebuilt interpreter holds a value the program never had"


# -- 7. a diverging re-run writes the program's tool inputs into the logs ------------------------
SECRET_INPUT = """\
import os
token = "secret-" + os.urandom(8).hex()
print(await get_team_members({"department": token}))
"""


async def test_divergence_logs_hold_no_tool_inputs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="openptc.proxy")
    backend = scripted(code_turn(1, SECRET_INPUT), "unreachable")
    store = MemoryStore()
    models = {"scripted:expense-audit": backend}
    tools = [CODE_TOOL, *expense_tools()]
    async with (
        running_proxy(config(), models, store=store) as first,
        running_proxy(config(), models, store=store) as second,
    ):
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        paused = await first.client().messages.create(
            model="m", max_tokens=512, messages=messages, tools=tools
        )
        call = next(b for b in paused.content if b.type == "tool_use")
        messages += [
            {"role": "assistant", "content": paused.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "[]"}],
            },
        ]
        resumed = await second.client().messages.create(
            model="m",
            max_tokens=512,
            messages=messages,
            tools=tools,
            container=paused.container.id,
        )
    assert resumed.content[0].content.return_code == 1  # diverged, as it should
    from openptc.logs import JsonFormatter

    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "openptc.proxy"]
    leaked = [line for line in lines if "secret-" in line]
    assert not leaked, leaked


# -- 8. a tool name that is not a Python identifier is accepted but cannot be called -------------
async def test_a_code_callable_tool_with_a_hyphen_is_refused_or_callable() -> None:
    backend = scripted("ok")
    weather = {
        "name": "get-weather",  # a valid Anthropic tool name
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        "allowed_callers": ["code_execution_20260120"],
    }
    body = {
        "model": "m",
        "max_tokens": 64,
        "tools": [CODE_TOOL, weather],
        "messages": [{"role": "user", "content": "weather in Oslo?"}],
    }
    async with (
        running_proxy(config(), {"scripted:expense-audit": backend}) as proxy,
        httpx.AsyncClient(timeout=30) as http,
    ):
        response = await http.post(f"{proxy.url}/v1/messages", json=body, headers=HEADERS)
    if response.status_code == 400:
        return  # refused up front, naming the tool: fine
    assert response.status_code == 200, response.text
    description = backend.requests[0].tools[0].description
    stubs = re.search(r"```python\n(.*?)```", description, re.S)
    assert stubs is not None
    ast.parse(stubs.group(1))  # the model is shown `async def get-weather(...)`: not Python


# -- 9. a request that runs longer than container_idle_s loses its container ---------------------
async def test_a_request_longer_than_the_idle_time_keeps_its_container() -> None:
    backend = scripted(
        code_turn(1, "x = 41\nawait asyncio.sleep(2)\nprint('slept')"),
        "done",
        code_turn(2, "print(x + 1)"),
        "ok",
    )
    settings = config(container_idle_s=1.0)
    async with running_proxy(settings, {"scripted:expense-audit": backend}) as proxy:
        client = proxy.client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": "sleep"}]
        # The container is busy the whole time, never idle; today: 409 conflict_error, because
        # its record expired in the store mid-request and the final save finds nothing.
        slow = await client.messages.create(
            model="m", max_tokens=64, messages=messages, tools=[CODE_TOOL]
        )
        assert slow.content[1].content.stdout == "slept\n"
        messages += [
            {"role": "assistant", "content": slow.content},
            {"role": "user", "content": "and x?"},
        ]
        after = await client.messages.create(
            model="m",
            max_tokens=64,
            messages=messages,
            tools=[CODE_TOOL],
            container=slow.container.id,
        )
        assert after.content[1].content.stdout == "42\n"


# -- 10. a request for a container another request is using stops that request's program --------
async def test_a_second_request_does_not_wedge_the_one_using_the_container() -> None:
    backend = _by_first_user_text(
        {
            "setup": [code_turn(1, "print('ready')"), "ready"],
            "slow": [code_turn(2, "await asyncio.sleep(3)\nprint('slept')"), "slow done"],
            "other": ["other done"],
        }
    )
    settings = config(container_idle_s=1.0)
    async with _proxy_with_sandbox(settings, backend) as (proxy, _sandbox):
        client = proxy.client()

        async def ask(text: str, container: str | None = None) -> Any:
            extra = {"container": container} if container else {}
            return await client.messages.create(
                model="m",
                max_tokens=64,
                messages=[{"role": "user", "content": text}],
                tools=[CODE_TOOL],
                **extra,
            )

        setup = await ask("setup")
        slow = asyncio.create_task(ask("slow", setup.container.id))
        await asyncio.sleep(1.5)  # the record has expired in the store; the container is busy
        # Today this second request gets a 404 (the record is gone) and, on the way, discards
        # the busy container: its program is cancelled, so the slow request waits for an event
        # that never comes. Both must end (well or with an error).
        other = asyncio.create_task(ask("other", setup.container.id))
        done, _ = await asyncio.wait({slow, other}, timeout=10)
        for task in done:
            task.exception()  # retrieved either way
        assert slow in done, "the request using the container never finished"


# -- 11. a resume that fails before the program starts leaves the answers recorded ---------------
class _FlakySandbox(LocalSandbox):
    """Fails to open the next session once (a sandbox server briefly unreachable, say)."""

    fail_next = False

    async def open_session(self) -> Any:
        if self.fail_next:
            self.fail_next = False
            from openptc.sandbox.base import SandboxError

            raise SandboxError("the sandbox is briefly unavailable")
        return await super().open_session()


async def test_a_resume_can_be_retried_after_a_sandbox_failure() -> None:
    program = 'print(len(json.loads(await get_team_members({"department": "sales"}))))'
    backend = scripted(code_turn(1, program), "done")
    store = MemoryStore()
    tools = [CODE_TOOL, *expense_tools()]
    flaky = _FlakySandbox(pool_size=0)
    app = create_app(config(), store=store, sandbox=flaky, model_for=lambda spec: backend)
    try:
        async with (
            running_proxy(config(), {"scripted:expense-audit": backend}, store=store) as first,
            _serve(app) as second_url,
        ):
            messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
            paused = await first.client().messages.create(
                model="m", max_tokens=512, messages=messages, tools=tools
            )
            messages += [
                {"role": "assistant", "content": paused.content},
                {"role": "user", "content": await answer_calls(paused.content)},
            ]
            second = Proxy(second_url).client()
            flaky.fail_next = True  # the replica rebuilding the container cannot start a session
            with pytest.raises(anthropic.InternalServerError):
                await second.messages.create(
                    model="m",
                    max_tokens=512,
                    messages=messages,
                    tools=tools,
                    container=paused.container.id,
                )
            # The client retries the same request. Today: 400 "unexpected `tool_use_id`", as the
            # failed attempt already wrote the answers into the live copy of the record.
            retried = await second.messages.create(
                model="m",
                max_tokens=512,
                messages=messages,
                tools=tools,
                container=paused.container.id,
            )
            assert retried.content[0].content.return_code == 0
    finally:
        await flaky.aclose()
