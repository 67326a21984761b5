"""``/v1/chat/completions`` of the fake: OpenAI's, or an OpenAI-compatible server's (``Local``).

OpenAI's Chat Completions shows no reasoning: with ``reasoning_effort`` it only bills reasoning
tokens (``completion_tokens_details.reasoning_tokens``). OpenAI-compatible servers return the
reasoning as text beside the answer, each in its own way; ``Local`` says which:

- ``DEEPSEEK``: ``reasoning_content``, a reasoning token count, and within a tool loop the
  reasoning must come back on the assistant message that made the calls, or the request is
  refused with DeepSeek's 400 ("Missing `reasoning_content` field in the assistant message...");
- ``VLLM``: ``reasoning`` (vLLM 0.11 on, Ollama), no reasoning token count, and the stop string
  that ended a turn named in ``choices[].stop_reason``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .openai_answer import Answer
from .openai_wire import WireError, new_id, pieces, sse

DEEPSEEK_DOCS = "https://api-docs.deepseek.com/guides/thinking_mode#tool-calls"


@dataclass(frozen=True)
class Local:
    """How an OpenAI-compatible server says reasoning (see the module's docstring)."""

    reasoning_fields: tuple[str, ...] = ("reasoning_content",)
    reports_reasoning_tokens: bool = True
    requires_reasoning_back: bool = False
    names_stop_string: bool = False


DEEPSEEK = Local(("reasoning_content",), requires_reasoning_back=True)
VLLM = Local(("reasoning",), reports_reasoning_tokens=False, names_stop_string=True)


@dataclass
class ChatReasoning:
    """Reasoning the fake returned with tool calls, by the first call's id, to demand it back."""

    by_call: dict[str, str] = field(default_factory=dict)

    def remember(self, answer: Answer, text: str) -> None:
        if answer.calls and text:
            self.by_call[answer.calls[0][0]] = text

    def check(self, body: dict[str, Any]) -> None:
        """DeepSeek's rule: a tool-calling turn that reasoned carries its reasoning_content."""
        for index, message in enumerate(body.get("messages") or []):
            calls = message.get("tool_calls") or []
            if message.get("role") != "assistant" or not calls:
                continue
            if calls[0].get("id") in self.by_call and not message.get("reasoning_content"):
                raise WireError(
                    f"Missing `reasoning_content` field in the assistant message at message "
                    f"index {index}. For more information, please refer to {DEEPSEEK_DOCS}",
                    code="invalid_request_error",
                )


_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def _usage(answer: Answer, local: Local | None) -> dict[str, Any]:
    details: dict[str, Any] | None = {
        "reasoning_tokens": answer.reasoning_tokens,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    if local is not None and not local.reports_reasoning_tokens:
        details = None
    return {
        "prompt_tokens": answer.prompt,
        "completion_tokens": answer.completion,
        "total_tokens": answer.prompt + answer.completion,
        "prompt_tokens_details": {"cached_tokens": answer.cached, "audio_tokens": 0},
        "completion_tokens_details": details,
    }


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"id": i, "type": "function", "function": {"name": name, "arguments": arguments}}
        for i, name, arguments in answer.calls
    ]


def _reasoning_fields(answer: Answer, local: Local | None, text: str) -> dict[str, str]:
    if local is None or not answer.reasoning:
        return {}
    return {name: text for name in local.reasoning_fields}


def _choice_extra(answer: Answer, local: Local | None) -> dict[str, Any]:
    if local is not None and local.names_stop_string:
        return {"stop_reason": answer.stop_sequence}
    return {}


def chat_completion(answer: Answer, model: str, local: Local | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text or None,
        "refusal": None,
        "annotations": [],
        **_reasoning_fields(answer, local, "\n\n".join(answer.reasoning)),
    }
    if answer.calls:
        message["tool_calls"] = _tool_calls(answer)
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _FINISH[answer.stop],
        **_choice_extra(answer, local),
    }
    return {
        "id": new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(answer, local),
        "service_tier": "default",
        "system_fingerprint": "fp_" + secrets.token_hex(5),
    }


def chat_chunks(
    answer: Answer, model: str, include_usage: bool, local: Local | None
) -> Iterator[str]:
    """The SSE body of a streamed completion, ``data: [DONE]`` last."""
    head = {
        "id": new_id("chatcmpl-", 29),
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
        if finish is not None:
            choice.update(_choice_extra(answer, local))
        return sse({**head, "choices": [choice]})

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in pieces("\n\n".join(answer.reasoning)):
        if fields := _reasoning_fields(answer, local, piece):
            yield chunk(fields)
    for piece in pieces(answer.text):
        yield chunk({"content": piece})
    for index, (call_id, name, arguments) in enumerate(answer.calls):
        first = {"index": index, "id": call_id, "type": "function"}
        yield chunk({"tool_calls": [{**first, "function": {"name": name, "arguments": ""}}]})
        for piece in pieces(arguments, size=40):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, _FINISH[answer.stop])
    if include_usage:
        yield sse({**head, "choices": [], "usage": _usage(answer, local)})
    yield "data: [DONE]\n\n"
