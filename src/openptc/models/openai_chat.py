"""OpenAI Chat Completions: api.openai.com, or any OpenAI-compatible server with ``local=True``.

The wire that local servers (vLLM, Ollama, LiteLLM, llama.cpp) speak too, so this adapter is the
one behind ``openai:`` and ``openai-compatible:`` model strings. Tool results become
``role: tool`` messages; a streamed answer is assembled from its chunks. The client, errors and
usage accounting are shared with the Responses adapter in ``openai_common``; settings are put in
the API's words by ``openai_settings``.

Reasoning. OpenAI returns none of its reasoning here (only a count). OpenAI-compatible servers
return it as text beside the answer: ``reasoning_content`` (DeepSeek, vLLM before 0.11) or
``reasoning`` (newer vLLM, Ollama), on the message and in stream deltas; whichever is present
becomes a ``ReasoningBlock(wire="openai-chat")``. It goes back as ``reasoning_content`` on the
assistant message that made tool calls, and only there: DeepSeek's thinking mode requires it
within a tool loop ("Missing `reasoning_content` field in the assistant message") and ignores it
on other turns (its older ``deepseek-reasoner`` refused it there); chat templates that render past
reasoning (Qwen3's) read that name; servers that do not use it ignore it.

Stop sequences. ``finish_reason`` is ``"stop"`` whether the model ended or a stop sequence cut it,
so ``stop_reason`` stays ``"end_turn"``, except with servers that name the stop string that fired
(vLLM's ``choices[].stop_reason``): then it is ``"stop_sequence"`` with ``stop_sequence`` set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openai import BaseModel
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)

from openptc.models.base import (
    Block,
    ModelRequest,
    ModelResponse,
    ReasoningBlock,
    StopReason,
    TextBlock,
    TextSink,
)
from openptc.models.errors import ModelServerError
from openptc.models.openai_common import (
    OPENAI_CHOICE,
    PROVIDER,
    OpenAIModelBase,
    call_arguments,
    result_text,
    split_usage,
    tool_use,
)
from openptc.models.openai_settings import chat_settings

REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Where OpenAI-compatible servers put reasoning text: DeepSeek and older vLLM, newer vLLM and
Ollama. Some send both with the same text: the first one present is taken."""

_FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


class OpenAIChatModel(OpenAIModelBase):
    """Chat Completions: OpenAI itself, or any OpenAI-compatible server with ``local=True``."""

    _prefix, _local_prefix, _api = "openai", "openai-compatible", "Chat Completions"

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        tools: list[ChatCompletionFunctionToolParam] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in request.tools
        ]
        # Older local servers only know max_tokens; OpenAI deprecated it for reasoning models.
        limit = "max_tokens" if self._local else "max_completion_tokens"
        args: dict[str, Any] = {
            "model": self._model,
            "messages": chat_messages(request),
            limit: request.max_tokens,
            **chat_settings(request, local=self._local),
        }
        if tools:  # an empty list is rejected by OpenAI
            args["tools"] = tools
            choice = request.tool_choice
            if choice is not None:
                args["tool_choice"] = (
                    {"type": "function", "function": {"name": choice.name}}
                    if choice.mode == "tool"
                    else OPENAI_CHOICE[choice.mode]
                )
        return args

    async def _once(self, args: dict[str, Any]) -> ModelResponse:
        completion: ChatCompletion = await self._client.chat.completions.create(**args)
        if not completion.choices:
            raise ModelServerError(f"{self.base_url} returned no choices", provider=PROVIDER)
        choice = completion.choices[0]
        message = choice.message
        turn = _ChatTurn(
            text=message.content or "",
            refusal=message.refusal or "",
            reasoning=reasoning_text(message),
            finish_reason=choice.finish_reason,
            stopped_by=_stop_string(choice),
            usage=completion.usage,
            model=completion.model or self._model,
            stops=args.get("stop") or (),
        )
        for call in message.tool_calls or ():
            if call.type == "function":
                turn.calls.append(_Call(call.id, call.function.name, call.function.arguments))
        return turn.response()

    async def _stream(self, args: dict[str, Any], on_text: TextSink) -> ModelResponse:
        stream = await self._client.chat.completions.create(
            **args, stream=True, stream_options={"include_usage": True}
        )
        turn = _ChatTurn(model=self._model, stops=args.get("stop") or ())
        calls: dict[int, _Call] = {}  # by index: a call's pieces share it
        async with stream:
            async for chunk in stream:
                turn.add_chunk(chunk, calls, on_text)
        if turn.finish_reason is None:
            # The SDK swallows ``data: [DONE]``; a finish_reason is what every complete
            # stream carries, and a dropped connection is not a finished answer.
            raise ModelServerError(
                f"{self.base_url}: the stream ended before the response was complete "
                "(no finish_reason)",
                provider=PROVIDER,
                status=None,
            )
        turn.calls = [calls[i] for i in sorted(calls)]
        return turn.response()


@dataclass
class _Call:
    """One tool call, possibly still arriving in pieces."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _ChatTurn:
    """One assistant turn as Chat Completions describes it, whole or assembled from chunks."""

    model: str
    text: str = ""
    refusal: str = ""
    reasoning: str = ""
    calls: list[_Call] = field(default_factory=list)
    finish_reason: str | None = None
    stopped_by: str | None = None  # the stop string, from servers that name it
    usage: CompletionUsage | None = None
    stops: Sequence[str] = ()  # the stop sequences asked for

    def add_chunk(
        self, chunk: ChatCompletionChunk, calls: dict[int, _Call], on_text: TextSink
    ) -> None:
        self.model = chunk.model or self.model
        self.usage = chunk.usage or self.usage  # the last chunk, with include_usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            self.reasoning += reasoning_text(delta)  # not shown: on_text is for the answer
            if delta.content:
                self.text += delta.content
                on_text(delta.content)
            if delta.refusal:
                self.refusal += delta.refusal
                on_text(delta.refusal)
            for piece in delta.tool_calls or ():
                call = calls.setdefault(piece.index, _Call())
                call.id = piece.id or call.id
                if piece.function is not None:
                    call.name += piece.function.name or ""
                    call.arguments += piece.function.arguments or ""
            self.finish_reason = choice.finish_reason or self.finish_reason
            self.stopped_by = _stop_string(choice) or self.stopped_by

    def response(self) -> ModelResponse:
        blocks: list[Block] = (
            [ReasoningBlock(self.reasoning, "openai-chat")] if self.reasoning else []
        )
        blocks += [TextBlock(t) for t in (self.text, self.refusal) if t]
        blocks += [tool_use(c.id, c.name, c.arguments) for c in self.calls]
        stop = _FINISH_REASONS.get(self.finish_reason or "stop", "end_turn")
        matched = None
        if self.refusal:
            stop = "refusal"
        elif self.calls and stop == "end_turn":  # some local servers say "stop" for tool calls
            stop = "tool_use"
        elif stop == "end_turn" and self.stopped_by in self.stops:
            stop, matched = "stop_sequence", self.stopped_by
        usage = None
        if self.usage is not None:
            prompt = self.usage.prompt_tokens_details
            output = self.usage.completion_tokens_details
            usage = split_usage(
                self.usage.prompt_tokens,
                self.usage.completion_tokens,
                prompt.cached_tokens if prompt else None,
                prompt.cache_write_tokens if prompt else None,
                output.reasoning_tokens if output else None,
                blocks,
            )
        return ModelResponse(tuple(blocks), stop, usage, self.model, matched)


def reasoning_text(part: BaseModel) -> str:
    """The reasoning text a server put beside the answer (a message, or a stream delta)."""
    extra = part.model_extra or {}
    for name in REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _stop_string(choice: BaseModel) -> str | None:
    """vLLM's ``stop_reason``: the stop string that ended the turn (a token id, or null, else)."""
    value = (choice.model_extra or {}).get("stop_reason")
    return value if isinstance(value, str) else None


def chat_messages(request: ModelRequest) -> list[ChatCompletionMessageParam]:
    """The conversation as Chat Completions messages: tool results become ``role: tool``."""
    messages: list[ChatCompletionMessageParam] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "assistant":
            calls: list[ChatCompletionMessageFunctionToolCallParam] = [
                {
                    "id": use.id,
                    "type": "function",
                    "function": {"name": use.name, "arguments": call_arguments(use)},
                }
                for use in message.tool_uses
            ]
            if calls:
                turn: dict[str, Any] = {
                    "role": "assistant",
                    "content": message.text or None,
                    "tool_calls": calls,
                }
                reasoning = "".join(b.text for b in message.reasoning if b.wire == "openai-chat")
                if reasoning:  # what DeepSeek's thinking mode needs back within a tool loop
                    turn["reasoning_content"] = reasoning
                messages.append(turn)  # type: ignore[arg-type]
            else:
                messages.append({"role": "assistant", "content": message.text})
            continue
        # Tool messages must directly follow the assistant turn that asked for them.
        for result in message.results:
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": result.tool_use_id,
                    "content": result_text(result),
                }
            )
        if message.text:
            messages.append({"role": "user", "content": message.text})
    return messages


__all__ = ["OpenAIChatModel", "chat_messages"]
