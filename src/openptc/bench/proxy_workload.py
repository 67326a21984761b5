"""What ``ptc bench proxy`` sends and what it expects back: the request bodies and headers, the
scripted backends that answer them in microseconds (so the proxy is what gets measured), and the
checks every response must pass.

Shared by the servers (child processes) and every phase of the benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from openptc.models.base import (
    Message,
    ModelRequest,
    ToolResultBlock,
    ToolUseBlock,
)
from openptc.models.scripted import ScriptedModel, Turn

API_KEY = "sk-bench-proxy"
API_VERSION = "2023-06-01"
TEXT_MODEL = "bench-text"
PTC_MODEL = "bench-ptc"
PROMPT = "Say hello in one short sentence."
TEXT_ANSWER = "Hello! This answer comes from a scripted backend, so the proxy is what is measured."
PTC_PROGRAM = "print(1+1)"
PTC_ANSWER = "1 + 1 = 2."
MAX_TOKENS = 64
CODE_TOOL = {"type": "code_execution_20260120", "name": "code_execution"}


def _request_body(model: str, tools: Sequence[dict[str, Any]] = ()) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if tools:
        body["tools"] = list(tools)
    return json.dumps(body).encode()


TEXT_BODY = _request_body(TEXT_MODEL)
PTC_BODY = _request_body(PTC_MODEL, [CODE_TOOL])
HEADERS = {
    "x-api-key": API_KEY,
    "anthropic-version": API_VERSION,
    "content-type": "application/json",
}


# -- the backends -------------------------------------------------------------------------------
def text_backend() -> ScriptedModel:
    """Answers every request with the same short text; no tools."""
    return ScriptedModel(lambda _request: TEXT_ANSWER, name="scripted:bench-text", about="bench")


def _ptc_turn(request: ModelRequest) -> Turn:
    last = request.messages[-1] if request.messages else None
    if last is not None and any(isinstance(b, ToolResultBlock) for b in last.content):
        return PTC_ANSWER  # the program ran: answer from its output
    return [ToolUseBlock(id="toolu_bench_code", name="code_execution", input={"code": PTC_PROGRAM})]


def ptc_backend() -> ScriptedModel:
    """Writes ``print(1+1)`` for the code execution tool, then answers; stateless, so any number
    of requests can run it at once."""
    return ScriptedModel(_ptc_turn, name="scripted:bench-ptc", about="bench")


def in_process_request() -> ModelRequest:
    """The request the proxy hands the text backend for ``TEXT_BODY``."""
    return ModelRequest(
        system="", messages=(Message.user(PROMPT),), tools=(), max_tokens=MAX_TOKENS
    )


# -- the checks -----------------------------------------------------------------------------------
Check = Callable[[dict[str, Any]], str | None]


def check_text(body: dict[str, Any]) -> str | None:
    """What is wrong with a text-only response, or None."""
    content = body.get("content") or [{}]
    if body.get("stop_reason") != "end_turn" or content[-1].get("text") != TEXT_ANSWER:
        return f"unexpected response: {json.dumps(body)[:300]}"
    return None


def check_ptc(body: dict[str, Any]) -> str | None:
    """What is wrong with a PTC response (the program must have printed 2), or None."""
    types = [b.get("type") for b in body.get("content", [])]
    expected = ["server_tool_use", "code_execution_tool_result", "text"]
    if body.get("stop_reason") != "end_turn" or types != expected:
        return f"unexpected response: {json.dumps(body)[:300]}"
    result = body["content"][1]["content"]
    if result.get("stdout") != "2\n" or result.get("return_code") != 0:
        return f"the program did not print 2: {json.dumps(result)[:300]}"
    if not (body.get("container") or {}).get("id"):
        return "no container in the response"
    return None
