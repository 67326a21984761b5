"""A fake OpenAI API: ``POST /v1/chat/completions`` and ``POST /v1/responses``, JSON and SSE.

Bodies, stream framing, ids, error bodies and bearer auth follow what api.openai.com sends and
the ``openai`` SDK parses. The wire request is read back into a normalized ``ModelRequest`` by a
parser of its own (not the adapter's mapping, which is what is under test), a brain decides the
turn, and the turn is rendered in the API's shape. Usage is counted with ``openptc.models.tokens``;
a prompt whose system text and tools were seen before reports them as cached, as OpenAI's
prefix cache would.

A brain asks for malformed arguments by returning a ``ToolUseBlock`` whose ``raw_input`` is set:
that string goes on the wire verbatim. Tool-call ids are the brain's ids made to look like
OpenAI's (``call_...``); the brain sees them so in the next request.

``app.state.served`` lists the usage of every answer (``prompt``, ``cached``, ``completion``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openptc.models.base import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    Role,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.scripted import Policy, Turn
from openptc.models.tokens import (
    count_message_tokens,
    count_response_tokens,
    count_spec_tokens,
    count_text,
)

from .harness import Fault, Recorder


class WireError(Exception):
    """A request OpenAI would reject with 400; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> Any:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _new_id(prefix: str, n: int = 24) -> str:
    return prefix + secrets.token_hex(n)[:n]


def wire_call_id(brain_id: str) -> str:
    """A brain's tool-use id as OpenAI would spell it; stable, so transcripts compare equal."""
    if brain_id.startswith("call_"):
        return brain_id
    return "call_" + hashlib.sha256(brain_id.encode()).hexdigest()[:24]


# --- wire -> normalized (the fake's own parser) -------------------------------------------------


def _text_of(content: Any) -> str:
    """Message content as text: a string, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def _parse_arguments(call_id: str, name: str, arguments: str) -> ToolUseBlock:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return ToolUseBlock(call_id, name, {}, raw_input=arguments, input_error="invalid JSON")
    if not isinstance(value, dict):
        return ToolUseBlock(call_id, name, {}, raw_input=arguments, input_error="not an object")
    return ToolUseBlock(call_id, name, value)


class _Conversation:
    """Builds normalized messages, merging consecutive blocks of one role into one message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.open_calls: set[str] = set()

    def add(self, role: str, block: Block) -> None:
        if role not in ("user", "assistant"):
            raise WireError(f"Invalid value: '{role}'. Supported values are: 'user', 'assistant'.")
        if isinstance(block, ToolUseBlock):
            self.open_calls.add(block.id)
        if isinstance(block, ToolResultBlock):
            if block.tool_use_id not in self.open_calls:
                raise WireError(
                    f"No tool call found for function call output with call_id "
                    f"{block.tool_use_id}.",
                    "input",
                )
            self.open_calls.discard(block.tool_use_id)
        last = self.messages[-1] if self.messages else None
        # Tool results and the user's words are separate turns for the brain, as in the agent.
        same_kind = last is not None and isinstance(block, ToolResultBlock) == bool(last.results)
        if last is not None and last.role == role and same_kind:
            self.messages[-1] = Message(last.role, (*last.content, block))
        else:
            self.messages.append(Message(cast(Role, role), (block,)))


def parse_chat(body: dict[str, Any]) -> ModelRequest:
    """A ``/v1/chat/completions`` body as a normalized request."""
    if not isinstance(body.get("model"), str):
        raise WireError("you must provide a model parameter", "model")
    system: list[str] = []
    talk = _Conversation()
    for index, m in enumerate(body.get("messages") or []):
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(m.get("content")))
        elif role == "tool":
            if m.get("tool_call_id") not in talk.open_calls:
                raise WireError(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            talk.add("user", ToolResultBlock(m["tool_call_id"], _text_of(m.get("content"))))
        elif role == "assistant":
            if text := _text_of(m.get("content")):
                talk.add("assistant", TextBlock(text))
            for call in m.get("tool_calls") or []:
                function = call["function"]
                use = _parse_arguments(call["id"], function["name"], function["arguments"])
                talk.add("assistant", use)
        else:
            talk.add(role, TextBlock(_text_of(m.get("content"))))
    if not talk.messages:
        raise WireError("[] is too short - 'messages'", "messages")
    tools = tuple(
        ToolSpec(
            t["function"]["name"],
            t["function"].get("description", ""),
            t["function"].get("parameters", {}),
        )
        for t in body.get("tools") or []
    )
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 4096
    return ModelRequest("\n".join(system), tuple(talk.messages), tools, limit)


def parse_responses(body: dict[str, Any]) -> ModelRequest:
    """A ``/v1/responses`` body as a normalized request."""
    if not isinstance(body.get("model"), str):
        raise WireError("Missing required parameter: 'model'.", "model")
    items = body.get("input") or []
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    talk = _Conversation()
    system: list[str] = [body["instructions"]] if body.get("instructions") else []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("system", "developer"):
            system.append(_text_of(item.get("content")))
        elif kind == "message":
            talk.add(item.get("role"), TextBlock(_text_of(item.get("content"))))
        elif kind == "function_call":
            use = _parse_arguments(item["call_id"], item["name"], item["arguments"])
            talk.add("assistant", use)
        elif kind == "function_call_output":
            talk.add("user", ToolResultBlock(item["call_id"], _text_of(item.get("output"))))
        else:
            raise WireError(f"Invalid value: '{kind}'.", "input")
    tools = tuple(
        ToolSpec(t["name"], t.get("description") or "", t.get("parameters") or {})
        for t in body.get("tools") or []
    )
    limit = body.get("max_output_tokens") or 4096
    return ModelRequest("\n".join(system), tuple(talk.messages), tools, limit)


# --- the brain's turn, rendered ----------------------------------------------------------------


class _Answer:
    """A brain's turn with the wire's ids and the fake's usage figures."""

    def __init__(self, turn: Turn, prompt: int, cached: int) -> None:
        self.stop: StopReason
        if isinstance(turn, ModelResponse):
            blocks, self.stop = turn.content, turn.stop_reason
        else:
            blocks = (TextBlock(turn),) if isinstance(turn, str) else tuple(turn)
            uses = any(isinstance(b, ToolUseBlock) for b in blocks)
            self.stop = "tool_use" if uses else "end_turn"
        self.text = "".join(b.text for b in blocks if isinstance(b, TextBlock))
        self.calls = [
            (wire_call_id(b.id), b.name, _wire_arguments(b))
            for b in blocks
            if isinstance(b, ToolUseBlock)
        ]
        self.prompt = prompt
        self.cached = min(cached, prompt)
        self.completion = count_response_tokens(ModelResponse(tuple(blocks), self.stop, None, ""))


def _wire_arguments(use: ToolUseBlock) -> str:
    if use.raw_input is not None:
        return use.raw_input
    return json.dumps(use.input, separators=(",", ":"), ensure_ascii=False)


def _pieces(text: str, size: int = 0) -> list[str]:
    """Stream pieces: word by word for prose, fixed-size slices for JSON arguments."""
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return re.findall(r"\s*\S+|\s+", text)


def _sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


_CHAT_FINISH = {
    "end_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def _chat_usage(answer: _Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.prompt,
        "completion_tokens": answer.completion,
        "total_tokens": answer.prompt + answer.completion,
        "prompt_tokens_details": {"cached_tokens": answer.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_tool_calls(answer: _Answer) -> list[dict[str, Any]]:
    return [
        {"id": i, "type": "function", "function": {"name": name, "arguments": arguments}}
        for i, name, arguments in answer.calls
    ]


def chat_completion(answer: _Answer, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text or None,
        "refusal": None,
        "annotations": [],
    }
    if answer.calls:
        message["tool_calls"] = _chat_tool_calls(answer)
    return {
        "id": _new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _CHAT_FINISH[answer.stop],
            }
        ],
        "usage": _chat_usage(answer),
        "service_tier": "default",
        "system_fingerprint": "fp_" + secrets.token_hex(5),
    }


def chat_chunks(answer: _Answer, model: str, include_usage: bool) -> Iterator[str]:
    """The SSE body of a streamed completion, ``data: [DONE]`` last."""
    head = {
        "id": _new_id("chatcmpl-", 29),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_" + secrets.token_hex(5),
    }
    if include_usage:
        head["usage"] = None  # every chunk carries the key; only the last has a value

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**head, "choices": [choice]})

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in _pieces(answer.text):
        yield chunk({"content": piece})
    for index, (call_id, name, arguments) in enumerate(answer.calls):
        first = {"index": index, "id": call_id, "type": "function"}
        yield chunk({"tool_calls": [{**first, "function": {"name": name, "arguments": ""}}]})
        for piece in _pieces(arguments, size=40):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, _CHAT_FINISH[answer.stop])
    if include_usage:
        yield _sse({**head, "choices": [], "usage": _chat_usage(answer)})
    yield "data: [DONE]\n\n"


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def _call_item(item_id: str, call: tuple[str, str, str], status: str) -> dict[str, Any]:
    call_id, name, arguments = call
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments if status == "completed" else "",
    }


class _ResponseObject:
    """One ``response`` object in its successive states, as the stream and JSON show it."""

    def __init__(self, answer: _Answer, body: dict[str, Any]) -> None:
        self.answer, self.body = answer, body
        self.id = _new_id("resp_", 48)
        self.created = int(time.time())
        self.message_id = _new_id("msg_", 48) if answer.text else None
        self.call_ids = [_new_id("fc_", 48) for _ in answer.calls]

    def items(self, status: str) -> list[dict[str, Any]]:
        found = []
        if self.message_id:
            found.append(_message_item(self.message_id, self.answer.text, status))
        for item_id, call in zip(self.call_ids, self.answer.calls, strict=True):
            found.append(_call_item(item_id, call, status))
        return found

    def state(self, done: bool) -> dict[str, Any]:
        a = self.answer
        status, incomplete = "in_progress", None
        if done:
            status = "completed"
            if a.stop in ("max_tokens", "refusal"):
                status = "incomplete"
                reason = "max_output_tokens" if a.stop == "max_tokens" else "content_filter"
                incomplete = {"reason": reason}
        usage = None
        if done:
            usage = {
                "input_tokens": a.prompt,
                "input_tokens_details": {"cached_tokens": a.cached, "cache_write_tokens": 0},
                "output_tokens": a.completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": a.prompt + a.completion,
            }
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": self.body.get("instructions"),
            "max_output_tokens": self.body.get("max_output_tokens"),
            "model": self.body["model"],
            "output": self.items("completed") if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": self.body.get("store", True),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": self.body.get("tools") or [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    def events(self) -> Iterator[str]:
        """``response.created`` … deltas … ``response.completed``, numbered in sequence."""
        counter = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> str:
            return _sse({"type": kind, "sequence_number": next(counter), **fields}, kind)

        yield event("response.created", response=self.state(done=False))
        yield event("response.in_progress", response=self.state(done=False))
        where = {"output_index": 0}
        if self.message_id:
            text = self.answer.text
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            ids = {"item_id": self.message_id, **where}
            item = _message_item(self.message_id, text, "in_progress")
            yield event("response.output_item.added", item=item, **where)
            yield event("response.content_part.added", content_index=0, part=part, **ids)
            for piece in _pieces(text):
                yield event(
                    "response.output_text.delta", content_index=0, delta=piece, logprobs=[], **ids
                )
            yield event("response.output_text.done", content_index=0, text=text, logprobs=[], **ids)
            done_part = {**part, "text": text}
            yield event("response.content_part.done", content_index=0, part=done_part, **ids)
            item = _message_item(self.message_id, text, "completed")
            yield event("response.output_item.done", item=item, **where)
            where = {"output_index": 1}
        for item_id, call in zip(self.call_ids, self.answer.calls, strict=True):
            ids = {"item_id": item_id, **where}
            yield event(
                "response.output_item.added", item=_call_item(item_id, call, "in_progress"), **where
            )
            for piece in _pieces(call[2], size=40):
                yield event("response.function_call_arguments.delta", delta=piece, **ids)
            yield event("response.function_call_arguments.done", arguments=call[2], **ids)
            yield event(
                "response.output_item.done", item=_call_item(item_id, call, "completed"), **where
            )
            where = {"output_index": where["output_index"] + 1}
        final = self.state(done=True)
        terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
        yield event(terminal, response=final)


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
        return _stream(self._events(), {"x-request-id": _new_id("req_", 32)})

    def _events(self) -> Iterator[str]:
        if self.api == "chat":
            head = {
                "id": _new_id("chatcmpl-", 29),
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "gpt-4.1",
            }
            for delta in ({"role": "assistant", "content": ""}, {"content": self.text}):
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                yield _sse({**head, "choices": [choice]})
            if self.body:
                yield _sse(self.body)
            return
        error = self.body.get("error", {})
        answer = _Answer(self.text, 1, 0)
        reply = _ResponseObject(answer, {"model": "gpt-4.1"})
        for number, line in enumerate(reply.events()):
            if '"response.output_text.done"' in line or '"response.completed"' in line:
                if error:
                    fields = {"code": error.get("code"), "message": error.get("message")}
                    kind = {"type": "error", "sequence_number": number, "param": None}
                    yield _sse({**kind, **fields}, "error")
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


def openai_app(brain: Policy, recorder: Recorder, *, api_key: str | None = None) -> Starlette:
    """The fake API, answering with ``brain``; with ``api_key`` every request must bear it."""
    seen_prefixes: set[str] = set()
    served: list[dict[str, int]] = []

    message_tokens: dict[str, int] = {}  # a conversation re-sends its messages: count once

    def answer(request: ModelRequest) -> _Answer:
        # ``count_request_tokens``, part by part: system and tools, then each message.
        fixed = count_text(request.system) + sum(count_spec_tokens(t) for t in request.tools)
        prompt = fixed
        for message in request.messages:
            key = repr(message)
            if key not in message_tokens:
                message_tokens[key] = count_message_tokens(message)
            prompt += message_tokens[key]
        # OpenAI caches a prompt's longest previously seen prefix; system and tools lead.
        prefix = json.dumps([request.system, [t.name for t in request.tools]])
        cached = fixed if prefix in seen_prefixes else 0
        seen_prefixes.add(prefix)
        result = _Answer(brain(request), prompt, cached)
        served.append(
            {"prompt": result.prompt, "cached": result.cached, "completion": result.completion}
        )
        return result

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
        body = error_body(str(error), "invalid_request_error", error.param)
        return JSONResponse(body, status_code=400)

    def broken(error: Exception) -> Response:
        message = f"The server had an error while processing your request. ({error!r})"
        return JSONResponse(error_body(message, "server_error"), status_code=500)

    def headers() -> dict[str, str]:
        return {"x-request-id": _new_id("req_", 32), "openai-processing-ms": "12"}

    async def chat(request: Request) -> Response:
        body, refused = await gate(request)
        if refused is not None:
            return refused
        try:
            reply = answer(parse_chat(body))
        except WireError as error:
            return rejected(error)
        except Exception as error:  # a failing brain: say why, as a 500 the client can read
            return broken(error)
        model = body["model"]
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return _stream(chat_chunks(reply, model, include), headers())
        return JSONResponse(chat_completion(reply, model), headers=headers())

    async def responses(request: Request) -> Response:
        body, refused = await gate(request)
        if refused is not None:
            return refused
        try:
            reply = _ResponseObject(answer(parse_responses(body)), body)
        except WireError as error:
            return rejected(error)
        except Exception as error:
            return broken(error)
        if body.get("stream"):
            return _stream(reply.events(), headers())
        return JSONResponse(reply.state(done=True), headers=headers())

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
        ]
    )
    app.state.served = served
    return app


def _stream(lines: Iterator[str], headers: dict[str, str]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        for line in lines:
            yield line

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
