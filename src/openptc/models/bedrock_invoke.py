"""An Anthropic model on Bedrock through InvokeModel with the native Messages body.

Behind ``bedrock-invoke:`` model strings. The body, reply and stream events are mapped by
``anthropic_wire``, as for Anthropic's own API; this module adds ``anthropic_version``, the tool
placeholders and stop reasons of ``bedrock_common``, and the event stream's ``chunk.bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openptc.models import anthropic_wire
from openptc.models.base import ModelRequest, ModelResponse
from openptc.models.bedrock_common import (
    BedrockModelBase,
    TurnBuilder,
    offered_tools,
    stop_reason,
)

ANTHROPIC_VERSION = "bedrock-2023-05-31"


def invoke_body(request: ModelRequest) -> dict[str, Any]:
    """The native Anthropic Messages body InvokeModel takes (no ``model``, no ``stream``)."""
    body = anthropic_wire.request_body(request, offered_tools(request))
    return {"anthropic_version": ANTHROPIC_VERSION, **body}


def anthropic_response(message: Mapping[str, Any], model_id: str) -> ModelResponse:
    """An Anthropic Message (the InvokeModel response body), normalized."""
    return anthropic_wire.response(message, model_id, stop_reason)


class _InvokeTurn(anthropic_wire.StreamedTurn):
    """An ``invoke_model_with_response_stream`` response: Anthropic events in ``chunk.bytes``."""

    def add(self, event: Mapping[str, Any]) -> str:
        return super().add(json.loads(event["chunk"]["bytes"])) if "chunk" in event else ""

    def response(
        self, model: str | None = None, stop: anthropic_wire.StopMapping = stop_reason
    ) -> ModelResponse:
        return super().response(model, stop)


class BedrockInvokeModel(BedrockModelBase):
    """An Anthropic model through InvokeModel with the native Messages body."""

    prefix = "bedrock-invoke"
    api = "InvokeModel"

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "body": json.dumps(invoke_body(request)).encode(),
            "contentType": "application/json",
            "accept": "application/json",
        }

    def _complete(self, request: ModelRequest) -> ModelResponse:
        response = self.client().invoke_model(**self._body(request))
        return anthropic_response(json.loads(response["body"].read()), self.model_id)

    def _open_stream(self, request: ModelRequest) -> Any:
        return self.client().invoke_model_with_response_stream(**self._body(request))["body"]

    def _turn(self) -> TurnBuilder:
        return _InvokeTurn()


__all__ = ["ANTHROPIC_VERSION", "BedrockInvokeModel", "anthropic_response", "invoke_body"]
