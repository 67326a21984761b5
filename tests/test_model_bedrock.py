"""Bedrock adapters driven through the real boto3 client against a wire-faithful local fake.

Nothing in boto3 or botocore is patched: the client signs with SigV4, serializes REST-JSON,
parses event streams and error shapes exactly as it does against AWS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError

from fakes.bedrock_server import (
    CUT,
    CUT_BEFORE_TEXT,
    TokenMeter,
    aws_error,
    encode_event,
    encode_exception,
    read_anthropic,
    read_converse,
)
from fakes.bedrock_session import FAST, bedrock, bodies, client
from fakes.harness import closed_port_url
from openptc.agent import Agent, RunResult
from openptc.models import (
    Message,
    ModelRequest,
    ModelUsage,
    ToolResultBlock,
    ToolUseBlock,
    Turn,
    count_request_tokens,
    model_from_string,
)
from openptc.models.bedrock_converse import (
    CACHE_POINT,
    BedrockConverseModel,
    converse_response,
)
from openptc.models.bedrock_invoke import BedrockInvokeModel
from openptc.models.errors import (
    ModelAuthError,
    ModelBadRequest,
    ModelConnectionError,
    ModelRateLimited,
    ModelServerError,
)
from openptc.models.retry import RetryPolicy
from openptc.prompts import CODE_TOOL_NAME
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import brains, expense

pytestmark = pytest.mark.usefixtures("no_ambient_aws")

MODEL_ID = "anthropic.claude-sonnet-4-6-v1:0"  # the ':' must survive the URL path

ModelClass = type[BedrockConverseModel] | type[BedrockInvokeModel]


def requests_of(agent: Agent, result: RunResult) -> Iterator[ModelRequest]:
    """The requests the agent sent, rebuilt from its transcript (each ends on a user turn)."""
    for end, message in enumerate(result.transcript, start=1):
        if message.role == "user":
            yield ModelRequest(agent.system, result.transcript[:end], agent.tool_specs)


def _question() -> ModelRequest:
    return ModelRequest("Be brief.", (Message.user("hi"),))


GREETING = "Hello! Everything on this side of the wire is in order."


def greet(_request: ModelRequest) -> Turn:
    return GREETING


# --- the event-stream encoding -------------------------------------------------------------------


def test_event_stream_encoding_is_what_botocore_decodes() -> None:
    messages = [
        encode_event("messageStart", {"role": "assistant"}),
        encode_event("contentBlockDelta", {"delta": {"text": "héllo ✓"}, "contentBlockIndex": 0}),
        encode_exception("throttlingException", "slow down"),
    ]
    wire = b"".join(messages)
    buffer, decoded = EventStreamBuffer(), list[Any]()
    for start in range(0, len(wire), 7):  # arrives in awkward pieces, as from a socket
        buffer.add_data(wire[start : start + 7])
        decoded.extend(buffer)

    assert [m.prelude.total_length for m in decoded] == [len(m) for m in messages]
    assert [m.headers[":message-type"] for m in decoded] == ["event", "event", "exception"]
    assert decoded[0].headers[":event-type"] == "messageStart"
    assert decoded[1].headers[":content-type"] == "application/json"
    assert json.loads(decoded[1].payload)["delta"] == {"text": "héllo ✓"}
    assert decoded[2].headers[":exception-type"] == "throttlingException"
    assert decoded[2].to_response_dict()["status_code"] == 400
    assert json.loads(decoded[2].payload) == {"message": "slow down"}

    # The checksums are real: one flipped payload bit and botocore refuses the message.
    corrupt = bytearray(messages[1])
    corrupt[-8] ^= 1
    broken = EventStreamBuffer()
    broken.add_data(bytes(corrupt))
    with pytest.raises(ChecksumMismatch):
        next(broken)


# --- the whole scenario --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ptc", "direct"])
async def test_expense_audit_through_converse(sandbox: LocalSandbox, mode: Any) -> None:
    async with bedrock() as (url, recorder):
        model = BedrockConverseModel(MODEL_ID, client=client(url), retry=FAST)
        agent = Agent(model, expense.make_tools(), sandbox, mode=mode, max_turns=80)
        result = await agent.run(expense.QUESTION)

    assert expense.is_correct(result.answer), result.answer
    assert result.stop == "answered"
    assert result.model_label == f"Amazon Bedrock Converse: {MODEL_ID}"
    assert result.usage.tokens_counted == "provider"
    sent = bodies(recorder)
    assert result.usage.model_calls == len(sent)
    members = len(expense.default_data().team("engineering"))
    assert result.usage.model_calls == (2 if mode == "ptc" else 2 + 2 * members)
    # The agent counted exactly what the provider reported for each call.
    meter = TokenMeter()
    assert result.usage.input_tokens == sum(meter.input_tokens(read_converse(b)) for b in sent)

    path, headers, first = recorder.requests[0]
    assert path == f"/model/{MODEL_ID}/converse"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    # Prompt caching is on by default and Claude Sonnet 4.6 has it: a cache point after the
    # system prompt, the tools and the conversation so far.
    assert first["system"] == [{"text": agent.system}, CACHE_POINT]
    assert first["inferenceConfig"] == {"maxTokens": 4096}
    *tools, marker = first["toolConfig"]["tools"]
    assert marker == CACHE_POINT
    specs = [t["toolSpec"] for t in tools]
    names = [s["name"] for s in specs]
    expected = [CODE_TOOL_NAME] if mode == "ptc" else [s.name for s in agent.tool_specs]
    assert names == expected
    assert all(s["inputSchema"]["json"]["type"] == "object" and s["description"] for s in specs)
    assert first["messages"] == [
        {"role": "user", "content": [{"text": expense.QUESTION}, CACHE_POINT]}
    ]
    assert all(b["messages"][-1]["content"][-1] == CACHE_POINT for b in sent)
    assert not any("additionalModelRequestFields" in b or "requestMetadata" in b for b in sent)

    last = sent[-1]["messages"]
    use = last[1]["content"][0]["toolUse"]
    answer = last[2]["content"][0]["toolResult"]
    assert answer["toolUseId"] == use["toolUseId"]
    assert answer["status"] == "success"
    assert answer["content"][0]["text"]
    if mode == "ptc":
        assert use["name"] == CODE_TOOL_NAME and use["input"] == {"code": result.programs[0]}


async def test_expense_audit_through_invoke_model_in_direct_mode() -> None:
    async with bedrock() as (url, recorder):
        model = BedrockInvokeModel(MODEL_ID, client=client(url), retry=FAST)
        agent = Agent(model, expense.make_tools(), mode="direct", max_turns=80)
        result = await agent.run(expense.QUESTION)

    assert expense.is_correct(result.answer), result.answer
    engineers = len(expense.default_data().team("engineering"))
    assert result.usage.model_calls == 2 + 2 * engineers
    assert result.usage.tokens_counted == "provider"
    last = bodies(recorder)[-1]
    assert [t["name"] for t in last["tools"]] == [s.name for s in agent.tool_specs]
    use, answer = last["messages"][1]["content"][0], last["messages"][2]["content"][0]
    assert use["type"] == "tool_use" and answer["tool_use_id"] == use["id"]


@pytest.mark.parametrize("model_class", [BedrockConverseModel, BedrockInvokeModel])
async def test_error_paths_hold_for_both_apis(model_class: ModelClass) -> None:
    async with bedrock(greet) as (url, recorder):
        recorder.faults.append(aws_error(429, "ThrottlingException", "slow", {"Retry-After": "0"}))
        model = model_class(MODEL_ID, client=client(url), retry=RetryPolicy(attempts=2))
        assert (await model.generate(_question())).text == GREETING
        assert len(recorder.requests) == 2

        recorder.faults.append(aws_error(400, "ValidationException", "max_tokens too large"))
        with pytest.raises(ModelBadRequest, match="max_tokens too large"):
            await model.generate(_question())
        assert len(recorder.requests) == 3

        revoked = model_class(MODEL_ID, client=client(url, "AKIDREVOKED"), retry=FAST)
        with pytest.raises(ModelAuthError, match="UnrecognizedClientException"):
            await revoked.generate(_question())
        assert len(recorder.requests) == 4


async def test_expense_audit_through_invoke_model(sandbox: LocalSandbox) -> None:
    async with bedrock() as (url, recorder):
        model = BedrockInvokeModel(MODEL_ID, client=client(url), retry=FAST)
        agent = Agent(model, expense.make_tools(), sandbox, mode="ptc")
        result = await agent.run(expense.QUESTION)

    assert expense.is_correct(result.answer), result.answer
    assert result.usage.model_calls == 2
    assert result.usage.tokens_counted == "provider"
    assert result.model_label == f"Amazon Bedrock InvokeModel: {MODEL_ID}"
    sent = bodies(recorder)
    assert result.usage.input_tokens == sum(count_request_tokens(read_anthropic(b)) for b in sent)
    assert [p for p, _, _ in recorder.requests] == [f"/model/{MODEL_ID}/invoke"] * 2
    first, second = sent
    assert first["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in first and "stream" not in first
    # Prompt caching is on by default: the last tool, the system prompt and the last block
    # of the conversation carry Anthropic's cache mark, which InvokeModel takes as it is.
    marked = {"type": "ephemeral"}
    assert first["max_tokens"] == 4096
    assert first["system"] == [{"type": "text", "text": agent.system, "cache_control": marked}]
    assert [t["name"] for t in first["tools"]] == [CODE_TOOL_NAME]
    assert first["tools"][0]["input_schema"]["required"] == ["code"]
    assert first["tools"][-1]["cache_control"] == marked
    use, answer = second["messages"][1]["content"][0], second["messages"][2]["content"][0]
    assert use["type"] == "tool_use" and use["input"] == {"code": result.programs[0]}
    assert answer == {
        "type": "tool_result",
        "tool_use_id": use["id"],
        "content": result.executions[0].to_model_text(),
        "cache_control": marked,
    }
    assert "anthropic_beta" not in first and "thinking" not in first


# --- streaming -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_class", "stream_path"),
    [
        (BedrockConverseModel, "converse-stream"),
        (BedrockInvokeModel, "invoke-with-response-stream"),
    ],
)
async def test_streaming_hands_text_over_and_equals_the_plain_call(
    sandbox: LocalSandbox, model_class: ModelClass, stream_path: str
) -> None:
    async with bedrock() as (url, recorder):
        model = model_class(MODEL_ID, client=client(url), retry=FAST)
        agent = Agent(model, expense.make_tools(), sandbox)
        deltas: list[str] = []
        result = await agent.run(expense.QUESTION, on_text=deltas.append)

        assert expense.is_correct(result.answer), result.answer
        assert len(deltas) > 3 and "".join(deltas) == result.answer
        assert {p for p, _, _ in recorder.requests} == {f"/model/{MODEL_ID}/{stream_path}"}
        assert result.usage.tokens_counted == "provider"

        # Each request again, streamed and not: the same response, tool-use input included.
        for request in requests_of(agent, result):
            streamed = await model.generate(request, on_text=lambda _: None)
            plain = await model.generate(request)
            assert streamed == plain
            assert plain.usage is not None
            # Asked again, the whole request is a prefix the cache holds.
            assert plain.usage.cache_read_tokens > 0 and plain.usage.input_tokens == 0
        assert plain.text == result.answer


async def test_a_stream_broken_after_text_was_shown_is_not_retried() -> None:
    async with bedrock(greet, stream_faults=["throttlingException"]) as (url, recorder):
        model = BedrockConverseModel(MODEL_ID, client=client(url), retry=FAST)
        deltas: list[str] = []
        with pytest.raises(ModelRateLimited, match="throttlingException") as caught:
            await model.generate(_question(), on_text=deltas.append)

    assert len(deltas) == 1  # the reader saw this much; a retry would show it again
    assert caught.value.retryable is False
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("model_class", [BedrockConverseModel, BedrockInvokeModel])
async def test_a_stream_cut_short_is_an_error_not_an_answer(model_class: ModelClass) -> None:
    faults = [CUT_BEFORE_TEXT]  # the fake takes one per streamed response
    async with bedrock(greet, stream_faults=faults) as (url, recorder):
        model = model_class(MODEL_ID, client=client(url), retry=FAST)
        deltas: list[str] = []
        # Cut before any text: retried, and the retry's answer is whole.
        response = await model.generate(_question(), on_text=deltas.append)
        assert response.text == "".join(deltas) == GREETING
        assert response.stop_reason == "end_turn" and len(recorder.requests) == 2

        # Cut after text: not passed off as a finished answer, and not shown again.
        deltas.clear()
        faults += [CUT] * FAST.attempts
        with pytest.raises(ModelServerError, match=r"stream .* ended before") as caught:
            await model.generate(_question(), on_text=deltas.append)

    assert len(deltas) == 1 and GREETING.startswith(deltas[0])
    assert caught.value.retryable is False
    assert len(recorder.requests) == 3


async def test_a_password_in_the_endpoint_is_never_shown() -> None:
    host = closed_port_url().removeprefix("http://")
    model = BedrockConverseModel(
        MODEL_ID, client=client(f"http://user:s3cr3t@{host}"), retry=RetryPolicy(attempts=1)
    )
    with pytest.raises(ModelConnectionError) as caught:
        await model.generate(_question())
    for shown in (model.name, model.label, repr(model), str(caught.value)):
        assert "s3cr3t" not in shown
    assert f"user:***@{host}" in str(caught.value)


# --- errors through the real client --------------------------------------------------------------


async def test_throttling_is_retried_after_the_retry_after_header() -> None:
    # A backoff of a minute: only the provider's "Retry-After: 0" lets this finish in time.
    patient = RetryPolicy(attempts=2, base_delay_s=60)
    async with bedrock(greet) as (url, recorder):
        recorder.faults.append(
            aws_error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
                {"Retry-After": "0"},
            )
        )
        model = BedrockConverseModel(MODEL_ID, client=client(url), retry=patient)
        response = await asyncio.wait_for(model.generate(_question()), timeout=10)

    assert response.text == GREETING
    assert response.stop_reason == "end_turn"
    assert len(recorder.requests) == 2


async def test_service_unavailable_is_retried() -> None:
    async with bedrock(greet) as (url, recorder):
        recorder.faults.append(
            aws_error(503, "ServiceUnavailableException", "Service is temporarily unavailable.")
        )
        model = BedrockConverseModel(MODEL_ID, client=client(url), retry=FAST)
        response = await model.generate(_question())

    assert response.text and len(recorder.requests) == 2


async def test_server_errors_that_persist_fail_after_the_bounded_attempts() -> None:
    async with bedrock(greet) as (url, recorder):
        recorder.faults.extend(
            aws_error(500, "InternalServerException", "boom") for _ in range(FAST.attempts)
        )
        model = BedrockConverseModel(MODEL_ID, client=client(url), retry=FAST)
        with pytest.raises(ModelServerError, match="InternalServerException: boom"):
            await model.generate(_question())

    assert len(recorder.requests) == FAST.attempts


async def test_rejected_credentials_fail_at_once_saying_what_to_check() -> None:
    async with bedrock(greet) as (url, recorder):
        model = BedrockConverseModel(MODEL_ID, client=client(url, "AKIDREVOKED"), retry=FAST)
        with pytest.raises(ModelAuthError) as caught:
            await model.generate(_question())

    message = str(caught.value)
    assert "UnrecognizedClientException" in message
    assert "The security token included in the request is invalid." in message
    for setting in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "us-east-1", "Bedrock console", MODEL_ID):
        assert setting in message
    assert "secret" not in message
    assert caught.value.status == 403
    assert len(recorder.requests) == 1


async def test_validation_error_surfaces_the_providers_message() -> None:
    said = "The model returned the following errors: max_tokens: must be at most 64000"
    async with bedrock(greet) as (url, recorder):
        recorder.faults.append(aws_error(400, "ValidationException", said))
        model = BedrockConverseModel(MODEL_ID, client=client(url), retry=FAST)
        with pytest.raises(ModelBadRequest) as caught:
            await model.generate(_question())

        # The fake's own validation, reached through the adapter: a request Bedrock refuses.
        backwards = ModelRequest("s", (Message.assistant("hello"), Message.user("hi")))
        with pytest.raises(ModelBadRequest, match="must start with a user message"):
            await model.generate(backwards)

    assert said in str(caught.value) and "ValidationException" in str(caught.value)
    assert caught.value.status == 400
    assert len(recorder.requests) == 2  # neither was retried


async def test_unknown_model_is_a_bad_request() -> None:
    async with bedrock(greet) as (url, recorder):
        recorder.faults.append(
            aws_error(404, "ResourceNotFoundException", "Model not found: no.such-model")
        )
        model = BedrockInvokeModel("no.such-model", client=client(url), retry=FAST)
        with pytest.raises(ModelBadRequest, match=r"Model not found: no\.such-model"):
            await model.generate(_question())
    assert len(recorder.requests) == 1


async def test_connection_refused_names_the_endpoint() -> None:
    url = closed_port_url()
    model = BedrockConverseModel(MODEL_ID, client=client(url), retry=FAST)
    with pytest.raises(ModelConnectionError) as caught:
        await model.generate(_question())
    assert url in str(caught.value)
    assert caught.value.retryable


async def test_missing_credentials_fail_at_once_saying_what_to_set() -> None:
    async with bedrock(greet) as (url, recorder):
        model = BedrockConverseModel(MODEL_ID, region="us-east-1", endpoint_url=url, retry=FAST)
        with pytest.raises(ModelAuthError, match="AWS_ACCESS_KEY_ID"):
            await model.generate(_question())
    assert recorder.requests == []


async def test_own_client_from_the_environment_leaves_retrying_to_openptc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    async with bedrock(greet) as (url, recorder):
        recorder.faults.append(aws_error(429, "ThrottlingException", "slow down"))
        once = RetryPolicy(attempts=1)
        model = BedrockConverseModel(MODEL_ID, endpoint_url=url, retry=once)
        with pytest.raises(ModelRateLimited):
            await model.generate(_question())
        assert len(recorder.requests) == 1  # botocore did not retry behind openptc's back

        response = await model.generate(_question())

    assert response.text
    assert "/us-west-2/bedrock/aws4_request" in recorder.requests[-1][1]["authorization"]


@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_tool_input_is_fed_back_and_the_run_recovers(
    sandbox: LocalSandbox, stream: bool
) -> None:
    def brain(request: ModelRequest) -> Turn:
        results = request.messages[-1].results
        if results and "not a valid JSON object" in results[-1].content:
            n = sum(len(m.tool_uses) for m in request.messages) + 1
            return [
                ToolUseBlock(f"toolu_{n:03d}", CODE_TOOL_NAME, {"code": expense.REFERENCE_PROGRAM})
            ]
        return brains.expense_audit_brain(request)

    async with bedrock(brain, malformed_tool_inputs=1) as (url, recorder):
        model = BedrockConverseModel(MODEL_ID, client=client(url), retry=FAST)
        on_text = (lambda _: None) if stream else None
        result = await Agent(model, expense.make_tools(), sandbox).run(
            expense.QUESTION, on_text=on_text
        )

    assert expense.is_correct(result.answer), result.answer
    assert result.usage.model_calls == 3
    broken = result.transcript[1].tool_uses[0]
    assert broken.input_error is not None and broken.raw_input
    assert broken.raw_input in json.dumps({"code": expense.REFERENCE_PROGRAM})
    fed_back = result.transcript[2].results[0]
    assert fed_back.is_error and "not a valid JSON object" in fed_back.content
    # Later requests carry the broken call with an empty object, which every model accepts.
    resent = bodies(recorder)[1]["messages"][1]["content"][0]["toolUse"]
    assert resent["input"] == {} and resent["toolUseId"] == broken.id


# --- mapping details -----------------------------------------------------------------------------


async def test_history_with_tool_calls_but_no_tools_still_declares_them() -> None:
    history = (
        Message.user("q"),
        Message.assistant([ToolUseBlock("t1", "lookup", {"q": "x"})]),
        Message.tool_results([ToolResultBlock("t1", "42")]),
    )
    async with bedrock(lambda _: "done") as (url, recorder):
        raw = client(url)
        # The fake enforces Converse's rule, so the adapter passing below means something.
        wire: list[Any] = [
            {"role": "user", "content": [{"text": "q"}]},
            {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}],
            },
            {
                "role": "user",
                "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "42"}]}}],
            },
        ]
        with pytest.raises(ClientError, match="toolConfig field must be defined"):
            await asyncio.to_thread(raw.converse, modelId=MODEL_ID, messages=wire)

        for model_class in (BedrockConverseModel, BedrockInvokeModel):
            model = model_class(MODEL_ID, client=raw, retry=FAST)
            response = await model.generate(ModelRequest("s", history))
            assert response.text == "done"

    converse, invoke = bodies(recorder)[1:]
    tools = converse["toolConfig"]["tools"]
    assert [t["toolSpec"]["name"] for t in tools if "toolSpec" in t] == ["lookup"]
    assert [t["name"] for t in invoke["tools"]] == ["lookup"]


@pytest.mark.parametrize("model_class", [BedrockConverseModel, BedrockInvokeModel])
@pytest.mark.parametrize("stream", [False, True])
async def test_cache_reads_and_writes_are_reported(model_class: ModelClass, stream: bool) -> None:
    request = ModelRequest("Answer in the house style. " * 20, (Message.user("hi"),))
    async with bedrock(greet, cache_read_tokens=30, cache_write_tokens=5) as (url, _):
        model = model_class(MODEL_ID, client=client(url), retry=FAST)
        response = await model.generate(request, on_text=(lambda _: None) if stream else None)

    total = count_request_tokens(request)
    assert response.usage is not None and total > 35
    assert response.usage == ModelUsage(total - 35, response.usage.output_tokens, 30, 5)
    assert response.usage.output_tokens > 0


@pytest.mark.parametrize(
    ("wire", "normalized"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("model_context_window_exceeded", "max_tokens"),
        ("guardrail_intervened", "refusal"),
        ("content_filtered", "refusal"),
    ],
)
def test_stop_reasons(wire: str, normalized: str) -> None:
    response = {"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": wire}
    assert converse_response(response, "m").stop_reason == normalized


@pytest.mark.parametrize("reason", ["malformed_tool_use", "malformed_model_output"])
def test_malformed_output_is_a_tool_use_to_answer_or_a_retryable_error(reason: str) -> None:
    use = {"toolUse": {"toolUseId": "t1", "name": "f", "input": [1, 2]}}
    response = converse_response(
        {"output": {"message": {"content": [use]}}, "stopReason": reason}, "m"
    )
    assert response.stop_reason == "tool_use"
    (block,) = response.tool_uses
    assert block.input == {} and block.raw_input == "[1, 2]"
    assert block.input_error is not None and "an array" in block.input_error

    text_only = {"output": {"message": {"content": [{"text": "f(1"}]}}, "stopReason": reason}
    with pytest.raises(ModelServerError, match=reason) as caught:
        converse_response(text_only, "m")
    assert caught.value.retryable


def test_model_strings_resolve_to_the_bedrock_adapters() -> None:
    converse = model_from_string(f"bedrock:{MODEL_ID}@http://127.0.0.1:9")
    invoke = model_from_string(f"bedrock-invoke:{MODEL_ID}")
    assert isinstance(converse, BedrockConverseModel) and converse.name == f"bedrock:{MODEL_ID}"
    assert isinstance(invoke, BedrockInvokeModel) and invoke.name == f"bedrock-invoke:{MODEL_ID}"
    assert "Converse" in converse.label and "InvokeModel" in invoke.label
