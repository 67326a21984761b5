"""A wire-faithful Amazon Bedrock Runtime for the real boto3 client (REST-JSON protocol).

Serves ``POST /model/{modelId}/converse``, ``/converse-stream`` (AWS event-stream binary
framing), ``/invoke`` and ``/invoke-with-response-stream`` (Anthropic body in, Anthropic message
or Anthropic stream events out). It checks that requests are SigV4-signed for the ``bedrock``
service, validates what real Bedrock validates and the adapter could get wrong, and answers in
AWS's error shape.

Beyond the brain's turn it plays the model's part in what the request asked: reasoning (signed
Claude thinking, redacted on request, or plain text; see ``bedrock_reasoning``), stop sequences
(the text is cut there), and prompt caching (cache points or ``cache_control`` write a prefix,
a later request reads it; see ``bedrock_usage``). Requests are read by ``bedrock_wire``, this
fake's own parser, never by the adapter's mapping.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openptc.models import (
    ModelRequest,
    ModelResponse,
    Policy,
    ReasoningBlock,
    TextBlock,
    ToolUseBlock,
    count_response_tokens,
)

from .aws_eventstream import (
    EVENT_STREAM,
    SIGV4_PREFIX,
    aws_error,
    encode_event,
    encode_exception,
    encode_message,
)
from .bedrock_reasoning import check_reasoning, think
from .bedrock_render import (
    CUT,
    CUT_BEFORE_TEXT,
    Answer,
    anthropic_events,
    anthropic_message,
    converse_events,
    converse_usage,
    cut,
    reasoning_json,
)
from .bedrock_usage import UNSUPPORTED, PromptCache, TokenMeter, caches
from .bedrock_wire import (
    Asked,
    Invalid,
    asked_anthropic,
    asked_converse,
    read_anthropic,
    read_converse,
)
from .harness import Recorder

__all__ = [
    "CUT",
    "CUT_BEFORE_TEXT",
    "EVENT_STREAM",
    "SIGV4_PREFIX",
    "TokenMeter",
    "aws_error",
    "bedrock_app",
    "encode_event",
    "encode_exception",
    "encode_message",
    "read_anthropic",
    "read_converse",
]


@dataclass
class _Fake:
    brain: Policy
    recorder: Recorder
    rejected_key_id: str
    malformed_tool_inputs: int
    cache_read_tokens: int
    cache_write_tokens: int
    redacted_thinking: bool
    stream_faults: list[str] = field(default_factory=list)
    meter: TokenMeter = field(default_factory=TokenMeter)
    cache: PromptCache = field(default_factory=PromptCache)

    # -- the gate every request passes --

    def _refused(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith(SIGV4_PREFIX) or "x-amz-date" not in request.headers:
            return aws_error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            ).response()
        key_id, _, scope = auth[len(SIGV4_PREFIX) :].split(",")[0].partition("/")
        if key_id == self.rejected_key_id:
            return aws_error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ).response()
        if scope.split("/")[2:3] != ["bedrock"]:
            return aws_error(
                403,
                "InvalidSignatureException",
                "Credential should be scoped to correct service: 'bedrock'.",
            ).response()
        return None

    async def _admit(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        body = await self.recorder.record(request)
        refused = self.recorder.next_fault() or self._refused(request)
        return body, refused

    def _answer(
        self, request: ModelRequest, asked: Asked, model_id: str, *, invoke: bool
    ) -> Answer:
        """The turn for a checked request; raises ``Invalid`` for what Bedrock refuses."""
        check_reasoning(asked, request, request.max_tokens)
        if asked.checkpoints and not caches(model_id):
            raise Invalid(UNSUPPORTED)
        turn = self.brain(request)
        if isinstance(turn, ModelResponse):
            blocks = turn.content
        elif isinstance(turn, str):
            blocks = (TextBlock(turn),)
        else:
            blocks = tuple(turn)
        blocks, sequence = cut(blocks, asked.stop_sequences)
        stop = "tool_use" if any(isinstance(b, ToolUseBlock) for b in blocks) else "end_turn"
        if sequence is not None:
            stop = "stop_sequence"
        blocks = (*think(asked, request, blocks, redacted=self.redacted_thinking), *blocks)
        billed = self.meter.input_tokens(request)
        if self.cache_read_tokens or self.cache_write_tokens:
            read = min(self.cache_read_tokens, billed)
            write = min(self.cache_write_tokens, billed - read)
        else:
            segments = self.meter.segments(request, tools_first=invoke)
            read, write = self.cache.account(segments, asked.checkpoints)
        output = count_response_tokens(ModelResponse(blocks, "end_turn", None, "fake"))
        return Answer(blocks, stop, sequence, billed - read - write, output, read, write)

    def _converse_answer(self, request: Request, body: dict[str, Any] | None) -> Answer:
        model_id = request.path_params["model_id"]
        asked = asked_converse(model_id, body or {})
        return self._answer(read_converse(body or {}), asked, model_id, invoke=False)

    def _converse_content(self, answer: Answer) -> tuple[list[dict[str, Any]], str]:
        content: list[dict[str, Any]] = []
        stop = answer.stop
        for block in answer.blocks:
            if isinstance(block, TextBlock):
                content.append({"text": block.text})
            elif isinstance(block, ReasoningBlock):
                content.append({"reasoningContent": reasoning_json(block)})
            elif isinstance(block, ToolUseBlock):
                tool_input: Any = block.input
                if self.malformed_tool_inputs > 0:  # the model's JSON broke off half way
                    self.malformed_tool_inputs -= 1
                    text = json.dumps(block.input)
                    tool_input, stop = text[: len(text) // 2], "malformed_tool_use"
                content.append(
                    {"toolUse": {"toolUseId": block.id, "name": block.name, "input": tool_input}}
                )
        return content, stop

    @staticmethod
    def _response_fields(
        request: Request, body: dict[str, Any] | None, answer: Answer
    ) -> dict[str, Any]:
        """Claude's raw ``stop_sequence`` when the request asked for it by its path."""
        paths = (body or {}).get("additionalModelResponseFieldPaths", [])
        if "/stop_sequence" in paths and "anthropic.claude" in request.path_params["model_id"]:
            return {"additionalModelResponseFields": {"stop_sequence": answer.stop_sequence}}
        return {}

    # -- Converse --

    async def converse(self, request: Request) -> Response:
        body, refused = await self._admit(request)
        if refused is not None:
            return refused
        try:
            answer = self._converse_answer(request, body)
        except Invalid as exc:
            return aws_error(400, "ValidationException", str(exc)).response()
        content, stop = self._converse_content(answer)
        return JSONResponse(
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop,
                "usage": converse_usage(answer),
                "metrics": {"latencyMs": 42},
                **self._response_fields(request, body, answer),
            },
            headers={"x-amzn-requestid": str(uuid.uuid4())},
        )

    async def converse_stream(self, request: Request) -> Response:
        body, refused = await self._admit(request)
        if refused is not None:
            return refused
        try:
            answer = self._converse_answer(request, body)
        except Invalid as exc:
            return aws_error(400, "ValidationException", str(exc)).response()
        content, stop = self._converse_content(answer)
        fault = self.stream_faults.pop(0) if self.stream_faults else None
        fields = self._response_fields(request, body, answer)

        events = converse_events(content, stop, fields, converse_usage(answer), fault)
        return StreamingResponse(
            events, media_type=EVENT_STREAM, headers={"x-amzn-requestid": str(uuid.uuid4())}
        )

    # -- InvokeModel --

    async def _invoke_answer(self, request: Request) -> tuple[Answer | None, Response | None]:
        body, refused = await self._admit(request)
        if refused is not None:
            return None, refused
        if request.headers.get("content-type") != "application/json":
            return None, aws_error(
                400, "ValidationException", "Content-Type must be JSON"
            ).response()
        model_id = request.path_params["model_id"]
        try:
            normalized = read_anthropic(body or {})
            asked = asked_anthropic(body or {})
            return self._answer(normalized, asked, model_id, invoke=True), None
        except Invalid as exc:
            return None, aws_error(400, "ValidationException", str(exc)).response()

    async def invoke(self, request: Request) -> Response:
        answer, refused = await self._invoke_answer(request)
        if answer is None:
            assert refused is not None
            return refused
        return JSONResponse(
            anthropic_message(answer, request.path_params["model_id"]),
            headers={
                "x-amzn-requestid": str(uuid.uuid4()),
                "x-amzn-bedrock-input-token-count": str(answer.input_tokens),
                "x-amzn-bedrock-output-token-count": str(answer.output_tokens),
            },
        )

    async def invoke_stream(self, request: Request) -> Response:
        answer, refused = await self._invoke_answer(request)
        if answer is None:
            assert refused is not None
            return refused
        message = anthropic_message(answer, request.path_params["model_id"])
        fault = self.stream_faults.pop(0) if self.stream_faults else None

        events = anthropic_events(message, fault)
        return StreamingResponse(
            events, media_type=EVENT_STREAM, headers={"x-amzn-requestid": str(uuid.uuid4())}
        )


def bedrock_app(
    brain: Policy,
    recorder: Recorder,
    *,
    rejected_key_id: str = "AKIDREVOKED",
    malformed_tool_inputs: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    redacted_thinking: bool = False,
    stream_faults: list[str] | None = None,
) -> Starlette:
    """The fake Bedrock Runtime answering with ``brain``.

    ``rejected_key_id``: an access key id answered with 403 UnrecognizedClientException.
    ``malformed_tool_inputs``: how many tool uses (Converse only) come back with their JSON input
    broken off half way, as a string, with stopReason ``malformed_tool_use``.
    ``cache_*_tokens``: that many of each request's input tokens are reported as cache reads or
    writes, whatever the request marked (else the prompt cache decides).
    ``redacted_thinking``: Claude's thinking also holds a redacted block, ahead of the readable one.
    ``stream_faults``: one per streamed response (ConverseStream or
    InvokeModelWithResponseStream), an exception event type (``"throttlingException"``) sent
    right after the first text delta; or ``CUT`` (the stream ends there, without
    ``messageStop``/``message_stop``) or ``CUT_BEFORE_TEXT`` (it ends after its first event).
    """
    fake = _Fake(
        brain,
        recorder,
        rejected_key_id,
        malformed_tool_inputs,
        cache_read_tokens,
        cache_write_tokens,
        redacted_thinking,
        stream_faults if stream_faults is not None else [],
    )
    return Starlette(
        routes=[
            Route("/model/{model_id:path}/converse", fake.converse, methods=["POST"]),
            Route("/model/{model_id:path}/converse-stream", fake.converse_stream, methods=["POST"]),
            Route("/model/{model_id:path}/invoke", fake.invoke, methods=["POST"]),
            Route(
                "/model/{model_id:path}/invoke-with-response-stream",
                fake.invoke_stream,
                methods=["POST"],
            ),
        ]
    )
