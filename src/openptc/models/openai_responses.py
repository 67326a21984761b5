"""OpenAI's Responses API, used statelessly (``store=False``): the whole conversation each time.

Behind ``openai-responses:`` model strings. The conversation goes as input items in block order,
the system prompt as ``instructions``; a streamed answer is taken from its final
``response.completed`` (or ``incomplete``/``failed``) event. The client, errors and usage
accounting are shared with the Chat Completions adapter in ``openai_common``.
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
    ResponseRefusalDeltaEvent,
    ResponseTextDeltaEvent,
    ResponseUsage,
)

from openptc.models.base import (
    Block,
    ModelRequest,
    ModelResponse,
    ModelUsage,
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
        stop: StopReason = "end_turn"
        reason = response.incomplete_details.reason if response.incomplete_details else None
        if refused or reason == "content_filter":
            stop = "refusal"
        elif response.status == "incomplete":
            stop = "max_tokens"  # cut short, whatever the limit that did it
        elif any(isinstance(b, ToolUseBlock) for b in blocks):
            stop = "tool_use"
        return ModelResponse(tuple(blocks), stop, _responses_usage(response.usage), response.model)


def _responses_usage(usage: ResponseUsage | None) -> ModelUsage | None:
    if usage is None:
        return None
    details = usage.input_tokens_details
    return split_usage(
        usage.input_tokens,
        usage.output_tokens,
        details.cached_tokens if details else None,
        details.cache_write_tokens if details else None,
    )


def responses_input(request: ModelRequest) -> list[ResponseInputItemParam]:
    """The conversation as Responses input items, in block order."""
    items: list[ResponseInputItemParam] = []
    for message in request.messages:
        for block in message.content:
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
    return items


__all__ = ["OpenAIResponsesModel", "responses_input"]
