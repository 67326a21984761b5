"""The Anthropic adapter through the real ``anthropic`` SDK against the wire-faithful fake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import pytest_asyncio

from fakes import anthropic_fixture, harness
from fakes.anthropic_cache import TURN_OPENING
from fakes.anthropic_fixture import FAST, Fake
from fakes.anthropic_server import (
    FAKE_API_KEY,
    MidStreamFault,
    error_body,
    error_fault,
    parse_request,
)
from openptc.agent import Agent, RunResult
from openptc.models import (
    Message,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    count_request_tokens,
    model_from_string,
)
from openptc.models.anthropic import AnthropicModel
from openptc.models.errors import (
    ModelAuthError,
    ModelBadRequest,
    ModelConnectionError,
    ModelRateLimited,
    ModelServerError,
)
from openptc.models.retry import RetryPolicy
from openptc.models.scripted import Turn
from openptc.models.settings import ModelSettings
from openptc.prompts import CODE_TOOL_NAME, Mode, system_prompt
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import expense

# One event loop for the module, so one fake server serves every test (uvicorn takes ~0.2 s to
# stop); each test gets it cleared, with the brain it asks for.
pytestmark = pytest.mark.asyncio(loop_scope="module")
server, fake = anthropic_fixture.server, anthropic_fixture.fake  # the fixtures


@pytest_asyncio.fixture(loop_scope="module")
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(pool_size=1) as sb:
        yield sb


def _request(*messages: Message, tools: tuple[ToolSpec, ...] = ()) -> ModelRequest:
    return ModelRequest("Be brief.", messages or (Message.user("hi"),), tools, 1024)


def _lookup() -> ToolSpec:
    return ToolSpec("lookup", "Look a thing up.", {"type": "object", "properties": {}})


def _results(result: RunResult) -> list[ToolResultBlock]:
    return [r for m in result.transcript for r in m.results]


async def _audit(
    model: AnthropicModel,
    sandbox: LocalSandbox | None,
    mode: Mode = "ptc",
    settings: ModelSettings | None = None,
    **run: Any,
) -> RunResult:
    agent = Agent(model, expense.make_tools(), sandbox, mode=mode, max_turns=80, settings=settings)
    return await agent.run(expense.QUESTION, **run)


EPHEMERAL = {"type": "ephemeral"}


# --- the whole scenario -------------------------------------------------------------------


async def test_expense_audit_in_ptc_mode_with_provider_usage_and_wire_shape(
    fake: Fake, sandbox: LocalSandbox
) -> None:
    model = fake.model()
    result = await _audit(model, sandbox)

    assert expense.is_correct(result.answer), result.answer
    assert result.usage.model_calls == 2
    assert result.usage.tokens_counted == "provider"
    # The provider's numbers: what the fake counted for the requests it received.
    counted = sum(count_request_tokens(parse_request(b)) + TURN_OPENING for b in fake.bodies)
    assert result.usage.input_tokens == counted
    assert result.model_label == f"anthropic claude-x at {fake.url}"

    first, second = fake.bodies
    _, headers, _ = fake.recorder.requests[0]
    assert headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert "anthropic-version" in headers
    assert first["model"] == "claude-x" and first["max_tokens"] == 4096
    assert "stream" not in first and "anthropic-beta" not in headers
    assert not {"thinking", "temperature", "top_p", "top_k", "metadata"} & set(first)
    # Prompt caching is on by default: tools, system and the conversation so far are marked.
    assert first["system"] == [
        {"type": "text", "text": system_prompt("ptc"), "cache_control": EPHEMERAL}
    ]
    (tool,) = first["tools"]
    assert tool["name"] == CODE_TOOL_NAME and tool["input_schema"]["type"] == "object"
    assert "async def get_expenses(" in tool["description"]
    assert tool["cache_control"] == EPHEMERAL
    assert first["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": expense.QUESTION, "cache_control": EPHEMERAL}],
        }
    ]
    asked, called, answered = second["messages"]
    assert asked["content"] == [{"type": "text", "text": expense.QUESTION}]  # the mark moved on
    (use,) = called["content"]
    assert called["role"] == "assistant" and use["type"] == "tool_use"
    assert use["id"].startswith("toolu_") and use["name"] == CODE_TOOL_NAME
    assert use["input"] == {"code": expense.REFERENCE_PROGRAM}
    (result_block,) = answered["content"]
    assert answered["role"] == "user"
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == use["id"]
    assert result_block["content"] == result.executions[0].to_model_text()
    assert result_block["cache_control"] == EPHEMERAL
    assert "is_error" not in result_block


async def test_with_caching_off_nothing_is_marked_and_system_stays_a_string(
    fake: Fake, sandbox: LocalSandbox
) -> None:
    result = await _audit(fake.model(), sandbox, settings=ModelSettings(cache=False))

    assert expense.is_correct(result.answer)
    assert result.usage.cache_read_tokens == result.usage.cache_write_tokens == 0
    for body in fake.bodies:
        assert body["system"] == system_prompt("ptc")
        assert "cache_control" not in json.dumps(body)


async def test_expense_audit_in_direct_mode(fake: Fake) -> None:
    result = await _audit(fake.model(), None, mode="direct")

    members = len(expense.default_data().team("engineering"))
    assert expense.is_correct(result.answer), result.answer
    assert result.usage.model_calls == 2 + 2 * members  # team, expenses, budgets, answer
    assert result.usage.tool_calls == 1 + 2 * members
    assert result.usage.tokens_counted == "provider"
    first, last = fake.bodies[0], fake.bodies[-1]
    names = [t["name"] for t in first["tools"]]
    assert names == ["get_team_members", "get_expenses", "get_custom_budget"]
    # Every tool_result answers the tool_use of the turn just before it.
    turns = last["messages"]
    for called, answered in zip(turns[1::2], turns[2::2], strict=True):
        uses = [b["id"] for b in called["content"] if b["type"] == "tool_use"]
        results = [b["tool_use_id"] for b in answered["content"] if b["type"] == "tool_result"]
        assert uses == results and len(uses) == 1


async def test_streaming_hands_over_the_answer_in_pieces_and_changes_nothing_else(
    fake: Fake, sandbox: LocalSandbox
) -> None:
    pieces: list[str] = []
    streamed = await _audit(fake.model(), sandbox, on_text=pieces.append)
    plain = await _audit(fake.model(), sandbox)

    assert len(pieces) > 3
    assert "".join(pieces) == streamed.answer  # the first turn is a tool use: no text
    assert expense.is_correct(streamed.answer)
    assert streamed.answer == plain.answer
    assert streamed.transcript == plain.transcript
    assert streamed.usage.input_tokens == plain.usage.input_tokens
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    assert streamed.usage.tokens_counted == "provider"
    assert [b.get("stream") for b in fake.bodies] == [True, True, None, None]


async def test_a_streamed_turn_equals_the_same_turn_unstreamed(fake: Fake) -> None:
    turn: list[Any] = [
        TextBlock("Let me look that up for you, in two places at once."),
        ToolUseBlock("toolu_a", "lookup", {"q": "x", "n": [1, 2], "deep": {"k": "v" * 90}}),
        ToolUseBlock("toolu_b", "lookup", {}),
    ]
    fake.answer_with(lambda _request: turn)
    model = fake.model()
    request = _request(tools=(_lookup(),))
    pieces: list[str] = []
    streamed = await model.generate(request, on_text=pieces.append)
    plain = await model.generate(request)

    assert streamed == plain
    assert streamed.content == tuple(turn) and streamed.stop_reason == "tool_use"
    assert "".join(pieces) == turn[0].text and len(pieces) > 1
    assert streamed.usage is not None and streamed.usage.input_tokens > 0


# --- usage, stop reasons, odd content -------------------------------------------------------


def _wire_message(stop_reason: str, *content: dict[str, Any]) -> harness.Fault:
    """A 200 reply given verbatim, for replies no brain turn can express."""
    body = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-x-20990101",
        "content": list(content) or [{"type": "text", "text": "done"}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 7, "cache_read_input_tokens": None},
    }
    return harness.Fault(200, body)


@pytest.mark.parametrize(
    ("wire", "normalized"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "stop_sequence"),
        ("max_tokens", "max_tokens"),
        ("model_context_window_exceeded", "max_tokens"),
        ("pause_turn", "max_tokens"),
        ("refusal", "refusal"),
        ("a_future_reason", "end_turn"),
    ],
)
async def test_stop_reasons_are_normalized(fake: Fake, wire: str, normalized: str) -> None:
    fake.fail_next(_wire_message(wire))

    response = await fake.model().generate(_request())

    assert response.stop_reason == normalized
    assert response.model == "claude-x-20990101"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 7)
    assert response.usage.cache_read_tokens == 0


async def test_unknown_blocks_are_skipped_and_non_object_input_is_an_input_error(
    fake: Fake,
) -> None:
    fake.fail_next(
        _wire_message(
            "tool_use",
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": ["a", 1]},
            {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": '{"q": '},
        )
    )

    response = await fake.model().generate(_request(tools=(_lookup(),)))

    text, as_list, as_text = response.content
    assert text == TextBlock("Calling.") and response.stop_reason == "tool_use"
    assert isinstance(as_list, ToolUseBlock) and isinstance(as_text, ToolUseBlock)
    assert as_list.input == {} and as_list.raw_input == '["a", 1]'
    assert as_list.input_error == "the arguments are an array, not a JSON object"
    assert as_text.input == {} and as_text.raw_input == '{"q": '
    assert as_text.input_error is not None and "invalid JSON" in as_text.input_error


async def test_same_role_turns_are_merged_and_empty_text_dropped(fake: Fake) -> None:
    fake.answer_with(lambda request: f"{len(request.messages)} turns")
    use = ToolUseBlock("toolu_1", "lookup", {"q": "x"})
    request = _request(
        Message.user("first"),
        Message.user("second"),
        Message.assistant([TextBlock(""), use]),
        Message.assistant(""),
        Message.user("and now?"),
        Message.tool_results([ToolResultBlock("toolu_1", "found", is_error=True)]),
        tools=(_lookup(),),
    )

    response = await fake.model().generate(request)

    (body,) = fake.bodies

    assert response.text == "3 turns"  # the fake enforces alternation and non-empty text
    user, assistant, answer = body["messages"]
    assert [b["text"] for b in user["content"]] == ["first", "second"]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}
    ]
    assert answer["content"] == [  # tool results first, as the API requires
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found", "is_error": True},
        # The cache mark goes on the last block as sent, after the reordering.
        {"type": "text", "text": "and now?", "cache_control": {"type": "ephemeral"}},
    ]


# --- malformed tool input -----------------------------------------------------------------


def _malformed_then_reference(request: ModelRequest) -> Turn:
    """First a call whose arguments are broken JSON; after the error, the working program."""
    last = request.messages[-1]
    if not last.results:
        broken = '{"code": "print(1)'
        return [ToolUseBlock("toolu_bad", CODE_TOOL_NAME, raw_input=broken, input_error="-")]
    if last.results[-1].tool_use_id == "toolu_bad":
        return [ToolUseBlock("toolu_good", CODE_TOOL_NAME, {"code": expense.REFERENCE_PROGRAM})]
    return last.results[-1].content


@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_tool_input_is_fed_back_and_the_run_recovers(
    fake: Fake, sandbox: LocalSandbox, stream: bool
) -> None:
    fake.answer_with(_malformed_then_reference)
    on_text = (lambda _text: None) if stream else None

    result = await _audit(fake.model(), sandbox, on_text=on_text)

    bodies = fake.bodies

    assert expense.is_correct(result.answer), result.answer
    assert result.usage.model_calls == 3
    error, ok = _results(result)
    assert error.is_error and "not a valid JSON object" in error.content
    assert not ok.is_error
    (bad_use,) = result.transcript[1].tool_uses
    assert bad_use.raw_input == '{"code": "print(1)' and bad_use.input_error
    # Sent back as an empty object (the API takes only objects), answered by the error.
    _, called, answered = bodies[1]["messages"]
    assert called["content"][0]["input"] == {}
    assert answered["content"][0]["is_error"] is True
    assert "not a valid JSON object" in answered["content"][0]["content"]


# --- errors -------------------------------------------------------------------------------


async def test_429_is_retried_after_the_time_the_provider_asked(
    fake: Fake, sandbox: LocalSandbox
) -> None:
    fake.fail_next(
        error_fault(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "0"})
    )

    result = await _audit(fake.model(), sandbox)

    assert expense.is_correct(result.answer)
    assert len(fake.bodies) == 3  # the refused first call, its retry, the second call
    assert fake.bodies[0] == fake.bodies[1]


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "7"}, 7.0), ({"retry-after": "7", "retry-after-ms": "250"}, 0.25)],
)
async def test_rate_limit_error_carries_retry_after(
    fake: Fake, headers: dict[str, str], seconds: float
) -> None:
    fake.fail_next(error_fault(429, "rate_limit_error", "Slow down", headers))

    with pytest.raises(ModelRateLimited) as caught:
        await fake.model(retry=RetryPolicy(attempts=1)).generate(_request())

    assert caught.value.retry_after_s == seconds
    assert "Slow down" in str(caught.value) and caught.value.status == 429


@pytest.mark.parametrize(
    ("status", "kind"), [(529, "overloaded_error"), (500, "api_error"), (503, "api_error")]
)
async def test_server_errors_are_retried_then_succeed(fake: Fake, status: int, kind: str) -> None:
    fake.fail_next(
        error_fault(status, kind, "Overloaded", {"retry-after": "0"}),
        error_fault(status, kind, "Overloaded"),
    )

    response = await fake.model().generate(_request())

    assert response.text == "You said: hi"
    assert len(fake.bodies) == 3


async def test_server_errors_stop_after_the_allowed_attempts(fake: Fake) -> None:
    fake.fail_next(*[error_fault(529, "overloaded_error", "Overloaded")] * 4)

    with pytest.raises(ModelServerError, match=r"529 overloaded_error\): Overloaded"):
        await fake.model().generate(_request())

    assert len(fake.bodies) == FAST.attempts


async def test_an_error_event_mid_stream_is_retried_before_any_text(fake: Fake) -> None:
    fake.fail_next(MidStreamFault(200, error_body("overloaded_error", "Overloaded")))
    pieces: list[str] = []

    response = await fake.model().generate(_request(), on_text=pieces.append)

    assert len(fake.bodies) == 2
    assert "".join(pieces) == response.text == "You said: hi"


async def test_an_error_event_after_streamed_text_is_not_retried(fake: Fake) -> None:
    fake.fail_next(MidStreamFault(200, error_body("overloaded_error", "Overloaded"), text="Par"))
    pieces: list[str] = []

    with pytest.raises(ModelServerError, match="Overloaded") as caught:
        await fake.model().generate(_request(), on_text=pieces.append)

    assert pieces == ["Par"] and len(fake.bodies) == 1  # a retry would repeat the text
    assert not caught.value.retryable


async def test_a_stream_cut_short_before_any_text_is_retried(fake: Fake) -> None:
    fake.fail_next(MidStreamFault(200, {}))
    pieces: list[str] = []

    response = await fake.model().generate(_request(), on_text=pieces.append)

    assert len(fake.bodies) == 2
    assert "".join(pieces) == response.text == "You said: hi"
    assert response.stop_reason == "end_turn"


async def test_a_stream_cut_short_after_text_is_an_error_not_an_answer(fake: Fake) -> None:
    fake.fail_next(*[MidStreamFault(200, {}, text="Par")] * 3)
    pieces: list[str] = []

    with pytest.raises(ModelServerError, match="stream ended before") as caught:
        await fake.model().generate(_request(), on_text=pieces.append)

    assert pieces == ["Par"] and len(fake.bodies) == 1
    assert not caught.value.retryable


async def test_401_fails_at_once_saying_what_to_set(fake: Fake) -> None:
    model = fake.model(api_key="sk-ant-wrong-key")

    with pytest.raises(ModelAuthError) as caught:
        await model.generate(_request())

    message = str(caught.value)
    assert "ANTHROPIC_API_KEY" in message and "invalid x-api-key" in message
    assert "sk-ant-wrong-key" not in message
    assert caught.value.status == 401
    assert len(fake.bodies) == 1


async def test_no_credentials_anywhere_fails_before_any_request(
    fake: Fake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("API_KEY", "AUTH_TOKEN", "PROFILE", "CONFIG_DIR", "IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(f"ANTHROPIC_{name}", raising=False)
    for name in ("IDENTITY_TOKEN", "FEDERATION_RULE_ID", "ORGANIZATION_ID"):
        monkeypatch.delenv(f"ANTHROPIC_{name}", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no profile on disk either
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    with pytest.raises(ModelAuthError, match="set ANTHROPIC_API_KEY"):
        await AnthropicModel("claude-x", base_url=fake.url, retry=FAST).generate(_request())

    assert fake.bodies == []


async def test_400_surfaces_the_provider_message(fake: Fake) -> None:
    said = "messages.0.content.0: unexpected block type 'video'"
    fake.fail_next(error_fault(400, "invalid_request_error", said))

    with pytest.raises(ModelBadRequest) as caught:
        await fake.model().generate(_request())

    assert said in str(caught.value) and caught.value.status == 400
    assert len(fake.bodies) == 1


async def test_the_fakes_own_validation_reaches_the_caller(fake: Fake) -> None:
    request = ModelRequest("s", (Message.user("hi"),), (), max_tokens=0)

    with pytest.raises(ModelBadRequest, match="max_tokens: Input should be greater than"):
        await fake.model().generate(request)


async def test_unknown_model_404_is_a_bad_request(fake: Fake) -> None:
    fake.fail_next(error_fault(404, "not_found_error", "model: claude-x"))

    with pytest.raises(ModelBadRequest, match=r"404 not_found_error\): model: claude-x"):
        await fake.model().generate(_request())


async def test_connection_refused_names_the_url() -> None:
    url = harness.closed_port_url()
    model = AnthropicModel("claude-x", base_url=url, api_key=FAKE_API_KEY, retry=FAST)

    with pytest.raises(ModelConnectionError, match="Could not reach Anthropic at") as caught:
        await model.generate(_request())

    assert url in str(caught.value)


async def test_a_password_in_the_base_url_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_API_KEY)
    host = harness.closed_port_url().removeprefix("http://")
    url = f"http://user:s3cr3t@{host}"
    resolved = model_from_string(f"anthropic:claude-x@{url}")
    model = AnthropicModel("claude-x", base_url=url, retry=FAST)

    with pytest.raises(ModelConnectionError) as caught:
        await model.generate(_request())

    for shown in (resolved.name, resolved.label, repr(model), str(caught.value)):
        assert "s3cr3t" not in shown
    assert resolved.label == f"anthropic claude-x at http://user:***@{host}"
    assert f"user:***@{host}" in str(caught.value)


async def test_a_server_that_never_answers_times_out_naming_the_url() -> None:
    done = asyncio.Event()

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()  # read nothing, answer nothing
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    model = AnthropicModel(
        "claude-x", base_url=url, api_key=FAKE_API_KEY, retry=RetryPolicy(1), timeout_s=0.2
    )
    try:
        with pytest.raises(ModelConnectionError, match=r"did not answer within 0\.2 s") as caught:
            await model.generate(_request())
    finally:
        done.set()
        server.close()
        await server.wait_closed()

    assert url in str(caught.value)


# --- construction -------------------------------------------------------------------------


async def test_model_string_resolves_and_reads_the_key_from_the_environment(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_API_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)

    model = model_from_string(f"anthropic:claude-x@{fake.url}")
    response = await model.generate(_request(tools=(_lookup(),)))

    assert isinstance(model, AnthropicModel)
    assert model.name == "anthropic:claude-x"
    assert model.label == f"anthropic claude-x at {fake.url}"
    assert FAKE_API_KEY not in repr(model) and FAKE_API_KEY not in model.label
    assert AnthropicModel("claude-x", api_key="k").label == "anthropic claude-x"
    assert isinstance(response, ModelResponse) and response.text == "You said: hi"
    assert fake.bodies[0]["model"] == "claude-x"


async def test_a_given_client_is_used_with_retries_switched_off(fake: Fake) -> None:
    client = anthropic.AsyncAnthropic(api_key=FAKE_API_KEY, base_url=fake.url, max_retries=5)
    fake.fail_next(error_fault(529, "overloaded_error", "Overloaded"))

    with pytest.raises(ModelServerError):
        await AnthropicModel("claude-x", client=client, retry=RetryPolicy(1)).generate(_request())

    assert len(fake.bodies) == 1  # neither the SDK nor openptc retried
    assert client.max_retries == 5  # the caller's client is left as it was


# --- the fake itself ----------------------------------------------------------------------


async def test_the_fake_checks_auth_and_bodies_like_the_real_api(fake: Fake) -> None:
    hello = {"role": "user", "content": "hi"}
    key = {"x-api-key": FAKE_API_KEY, "anthropic-version": "2023-06-01"}
    cases: list[tuple[dict[str, str], dict[str, Any], int, str]] = [
        ({}, {"model": "m", "max_tokens": 5, "messages": [hello]}, 401, "invalid x-api-key"),
        (key, {"model": "m", "messages": [hello]}, 400, "max_tokens: Field required"),
        (key, {"model": "m", "max_tokens": 5}, 400, "messages: Field required"),
        (key, {"model": "m", "max_tokens": 5, "messages": [hello, hello]}, 400, "alternate"),
    ]
    async with httpx.AsyncClient(base_url=fake.url) as http:
        for headers, body, status, said in cases:
            reply = await http.post("/v1/messages", json=body, headers=headers)
            assert reply.status_code == status, body
            error = reply.json()
            assert error["type"] == "error" and said in error["error"]["message"]
        ok = {"model": "m", "max_tokens": 5, "messages": [hello]}
        reply = await http.post("/v1/messages?beta=true", json=ok, headers=key)

    assert reply.status_code == 200
    assert reply.json()["content"] == [{"type": "text", "text": "You said: hi"}]
    assert reply.json()["id"].startswith("msg_")
