"""Schemathesis against the proxy's own OpenAPI document, sent to a real proxy on 127.0.0.1.

Every operation in the document is fuzzed with schema-valid and schema-breaking requests (body,
headers, path, methods, missing and wrong credentials) sent with a real key. Whatever is sent,
the proxy must not answer 5xx, and every answer must be what the document says: a documented
status and media type, the success schema for 2xx, and Anthropic's error envelope
``{"type": "error", "error": {"type", "message"}}`` for 4xx.

Random bodies rarely make a conversation that reaches the sandbox, so a second test drives
programmatic tool calling itself: it declares the code execution tool and the audit's tools
(with drawn callers), then answers the paused program rightly, wrongly, partly or not at all,
and holds every answer to the same checks.

Generation is derandomized, so a run is the same run everywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import Case, Config
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    response_schema_conformance,
    status_code_conformance,
)

from fakes.proxy_setup import KEY_A, KEY_B, config, expense_tools, running_proxy
from openptc.proxy.config import ApiKey
from openptc.proxy.openapi import openapi_document
from openptc.scenarios import expense
from openptc.tools import Toolbox, ToolCallError

VERSIONS = ("2023-06-01", "2026-10-21")
CODE_VERSIONS = ("code_execution_20250825", "code_execution_20260120", "code_execution_20260521")
MAX_EXAMPLES = 50  # per operation, for the fuzzing phase (examples and coverage come on top)
PTC_EXAMPLES = 40
REQUEST_TIMEOUT_S = 30.0

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    missing_required_header,
    ignored_auth,
]
BOUNDED = hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=list(hypothesis.HealthCheck),
)

# The document the proxy serves (a test below checks that it is this one). Loaded at import
# because ``schema.parametrize()`` needs it at collection; the proxy's URL is given per call.
schema = schemathesis.openapi.from_dict(
    openapi_document(),
    config=Config.from_dict(
        {
            "generation": {"deterministic": True, "database": "none"},
            "auth": {"openapi": {"apiKey": {"api_key": KEY_A}}},
            "output": {"sanitization": {"enabled": False}},  # test keys; full reproductions
        }
    ),
)


# Abandoned programs keep their containers until idle expiry: a short expiry and a roomy limit
# keep generated conversations from running into the per-key limit (a 429, which is allowed,
# but then the run depends on timing).
SERVED = config(
    container_idle_s=2.0,
    api_keys=[
        ApiKey(key=SecretStr(KEY_A), name="a", max_containers=10_000),
        ApiKey(key=SecretStr(KEY_B), name="b", max_containers=2),
    ],
)


class _Collect(logging.Handler):
    """What the proxy and uvicorn log at ERROR: the traceback behind any 5xx."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def since(self, start: int) -> str:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(r) for r in self.records[start:])


@pytest.fixture(scope="module")
def proxy_url() -> Iterator[str]:
    """The proxy on its own event loop in a thread, since schemathesis' client blocks."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        state["stop"] = stop = asyncio.Event()
        try:
            async with running_proxy(SERVED) as proxy:
                state["url"] = proxy.url
                ready.set()
                await stop.wait()
        except BaseException as exc:
            state["error"] = exc
            raise
        finally:
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(120)
    try:
        if "url" not in state:
            raise RuntimeError("the proxy did not start") from state.get("error")
        yield state["url"]
    finally:
        if "stop" in state:
            loop.call_soon_threadsafe(state["stop"].set)
        thread.join(60)
        if not thread.is_alive():
            loop.close()


@pytest.fixture(scope="module")
def server_log() -> Iterator[_Collect]:
    handler = _Collect()
    loggers = [logging.getLogger("openptc.proxy"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _assert_error_envelope(body: Any) -> None:
    assert isinstance(body, dict) and body.get("type") == "error", body
    error = body.get("error")
    assert isinstance(error, dict), body
    assert isinstance(error.get("type"), str) and isinstance(error.get("message"), str), body


def _call_and_check(case: Case, proxy_url: str, server_log: _Collect) -> Any:
    """Send ``case``; fail on a 5xx, an undocumented answer, or an error the proxy logged."""
    logged = len(server_log.records)
    response = case.call(base_url=proxy_url, timeout=REQUEST_TIMEOUT_S)
    try:
        case.validate_response(response, checks=CHECKS)
        if 400 <= response.status_code < 500:
            _assert_error_envelope(response.json())
        assert len(server_log.records) == logged, "the proxy logged an error"
    except BaseException as exc:
        if len(server_log.records) > logged:
            exc.add_note("proxy log:\n" + server_log.since(logged))
        raise
    return response


@schema.parametrize()
@hypothesis.settings(BOUNDED, max_examples=MAX_EXAMPLES)
def test_no_request_gets_a_server_error_and_every_answer_is_documented(
    case: Case, proxy_url: str, server_log: _Collect
) -> None:
    _call_and_check(case, proxy_url, server_log)


# -- programmatic tool calling, which random bodies seldom reach -----------------------------------
AUDIT = Toolbox(expense.make_tools())
FOLLOW_UPS = (
    "answer",
    "answer",  # twice: right answers take a conversation deepest
    "answer_as_errors",
    "answer_with_garbage",
    "answer_as_text_blocks",
    "answer_with_an_image",
    "leave_one_out",
    "add_an_unknown_id",
    "add_text",
    "skip_the_assistant_turn",
    "without_container",
    "with_an_unknown_container",
    "with_the_other_key",
    "without_the_code_tool",
    "with_another_code_version",
    "send_the_same_again",
)


@st.composite
def first_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A first turn that offers the code execution tool (mostly) and the audit's tools."""
    version = draw(st.sampled_from(CODE_VERSIONS))
    callers = st.sampled_from([[version], [version], ["direct", version], ["direct"]])
    tools: list[dict[str, Any]] = []
    if draw(st.integers(0, 9)):
        tools.append({"type": version, "name": "code_execution"})
    for spec in AUDIT.specs():
        if draw(st.integers(0, 5)):
            tools.append({**spec, "allowed_callers": draw(callers)})
    if tools and not draw(st.integers(0, 19)):
        tools[-1] = {**tools[-1], "strict": True}
    body: dict[str, Any] = {
        "model": draw(st.sampled_from(["claude-expense", "any-other-name"])),
        "max_tokens": draw(st.integers(1, 4096)),
        "messages": [
            {"role": "user", "content": draw(st.sampled_from([expense.QUESTION, "go", "🙂 ü"]))}
        ],
        "tools": draw(st.permutations(tools)),
    }
    if draw(st.booleans()):
        body["system"] = draw(st.sampled_from(["Be brief.", [{"type": "text", "text": "Brief."}]]))
    if not draw(st.integers(0, 4)):
        names = [t["name"] for t in tools] + ["missing"]
        choice: dict[str, Any] = {"type": draw(st.sampled_from(["auto", "any", "none", "tool"]))}
        if choice["type"] == "tool":
            choice["name"] = draw(st.sampled_from(names))
        body["tool_choice"] = choice
    return body


def _answers(content: list[dict[str, Any]], how: str) -> list[dict[str, Any]]:
    """The client's ``tool_result`` blocks for the ``tool_use`` blocks of a response."""
    calls = [b for b in content if b.get("type") == "tool_use"]

    async def run(call: dict[str, Any]) -> tuple[str, bool]:
        try:
            return json.dumps(await AUDIT.call(call["name"], call["input"])), False
        except ToolCallError as exc:
            return str(exc), True

    async def run_all() -> list[tuple[str, bool]]:
        return list(await asyncio.gather(*(run(c) for c in calls)))

    results = []
    for call, (text, failed) in zip(calls, asyncio.run(run_all()), strict=True):
        programmatic = (call.get("caller") or {}).get("type", "direct") != "direct"
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call["id"]}
        if how == "answer_as_errors":
            result |= {"content": "backend down", "is_error": True}
        elif how == "answer_with_garbage" and programmatic:  # direct ones: the model parses them
            result["content"] = "not json {"
        elif how == "answer_as_text_blocks":
            result["content"] = [{"type": "text", "text": text}]
        elif how == "answer_with_an_image":
            image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
            result["content"] = [{"type": "image", "source": image}]
        else:
            result |= {"content": text, "is_error": failed}
        results.append(result)
    if how == "leave_one_out" and results:
        results.pop()
    if how == "add_an_unknown_id":
        results.append({"type": "tool_result", "tool_use_id": "toolu_unknown", "content": "x"})
    if how == "add_text":
        results.append({"type": "text", "text": "and also"})
    return results


def _follow_up(body: dict[str, Any], answer: dict[str, Any], how: str) -> dict[str, Any]:
    """The next request of the conversation, made wrong in the way ``how`` says."""
    if how == "send_the_same_again":
        return body
    assistant = {"role": "assistant", "content": answer["content"]}
    messages = [*body["messages"], assistant]
    if answer["stop_reason"] == "tool_use":
        reply = _answers(answer["content"], how)
        if reply:
            messages.append({"role": "user", "content": reply})
        if how == "skip_the_assistant_turn":
            messages.remove(assistant)
    elif answer["stop_reason"] != "pause_turn":
        messages.append({"role": "user", "content": "Again, please."})
    nxt = {**body, "messages": messages}
    container = (answer.get("container") or {}).get("id")
    if how == "with_an_unknown_container":
        nxt["container"] = "container_does_not_exist"
    elif container and how != "without_container":
        nxt["container"] = container
    if how == "without_the_code_tool":
        nxt["tools"] = [t for t in body["tools"] if t.get("name") != "code_execution"]
    if how == "with_another_code_version":
        nxt["tools"] = [
            {**t, "type": "code_execution_20250825"} if t.get("name") == "code_execution" else t
            for t in body["tools"]
        ]
    return nxt


@hypothesis.settings(BOUNDED, max_examples=PTC_EXAMPLES)
@hypothesis.given(
    first=first_requests(),
    version=st.sampled_from(VERSIONS),
    # Drawn up front, not from the answers, so that a run replays the same plan.
    plan=st.lists(
        st.tuples(st.sampled_from(FOLLOW_UPS), st.integers(0, 5)), min_size=4, max_size=4
    ),
)
def test_programmatic_tool_calling_never_gets_a_server_error(
    proxy_url: str,
    server_log: _Collect,
    first: dict[str, Any],
    version: str,
    plan: list[tuple[str, int]],
) -> None:
    """Up to four turns of one conversation, each next turn made as ``plan`` says."""
    operation = schema["/v1/messages"]["POST"]
    body, key = first, KEY_A
    for how, not_streamed in plan:
        stream = not not_streamed  # one turn in six streams
        headers = {"x-api-key": key, "anthropic-version": version}
        case = operation.Case(
            body={**body, "stream": stream}, headers=headers, media_type="application/json"
        )
        response = _call_and_check(case, proxy_url, server_log)
        if response.status_code != 200 or stream:
            return
        answer = response.json()
        if answer["stop_reason"] not in ("tool_use", "pause_turn"):
            return
        key = KEY_B if how == "with_the_other_key" else KEY_A
        body = _follow_up(body, answer, how)


# -- well-formed bodies the generator does not write: lone surrogates, nothing to read, nesting -
CODE_TOOL = {"type": "code_execution_20260120", "name": "code_execution"}
HI = [{"role": "user", "content": "hi"}]
LONE_SURROGATE = "\ud800"  # sent as the JSON escape; no UTF-8 can carry it back out


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/messages",
            {"model": "m", "max_tokens": 1, "messages": HI, "container": LONE_SURROGATE},
        ),
        (
            "/v1/messages",
            {"model": "m", "max_tokens": 1, "messages": HI, "tools": [{"type": LONE_SURROGATE}]},
        ),
        (
            "/v1/messages/count_tokens",
            {"model": "m", "messages": HI, "tools": [{"type": LONE_SURROGATE}]},
        ),
        (
            "/v1/messages",
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": LONE_SURROGATE}],
                    }
                ],
            },
        ),
        # Nothing for the backend to read: the request is refused, or the model answers.
        (
            "/v1/messages",
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": ""}],
                "tools": [CODE_TOOL],
            },
        ),
        (
            "/v1/messages",
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": []}],
                "tools": [CODE_TOOL],
            },
        ),
    ],
    ids=[
        "surrogate-in-container",
        "surrogate-in-tool-type",
        "surrogate-in-tool-type-count-tokens",
        "surrogate-in-tool-use-id",
        "empty-text-with-code-tool",
        "empty-blocks-with-code-tool",
    ],
)
def test_odd_but_well_formed_bodies_get_a_documented_answer(
    proxy_url: str, server_log: _Collect, path: str, body: dict[str, Any]
) -> None:
    headers = {"x-api-key": KEY_A, "anthropic-version": VERSIONS[0]}
    case = schema[path]["POST"].Case(body=body, headers=headers, media_type="application/json")
    _call_and_check(case, proxy_url, server_log)


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000],
    ids=["deeply-nested-array", "deeply-nested-object"],
)
def test_deeply_nested_json_is_refused_as_a_bad_request(proxy_url: str, raw: bytes) -> None:
    headers = {"x-api-key": KEY_A, "anthropic-version": VERSIONS[0]}
    headers["content-type"] = "application/json"
    response = requests.post(
        proxy_url + "/v1/messages", data=raw, headers=headers, timeout=REQUEST_TIMEOUT_S
    )
    assert response.status_code == 400, response.text
    _assert_error_envelope(response.json())
    assert response.json()["error"]["type"] == "invalid_request_error"


# -- credentials ----------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/messages", {"model": "m", "max_tokens": 1, "messages": []}),
        ("POST", "/v1/messages/count_tokens", {"model": "m", "messages": []}),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/claude-expense", None),
    ],
)
@pytest.mark.parametrize(
    "auth",
    [{}, {"x-api-key": ""}, {"x-api-key": "sk-wrong"}, {"authorization": "Bearer sk-wrong"}],
    ids=["none", "empty", "wrong-key", "wrong-bearer"],
)
def test_without_a_valid_key_every_route_answers_401_json(
    proxy_url: str,
    version: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    auth: dict[str, str],
) -> None:
    response = requests.request(
        method,
        proxy_url + path,
        json=body,
        headers={"anthropic-version": version, **auth},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    _assert_error_envelope(response.json())
    assert response.json()["error"]["type"] == "authentication_error"


def _valid_under(component: str, instance: Any) -> list[str]:
    document = openapi_document()
    root = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return [e.message for e in jsonschema_rs.Draft202012Validator(root).iter_errors(instance)]


@pytest.mark.parametrize(
    "tools",
    [
        [CODE_TOOL],
        [CODE_TOOL, *expense_tools()],
        [{"type": "custom", "name": "lookup", "input_schema": {"type": "object"}}],
    ],
    ids=["code-tool", "code-tool-and-programmatic-tools", "typed-custom-tool"],
)
def test_the_document_accepts_the_tools_the_proxy_serves(tools: list[dict[str, Any]]) -> None:
    """Else no generator can write them, and the fuzzing never reaches the sandbox."""
    body = {"model": "m", "max_tokens": 1, "messages": HI, "tools": tools}
    assert _valid_under("MessagesRequest", body) == []
    assert (
        _valid_under("CountTokensRequest", {k: v for k, v in body.items() if k != "max_tokens"})
        == []
    )


def test_the_fuzzed_document_is_the_one_the_proxy_serves(proxy_url: str) -> None:
    response = requests.get(proxy_url + "/openapi.json", timeout=REQUEST_TIMEOUT_S)
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(openapi_document()))
