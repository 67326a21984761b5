"""OpenAI's Responses API, used statelessly (``store=False``): the whole conversation each time.

Behind ``openai-responses:`` model strings. The conversation goes as input items in block order,
the system prompt as ``instructions``; a streamed answer is taken from its final
``response.completed`` (or ``incomplete``/``failed``) event. The client, errors and usage
accounting are shared with the Chat Completions adapter in ``openai_common``; settings are put in
the API's words by ``openai_settings``.

Reasoning. A ``reasoning`` output item (id, summary parts, encrypted content) becomes one
``ReasoningBlock(wire="openai-responses")`` per summary part, in order, each with the item's
``id``; the first also holds its ``encrypted_content`` (an item without a summary is one block
with empty text). Going back, consecutive blocks with one id make one input item again, with the
summary parts as they came, before the function call they preceded: the API refuses a function
call without its reasoning item ("... was provided without its required 'reasoning' item").
With ``store=False`` only the encrypted content lets the API resolve a reasoning item, so an item
that came back without it (reasoning that was not asked for, without
``include=["reasoning.encrypted_content"]``) is left out: the API would answer 404
("Items are not persisted when `store` is set to false").
"""

from __future__ import annotations

from typing import Any

from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInputItemParam,
    ResponseReasoningItem,
    ResponseReasoningItemParam,
    ResponseRefusalDeltaEvent,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response_reasoning_item_param import Summary

from openptc.models.base import (
    Block,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ReasoningBlock,
    StopReason,
    TextBlock,
    TextSink,
    ToolResultBlock,
    ToolUseBlock,
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
from openptc.models.openai_settings import responses_settings


class OpenAIResponsesModel(OpenAIModelBase):
    """The Responses API, stateless (``store=False``): the whole conversation goes each time."""

    _prefix = _local_prefix = "openai-responses"
    _api = "Responses API"

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        tools: list[FunctionToolParam] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
                "strict": False,  # strict mode needs every property required; ours may be optional
            }
            for t in request.tools
        ]
        args: dict[str, Any] = {
            "model": self._model,
            "input": responses_input(request),
            "max_output_tokens": request.max_tokens,
            "store": False,
            **responses_settings(request, local=self._local),
        }
        if request.system:
            args["instructions"] = request.system
        if tools:
            args["tools"] = tools
            choice = request.tool_choice
            if choice is not None:
                args["tool_choice"] = (
                    {"type": "function", "name": choice.name}
                    if choice.mode == "tool"
                    else OPENAI_CHOICE[choice.mode]
                )
        return args

    async def _once(self, args: dict[str, Any]) -> ModelResponse:
        response: Response = await self._client.responses.create(**args)
        return self._to_model_response(response)

    async def _stream(self, args: dict[str, Any], on_text: TextSink) -> ModelResponse:
        stream = await self._client.responses.create(**args, stream=True)
        final: Response | None = None
        async with stream:
            async for event in stream:
                if isinstance(event, ResponseTextDeltaEvent | ResponseRefusalDeltaEvent):
                    on_text(event.delta)
                elif isinstance(
                    event, ResponseCompletedEvent | ResponseIncompleteEvent | ResponseFailedEvent
                ):
                    final = event.response
                elif isinstance(event, ResponseErrorEvent):
                    raise ModelServerError(
                        f"{self.base_url}: {event.message} ({event.code})",
                        provider=PROVIDER,
                        status=None,
                    )
        if final is None:
            raise ModelServerError(
                f"{self.base_url}: the stream ended before the response was complete "
                "(no response.completed)",
                provider=PROVIDER,
                status=None,
            )
        return self._to_model_response(final)

    def _to_model_response(self, response: Response) -> ModelResponse:
        if response.status in ("failed", "cancelled"):
            said = response.error.message if response.error else "no reason given"
            raise ModelServerError(
                f"{self.base_url}: the response {response.status}: {said}",
                provider=PROVIDER,
                status=None,
            )
        blocks: list[Block] = []
        refused = False
        for item in response.output:
            if item.type == "message":
                for part in item.content:
                    if part.type == "output_text":
                        blocks.append(TextBlock(part.text))
                    else:
                        blocks.append(TextBlock(part.refusal))
                        refused = True
            elif item.type == "function_call":
                blocks.append(tool_use(item.call_id, item.name, item.arguments))
            elif item.type == "reasoning":
                blocks += reasoning_blocks(item)
        stop: StopReason = "end_turn"
        reason = response.incomplete_details.reason if response.incomplete_details else None
        if refused or reason == "content_filter":
            stop = "refusal"
        elif response.status == "incomplete":
            stop = "max_tokens"  # cut short, whatever the limit that did it
        elif any(isinstance(b, ToolUseBlock) for b in blocks):
            stop = "tool_use"
        usage = _responses_usage(response.usage, blocks)
        return ModelResponse(tuple(blocks), stop, usage, response.model)


def _responses_usage(usage: ResponseUsage | None, blocks: list[Block]) -> ModelUsage | None:
    if usage is None:
        return None
    details = usage.input_tokens_details
    output = usage.output_tokens_details
    return split_usage(
        usage.input_tokens,
        usage.output_tokens,
        details.cached_tokens if details else None,
        details.cache_write_tokens if details else None,
        output.reasoning_tokens if output else None,
        blocks,
    )


def reasoning_blocks(item: ResponseReasoningItem) -> list[ReasoningBlock]:
    """One block per summary part, all with the item's id; the first holds the encrypted
    content (see the module's docstring)."""
    parts = [part.text for part in item.summary] or [""]
    return [
        ReasoningBlock(
            text,
            "openai-responses",
            id=item.id,
            encrypted=item.encrypted_content if index == 0 else None,
        )
        for index, text in enumerate(parts)
    ]


def _reasoning_item(blocks: list[ReasoningBlock]) -> ResponseReasoningItemParam | None:
    """The input item that ``blocks`` (one item's, in order) came from; None without the
    encrypted content that a stateless request needs."""
    encrypted = next((b.encrypted for b in blocks if b.encrypted is not None), None)
    if encrypted is None or blocks[0].id is None:
        return None
    summary: list[Summary] = [{"type": "summary_text", "text": b.text} for b in blocks if b.text]
    return {
        "type": "reasoning",
        "id": blocks[0].id,
        "summary": summary,
        "encrypted_content": encrypted,
    }


def responses_input(request: ModelRequest) -> list[ResponseInputItemParam]:
    """The conversation as Responses input items, in block order; reasoning of other APIs is
    left out."""
    items: list[ResponseInputItemParam] = []
    thinking: list[ReasoningBlock] = []  # the parts of one reasoning item, gathered

    def flush() -> None:
        if thinking and (item := _reasoning_item(thinking)) is not None:
            items.append(item)
        thinking.clear()

    for message in request.messages:
        for block in message.content:
            if isinstance(block, ReasoningBlock):
                if block.wire == "openai-responses":
                    if thinking and thinking[0].id != block.id:
                        flush()
                    thinking.append(block)
                continue
            flush()
            if isinstance(block, TextBlock):
                items.append({"type": "message", "role": message.role, "content": block.text})
            elif isinstance(block, ToolUseBlock):
                items.append(
                    {
                        "type": "function_call",
                        "call_id": block.id,
                        "name": block.name,
                        "arguments": call_arguments(block),
                    }
                )
            elif isinstance(block, ToolResultBlock):
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": block.tool_use_id,
                        "output": result_text(block),
                    }
                )
    flush()
    return items


__all__ = ["OpenAIResponsesModel", "responses_input"]
