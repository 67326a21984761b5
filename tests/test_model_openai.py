"""The OpenAI adapters through the real ``openai`` client against a wire-faithful fake server.

Nothing in the SDK is patched: the client speaks HTTP to ``fakes.openai_server`` on 127.0.0.1,
behind which a scripted brain plays the model. Both APIs (Chat Completions and Responses) run
the same scenarios.
"""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from fakes.harness import Fault, closed_port_url
from fakes.openai_client import FAST, KEY, fake
from fakes.openai_server import BrokenStream, error_body
from openptc.agent import Agent, RunResult
from openptc.models import (
    Block,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Turn,
    model_from_string,
)
from openptc.models.errors import (
    ModelAuthError,
    ModelBadRequest,
    ModelConnectionError,
    ModelError,
    ModelRateLimited,
    ModelServerError,
)
from openptc.models.openai_chat import OpenAIChatModel
from openptc.models.openai_responses import OpenAIResponsesModel
from openptc.models.retry import RetryPolicy
from openptc.prompts import CODE_TOOL_NAME, Mode, system_prompt
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import brains, expense

APIS = ["chat", "responses"]
PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}
DIRECT_TOOLS = ("get_team_members", "get_expenses", "get_custom_budget")
LOOKUP = ToolSpec("lookup", "Look a thing up.", {"type": "object", "properties": {}})


def _request(*messages: Message) -> ModelRequest:
    return ModelRequest("Be brief.", messages or (Message.user("hi"),), (LOOKUP,), 256)


async def _audit(model: Model, mode: Mode, sandbox: LocalSandbox, **kw: Any) -> RunResult:
    agent = Agent(model, expense.make_tools(), sandbox, mode=mode, max_turns=80)
    return await agent.run(expense.QUESTION, **kw)


def _tools_on_the_wire(api: str, body: dict[str, Any]) -> list[str]:
    if api == "chat":
        assert all(t["type"] == "function" for t in body["tools"])
        return [t["function"]["name"] for t in body["tools"]]
    assert all(t["type"] == "function" and t["strict"] is False for t in body["tools"])
    return [t["name"] for t in body["tools"]]


def _calls_and_results(api: str, body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Call ids the request's assistant turns made, and call ids its tool results answer."""
    if api == "chat":
        calls = [c["id"] for m in body["messages"] for c in m.get("tool_calls") or []]
        results = [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
    else:
        calls = [i["call_id"] for i in body["input"] if i["type"] == "function_call"]
        results = [i["call_id"] for i in body["input"] if i["type"] == "function_call_output"]
    return calls, results


# --- the whole expense audit ------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("mode", ["ptc", "direct"])
async def test_expense_audit_end_to_end(api: str, mode: Mode, sandbox: LocalSandbox) -> None:
    async with fake() as server:
        result = await _audit(server.model(api), mode, sandbox)

    assert result.stop == "answered"
    assert expense.is_correct(result.answer), result.answer
    assert result.usage.tokens_counted == "provider"
    assert "gpt-4.1" in result.model_label and "scripted" not in result.model_label
    team = len(expense.default_data().team("engineering"))
    assert result.usage.model_calls == (2 if mode == "ptc" else 2 + 2 * team)

    # Usage is the provider's, each token once: cached prompt tokens are inside prompt_tokens.
    served = server.served
    assert result.usage.input_tokens == sum(s["prompt"] for s in served)
    assert result.usage.output_tokens == sum(s["completion"] for s in served)
    assert served[0]["cached"] == 0 and all(s["cached"] > 0 for s in served[1:])

    # What went over the wire.
    assert {path for path, _, _ in server.recorder.requests} == {PATHS[api]}
    assert all(h["authorization"] == f"Bearer {KEY}" for _, h, _ in server.recorder.requests)
    first, last = server.bodies[0], server.bodies[-1]
    offered = _tools_on_the_wire(api, first)
    expected = [CODE_TOOL_NAME] if mode == "ptc" else list(DIRECT_TOOLS)
    assert offered == expected
    calls, results = _calls_and_results(api, last)
    assert len(calls) == result.usage.model_calls - 1 and calls == results
    keys = {body["prompt_cache_key"] for body in server.bodies}  # one run, one cache route
    assert len(keys) == 1 and keys.pop().startswith("openptc-")
    assert all(c.startswith("call_") for c in calls)
    if api == "chat":
        assert first["messages"][:2] == [
            {"role": "system", "content": system_prompt(mode)},
            {"role": "user", "content": expense.QUESTION},
        ]
        assert first["max_completion_tokens"] == 4096 and "max_tokens" not in first
    else:
        assert first["instructions"] == system_prompt(mode)
        assert first["input"] == [{"type": "message", "role": "user", "content": expense.QUESTION}]
        assert first["store"] is False and first["max_output_tokens"] == 4096


@pytest.mark.parametrize("api", APIS)
async def test_streaming_hands_over_the_answer_in_pieces_and_changes_nothing(
    api: str, sandbox: LocalSandbox
) -> None:
    pieces: list[str] = []
    async with fake() as server:
        streamed = await _audit(server.model(api), "ptc", sandbox, on_text=pieces.append)
        bodies = server.bodies
    async with fake() as server:
        plain = await _audit(server.model(api), "ptc", sandbox)

    assert len(pieces) > 3 and "".join(pieces) == streamed.answer
    assert streamed.answer == plain.answer and expense.is_correct(streamed.answer)
    assert streamed.transcript == plain.transcript  # same blocks, same call ids
    assert streamed.usage.input_tokens == plain.usage.input_tokens
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    assert streamed.usage.tokens_counted == "provider"
    assert all(b["stream"] is True for b in bodies)
    if api == "chat":
        assert all(b["stream_options"] == {"include_usage": True} for b in bodies)


@pytest.mark.parametrize("api", APIS)
async def test_streamed_tool_calls_are_assembled_exactly(api: str) -> None:
    arguments = {"query": "travel " * 30, "limit": 5}
    turn: list[Block] = [
        TextBlock("Looking that up now."),
        ToolUseBlock("t1", "lookup", arguments),
        ToolUseBlock("t2", "lookup", {}),
    ]
    responses: list[ModelResponse] = []
    pieces: list[str] = []
    for on_text in (None, pieces.append):
        async with fake(lambda _r: turn) as server:
            responses.append(await server.model(api).generate(_request(), on_text=on_text))

    plain, streamed = responses
    assert streamed == plain
    assert plain.stop_reason == "tool_use" and plain.text == "Looking that up now."
    assert [u.input for u in plain.tool_uses] == [arguments, {}]
    assert pieces == ["Looking", " that", " up", " now."]
    assert plain.usage is not None and plain.usage.output_tokens > 0


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("streaming", [False, True])
async def test_usage_splits_cached_tokens_out_of_the_prompt(api: str, streaming: bool) -> None:
    async with fake(lambda _r: "twice") as server:
        model = server.model(api)
        sink = (lambda _t: None) if streaming else None
        first = await model.generate(_request(), on_text=sink)
        second = await model.generate(_request(), on_text=sink)
        served = server.served

    assert served[1]["cached"] > 0  # the fake saw this system prompt and these tools before
    assert first.usage == ModelUsage(served[0]["prompt"], served[0]["completion"])
    uncached = served[1]["prompt"] - served[1]["cached"]
    assert second.usage == ModelUsage(uncached, served[1]["completion"], served[1]["cached"])


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stop", ["max_tokens", "refusal"])
async def test_stop_reasons_are_mapped(api: str, stop: StopReason) -> None:
    turn = ModelResponse((TextBlock("cut sh"),), stop, None, "")
    for on_text in (None, lambda _t: None):
        async with fake(lambda _r: turn) as server:
            response = await server.model(api).generate(_request(), on_text=on_text)
        assert response.stop_reason == stop and response.text == "cut sh"


# --- errors through the real client -----------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("streaming", [False, True])
async def test_rate_limit_is_retried_honouring_retry_after(api: str, streaming: bool) -> None:
    body = error_body("Rate limit reached for gpt-4.1 on tokens per min.", "tokens", None)
    pieces: list[str] = []
    async with fake(lambda _r: "fine") as server:
        server.recorder.faults.append(Fault(429, body, {"retry-after": "0"}))
        slow_backoff = RetryPolicy(attempts=2, base_delay_s=30)  # only Retry-After keeps it fast
        started = time.perf_counter()
        model = server.model(api, retry=slow_backoff)
        response = await model.generate(_request(), on_text=pieces.append if streaming else None)

    assert response.text == "fine" and pieces == (["fine"] if streaming else [])
    assert time.perf_counter() - started < 5
    assert len(server.recorder.requests) == 2


@pytest.mark.parametrize("api", APIS)
async def test_sdk_retries_are_off_and_retry_after_ms_is_read(api: str) -> None:
    body = error_body("Rate limit reached.", "requests", None, "rate_limit_exceeded")
    async with fake(lambda _r: "fine") as server:
        server.recorder.faults += [Fault(429, body, {"retry-after-ms": "250"})] * 3
        with pytest.raises(ModelRateLimited) as raised:
            await server.model(api, retry=RetryPolicy(attempts=1)).generate(_request())

    assert raised.value.retry_after_s == 0.25
    assert "Rate limit reached." in str(raised.value)
    assert len(server.recorder.requests) == 1  # the SDK's own retries would have made 3


@pytest.mark.parametrize("api", APIS)
async def test_exhausted_quota_is_not_retried(api: str) -> None:
    said = "You exceeded your current quota, please check your plan and billing details."
    body = error_body(said, "insufficient_quota", None, "insufficient_quota")
    async with fake(lambda _r: "never") as server:
        server.recorder.faults += [Fault(429, body)] * 3
        with pytest.raises(ModelError, match="exceeded your current quota") as raised:
            await server.model(api).generate(_request())

    assert not raised.value.retryable and raised.value.status == 429
    assert len(server.recorder.requests) == 1


@pytest.mark.parametrize("api", APIS)
async def test_wrong_key_fails_at_once_saying_what_to_set(api: str) -> None:
    async with fake(lambda _r: "never") as server:
        with pytest.raises(ModelAuthError) as raised:
            await server.model(api, key="sk-wrong-key-1234").generate(_request())

    message = str(raised.value)
    assert "OPENAI_API_KEY" in message and "Incorrect API key provided" in message
    assert "sk-wrong-key-1234" not in message  # the server masks it; we never add it
    assert raised.value.status == 401
    assert len(server.recorder.requests) == 1


@pytest.mark.parametrize("api", APIS)
async def test_bad_request_surfaces_the_providers_message(api: str) -> None:
    said = "Invalid 'max_output_tokens': integer above maximum value. Expected <= 32768."
    body = error_body(said, "invalid_request_error", "max_output_tokens", "integer_above_max")
    async with fake(lambda _r: "never") as server:
        server.recorder.faults.append(Fault(400, body))
        with pytest.raises(ModelBadRequest) as raised:
            await server.model(api).generate(_request())

    assert said in str(raised.value) and raised.value.status == 400
    assert len(server.recorder.requests) == 1


@pytest.mark.parametrize("api", APIS)
async def test_a_result_without_its_call_is_rejected_by_the_server(api: str) -> None:
    orphan = Message.tool_results([ToolResultBlock("call_nowhere", "42")])
    async with fake(lambda _r: "never") as server:
        with pytest.raises(ModelBadRequest) as raised:
            await server.model(api).generate(_request(Message.user("hi"), orphan))

    expected = "must be a response to a preceeding" if api == "chat" else "No tool call found"
    assert expected in str(raised.value)
    assert len(server.recorder.requests) == 1


@pytest.mark.parametrize("api", APIS)
async def test_connection_refused_names_the_url(api: str) -> None:
    url = closed_port_url()
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY)
    kind = OpenAIChatModel if api == "chat" else OpenAIResponsesModel
    model = kind("gpt-4.1", client=client, retry=FAST)

    async with client:
        with pytest.raises(ModelConnectionError, match=url):
            await model.generate(_request())


async def test_a_password_in_the_base_url_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    host = closed_port_url().removeprefix("http://")
    for spec in (
        f"openai-compatible:m@http://user:s3cr3t@{host}/v1",
        f"openai-responses:m@http://user:s3cr3t@{host}/v1",
    ):
        model = model_from_string(spec)
        assert isinstance(model, OpenAIChatModel | OpenAIResponsesModel)
        with pytest.raises(ModelConnectionError) as raised:
            await model.generate(_request())
        await model.aclose()
        for shown in (model.name, model.label, repr(model), str(raised.value)):
            assert "s3cr3t" not in shown
        assert f"user:***@{host}" in model.label and f"user:***@{host}" in str(raised.value)
        assert f"user:***@{host}" in model.name


@pytest.mark.parametrize("api", APIS)
async def test_server_errors_are_retried_then_given_up(api: str) -> None:
    body = error_body("The server had an error while processing your request.", "server_error")
    async with fake(lambda _r: "recovered") as server:
        server.recorder.faults.append(Fault(500, body))
        assert (await server.model(api).generate(_request())).text == "recovered"
        assert len(server.recorder.requests) == 2

        server.recorder.faults += [Fault(503, body)] * 3
        with pytest.raises(ModelServerError, match="had an error") as raised:
            await server.model(api).generate(_request())
    assert raised.value.status == 503
    assert len(server.recorder.requests) == 2 + FAST.attempts


@pytest.mark.parametrize("api", APIS)
async def test_an_error_after_streamed_text_is_not_retried(api: str) -> None:
    body = error_body("The server had an error while processing your request.", "server_error")
    pieces: list[str] = []
    async with fake(lambda _r: "never") as server:
        server.recorder.faults += [BrokenStream(200, body, api=api, text="Part")] * 3
        with pytest.raises(ModelServerError, match="had an error") as raised:
            await server.model(api).generate(_request(), on_text=pieces.append)

    assert pieces == ["Part"]  # shown once: a retry would have shown it again
    assert len(server.recorder.requests) == 1
    assert not raised.value.retryable


@pytest.mark.parametrize("api", APIS)
async def test_a_stream_cut_short_is_an_error_not_an_answer(api: str) -> None:
    pieces: list[str] = []
    async with fake(lambda _r: "recovered") as server:
        # Before any text: retried, and the retry's answer is the one shown.
        server.recorder.faults.append(BrokenStream(200, {}, api=api))
        response = await server.model(api).generate(_request(), on_text=pieces.append)
        assert response.text == "".join(pieces) == "recovered"
        assert response.stop_reason == "end_turn"
        assert len(server.recorder.requests) == 2

        # After text: the partial text is not passed off as a finished answer, nor repeated.
        pieces.clear()
        server.recorder.faults += [BrokenStream(200, {}, api=api, text="Par")] * 3
        with pytest.raises(ModelServerError, match="stream ended before") as raised:
            await server.model(api).generate(_request(), on_text=pieces.append)
    assert pieces == ["Par"] and len(server.recorder.requests) == 3
    assert not raised.value.retryable


BROKEN = '{"code": "print(1)'  # cut off mid-string, as a truncated model reply is


def _malformed_first(request: ModelRequest) -> Turn:
    """Turn 1: a code call whose arguments are not JSON. After the error, the normal audit,
    shown the conversation without the broken exchange so that it starts afresh."""
    if not any(m.tool_uses for m in request.messages):
        return [ToolUseBlock("bad", CODE_TOOL_NAME, {}, raw_input=BROKEN)]
    error = request.messages[2].results[0].content
    assert "not a valid JSON object" in error  # the model is told what was wrong
    rest = (request.messages[0], *request.messages[3:])
    return brains.expense_audit_brain(ModelRequest(request.system, rest, request.tools))


@pytest.mark.parametrize("api", APIS)
async def test_malformed_tool_arguments_are_fed_back_and_the_run_continues(
    api: str, sandbox: LocalSandbox
) -> None:
    async with fake(_malformed_first) as server:
        result = await _audit(server.model(api), "ptc", sandbox)

    assert expense.is_correct(result.answer), result.answer
    assert result.usage.model_calls == 3 and result.programs == (expense.REFERENCE_PROGRAM,)
    bad = result.transcript[1].tool_uses[0]
    assert bad.raw_input == BROKEN and bad.input_error and "invalid JSON" in bad.input_error
    # Later requests re-send the broken arguments verbatim and answer them with an error.
    second = server.bodies[1]
    if api == "chat":
        call = second["messages"][2]["tool_calls"][0]
        assert call["function"]["arguments"] == BROKEN
        answer = second["messages"][3]
        assert answer["tool_call_id"] == call["id"] and answer["content"].startswith("Error: ")
    else:
        call, answer = second["input"][1], second["input"][2]
        assert call["type"] == "function_call" and call["arguments"] == BROKEN
        assert answer["call_id"] == call["call_id"] and answer["output"].startswith("Error: ")


@pytest.mark.parametrize("api", APIS)
async def test_arguments_that_are_not_an_object_are_reported(api: str) -> None:
    turn = [ToolUseBlock("t1", "lookup", {}, raw_input="[1, 2]")]
    async with fake(lambda _r: turn) as server:
        use = (await server.model(api).generate(_request())).tool_uses[0]

    assert use.input == {} and use.raw_input == "[1, 2]"
    assert use.input_error == "the arguments are an array, not a JSON object"


# --- local servers and model strings ------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["vllm", "openai-compatible", "ollama"])
async def test_local_servers_need_no_openai_key(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with fake(lambda _r: "local answer", api_key="not-needed") as server:
        model = model_from_string(f"{prefix}:qwen3:8b@{server.url}")
        assert isinstance(model, OpenAIChatModel)
        response = await model.generate(_request())
        await model.aclose()

    assert response.text == "local answer" and response.usage is not None
    assert server.url in model.label and "qwen3:8b" in model.label
    body = server.bodies[0]
    assert body["model"] == "qwen3:8b"
    assert body["max_tokens"] == 256 and "max_completion_tokens" not in body  # older servers
    assert server.recorder.requests[0][1]["authorization"] == "Bearer not-needed"


def test_openai_without_a_key_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for spec in ("openai:gpt-4.1", "openai-responses:gpt-4.1"):
        with pytest.raises(ModelAuthError, match="OPENAI_API_KEY"):
            model_from_string(spec)


def test_names_and_labels_say_what_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    chat = model_from_string("openai:gpt-4.1")
    responses = model_from_string("openai-responses:gpt-4.1")
    local = model_from_string("llamacpp:qwen3")

    assert (chat.name, chat.label) == ("openai:gpt-4.1", "OpenAI gpt-4.1 (Chat Completions)")
    assert responses.name == "openai-responses:gpt-4.1"
    assert responses.label == "OpenAI gpt-4.1 (Responses API)"
    proxied = model_from_string("openai:gpt-4.1@https://proxy.example/v1")
    for model in (chat, responses, local, proxied):
        assert model_from_string(model.name).name == model.name  # the name resolves back
    assert local.name == "openai-compatible:qwen3@http://127.0.0.1:8080/v1"
    assert local.label == (
        "qwen3 at http://127.0.0.1:8080/v1 (OpenAI-compatible server, Chat Completions)"
    )
    assert proxied.label == "gpt-4.1 at https://proxy.example/v1 (Chat Completions)"
