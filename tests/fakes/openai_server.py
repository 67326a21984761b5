"""A fake OpenAI API: ``POST /v1/chat/completions`` and ``POST /v1/responses``, JSON and SSE.

Bodies, stream framing, ids, error bodies and bearer auth follow what api.openai.com sends and
the ``openai`` SDK parses. The wire request is read back into a normalized ``ModelRequest`` by a
parser of its own (``openai_wire``, not the adapter's mapping, which is what is under test), a
brain decides the turn (``openai_answer``), and the turn is rendered in the API's shape
(``openai_chat_server``, ``openai_responses_server``). Usage is counted with
``openptc.models.tokens``; a prompt whose system text and tools were seen before with the same
``prompt_cache_key`` reports them as cached, as OpenAI's prefix cache would.

Reasoning is returned when asked for (Chat's ``reasoning_effort``, the Responses API's
``reasoning``): OpenAI's Chat Completions only bills it, the Responses API returns summary items
with encrypted content (and refuses a request that drops or alters them), a ``local`` server
(``openai_chat_server.Local``) returns it as text.

A brain asks for malformed arguments by returning a ``ToolUseBlock`` whose ``raw_input`` is set:
that string goes on the wire verbatim. Tool-call ids are the brain's ids made to look like
OpenAI's (``call_...``); the brain sees them so in the next request.

``app.state.served`` lists the usage of every answer (``prompt``, ``cached``, ``completion``,
``reasoning``); ``app.state.reasoning`` what it returned as reasoning (Responses: the items as
sent; Chat: the text).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openptc.models.base import ModelRequest
from openptc.models.scripted import Policy, Turn
from openptc.models.tokens import count_message_tokens, count_spec_tokens, count_text

from .harness import Fault, Recorder
from .openai_answer import Answer, summary_tokens, think, visible_tokens
from .openai_chat_server import ChatReasoning, Local, chat_chunks, chat_completion
from .openai_responses_server import ReasoningLedger, ResponseObject
from .openai_wire import (
    WireError,
    error_body,
    new_id,
    parse_chat,
    parse_responses,
    sse,
    stop_sequences,
    stream,
)

__all__ = ["BrokenStream", "Local", "WireError", "error_body", "openai_app"]


# --- broken streams ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenStream(Fault):
    """A 200 stream of ``api`` (``"chat"`` or ``"responses"``) that sends ``text`` as one delta
    and then, if ``body`` holds an error, that error as the API sends one mid-stream (chat: a
    ``data: {"error": ...}`` chunk; responses: an ``error`` event); with an empty ``body`` the
    stream just ends there, with no finish_reason, ``[DONE]`` or ``response.completed``."""

    api: str = "chat"
    text: str = ""

    def response(self) -> Response:
        return stream(self._events(), {"x-request-id": new_id("req_", 32)})

    def _events(self) -> Iterator[str]:
        if self.api == "chat":
            head = {
                "id": new_id("chatcmpl-", 29),
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "gpt-4.1",
            }
            for delta in ({"role": "assistant", "content": ""}, {"content": self.text}):
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                yield sse({**head, "choices": [choice]})
            if self.body:
                yield sse(self.body)
            return
        error = self.body.get("error", {})
        reply = ResponseObject(Answer(self.text, 1, 0), {"model": "gpt-4.1"})
        for number, line in enumerate(reply.events()):
            if '"response.output_text.done"' in line or '"response.completed"' in line:
                if error:
                    fields = {"code": error.get("code"), "message": error.get("message")}
                    kind = {"type": "error", "sequence_number": number, "param": None}
                    yield sse({**kind, **fields}, "error")
                return
            yield line


# --- the app -----------------------------------------------------------------------------------


def _unauthorized(request: Request, api_key: str | None) -> Response | None:
    if api_key is None:
        return None
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given == api_key:
        return None
    if not given:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return JSONResponse(error_body(message, "invalid_request_error"), status_code=401)
    masked = given[:3] + "*" * max(0, len(given) - 7) + given[-4:]
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    body = error_body(message, "invalid_request_error", code="invalid_api_key")
    return JSONResponse(body, status_code=401)


class _Meter:
    """Prompt tokens of a request, the part of them cached, and what every answer cost."""

    def __init__(self) -> None:
        self.seen_prefixes: set[str] = set()
        self.message_tokens: dict[str, int] = {}  # a conversation re-sends its messages
        self.served: list[dict[str, int]] = []

    def prompt(self, request: ModelRequest, cache_key: str | None) -> tuple[int, int]:
        # ``count_request_tokens``, part by part: system and tools, then each message.
        fixed = count_text(request.system) + sum(count_spec_tokens(t) for t in request.tools)
        prompt = fixed
        for message in request.messages:
            key = repr(message)
            if key not in self.message_tokens:
                self.message_tokens[key] = count_message_tokens(message)
            prompt += self.message_tokens[key]
        # OpenAI caches a prompt's longest previously seen prefix (system and tools lead), on
        # the machine that ``prompt_cache_key`` routes to.
        prefix = json.dumps([cache_key, request.system, [t.name for t in request.tools]])
        cached = fixed if prefix in self.seen_prefixes else 0
        self.seen_prefixes.add(prefix)
        return prompt, cached

    def record(self, answer: Answer) -> Answer:
        self.served.append(
            {
                "prompt": answer.prompt,
                "cached": answer.cached,
                "completion": answer.completion,
                "reasoning": answer.reasoning_tokens,
            }
        )
        return answer


def openai_app(
    brain: Policy,
    recorder: Recorder,
    *,
    api_key: str | None = None,
    local: Local | None = None,
    secret: bytes | None = None,
) -> Starlette:
    """The fake API, answering with ``brain``; with ``api_key`` every request must bear it.

    ``local`` makes Chat Completions an OpenAI-compatible server's; ``secret`` keys the
    signatures of reasoning items (a fresh one by default)."""
    meter = _Meter()
    ledger = ReasoningLedger(secret or secrets.token_bytes(32))
    chat_reasoning = ChatReasoning()
    reasoning: list[Any] = []

    async def gate(request: Request) -> tuple[dict[str, Any], Response | None]:
        body = await recorder.record(request)
        refused = recorder.next_fault() or _unauthorized(request, api_key)
        if refused is None and not isinstance(body, dict):
            refused = JSONResponse(
                error_body(
                    "We could not parse the JSON body of your request.", "invalid_request_error"
                ),
                status_code=400,
            )
        return (body if isinstance(body, dict) else {}), refused

    def rejected(error: WireError) -> Response:
        body = error_body(str(error), error.kind, error.param, error.code)
        return JSONResponse(body, status_code=error.status)

    def broken(error: Exception) -> Response:
        message = f"The server had an error while processing your request. ({error!r})"
        return JSONResponse(error_body(message, "server_error"), status_code=500)

    def headers() -> dict[str, str]:
        return {"x-request-id": new_id("req_", 32), "openai-processing-ms": "12"}

    async def handle(request: Request, make: Callable[[dict[str, Any]], Response]) -> Response:
        body, refused = await gate(request)
        if refused is not None:
            return refused
        try:
            return make(body)
        except WireError as error:
            return rejected(error)
        except Exception as error:  # a failing brain: say why, as a 500 the client can read
            return broken(error)

    def chat_answer(body: dict[str, Any]) -> Response:
        if local is not None and local.requires_reasoning_back:
            chat_reasoning.check(body)
        parsed = parse_chat(body)
        turn: Turn = brain(parsed)
        parts = think(parsed, turn) if body.get("reasoning_effort") else []
        text = "\n\n".join(parts)
        tokens = visible_tokens(text) if local is not None else summary_tokens(parts)
        prompt, cached = meter.prompt(parsed, body.get("prompt_cache_key"))
        answer = meter.record(
            Answer(
                turn,
                prompt,
                cached,
                reasoning=parts,
                reasoning_tokens=tokens,
                stops=stop_sequences(body),
            )
        )
        if local is not None and text:
            reasoning.append(text)
            chat_reasoning.remember(answer, text)
        model = body["model"]
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return stream(chat_chunks(answer, model, include, local), headers())
        return JSONResponse(chat_completion(answer, model, local), headers=headers())

    def responses_answer(body: dict[str, Any]) -> Response:
        ledger.check(body)
        parsed = parse_responses(body)
        turn: Turn = brain(parsed)
        parts = think(parsed, turn) if (body.get("reasoning") or {}).get("effort") else []
        prompt, cached = meter.prompt(parsed, body.get("prompt_cache_key"))
        answer = Answer(
            turn, prompt, cached, reasoning=parts, reasoning_tokens=summary_tokens(parts)
        )
        reply = ResponseObject(meter.record(answer), body, ledger)
        if reply.reasoning is not None:
            reasoning.append(reply.reasoning)
        if body.get("stream"):
            return stream(reply.events(), headers())
        return JSONResponse(reply.state(done=True), headers=headers())

    async def chat(request: Request) -> Response:
        return await handle(request, chat_answer)

    async def responses(request: Request) -> Response:
        return await handle(request, responses_answer)

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
        ]
    )
    app.state.served = meter.served
    app.state.reasoning = reasoning
    return app
