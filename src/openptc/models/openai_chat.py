"""OpenAI Chat Completions: api.openai.com, or any OpenAI-compatible server with ``local=True``.

The wire that local servers (vLLM, Ollama, LiteLLM, llama.cpp) speak too, so this adapter is the
one behind ``openai:`` and ``openai-compatible:`` model strings. Tool results become
``role: tool`` messages; a streamed answer is assembled from its chunks. The client, errors and
usage accounting are shared with the Responses adapter in ``openai_common``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
            finish_reason=choice.finish_reason,
            usage=completion.usage,
            model=completion.model or self._model,
        )
        for call in message.tool_calls or ():
            if call.type == "function":
                turn.calls.append(_Call(call.id, call.function.name, call.function.arguments))
        return turn.response()

    async def _stream(self, args: dict[str, Any], on_text: TextSink) -> ModelResponse:
        stream = await self._client.chat.completions.create(
            **args, stream=True, stream_options={"include_usage": True}
        )
        turn = _ChatTurn(model=self._model)
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
    calls: list[_Call] = field(default_factory=list)
    finish_reason: str | None = None
    usage: CompletionUsage | None = None

    def add_chunk(
        self, chunk: ChatCompletionChunk, calls: dict[int, _Call], on_text: TextSink
    ) -> None:
        self.model = chunk.model or self.model
        self.usage = chunk.usage or self.usage  # the last chunk, with include_usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
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

    def response(self) -> ModelResponse:
        blocks: list[Block] = [TextBlock(t) for t in (self.text, self.refusal) if t]
        blocks += [tool_use(c.id, c.name, c.arguments) for c in self.calls]
        stop = _FINISH_REASONS.get(self.finish_reason or "stop", "end_turn")
        if self.refusal:
            stop = "refusal"
        elif self.calls and stop == "end_turn":  # some local servers say "stop" for tool calls
            stop = "tool_use"
        usage = None
        if self.usage is not None:
            details = self.usage.prompt_tokens_details
            usage = split_usage(
                self.usage.prompt_tokens,
                self.usage.completion_tokens,
                details.cached_tokens if details else None,
                details.cache_write_tokens if details else None,
            )
        return ModelResponse(tuple(blocks), stop, usage, self.model)


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
                messages.append(
                    {"role": "assistant", "content": message.text or None, "tool_calls": calls}
                )
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
