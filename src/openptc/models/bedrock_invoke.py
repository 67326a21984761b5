"""An Anthropic model on Bedrock through InvokeModel with the native Messages body.

Behind ``bedrock-invoke:`` model strings. The body, reply and stream events are mapped by
``anthropic_wire`` (settings, thinking blocks, cache marks, stop sequences included), as for
Anthropic's own API; this module adds what Bedrock does differently:

- ``anthropic_version`` in the body, no ``model`` (it is in the path) and no ``stream``;
- betas go in the body's ``anthropic_beta`` list, not an ``anthropic-beta`` header;
- the model id names the model as Anthropic's API would (``anthropic.claude-sonnet-4-6-v1:0``
  is ``claude-sonnet-4-6-v1:0``), so ``anthropic_wire`` picks the kind of thinking and the
  sampling rules it picks on Anthropic's API; and what only Bedrock's model ids tell
  (``bedrock_models``): thinking is refused before any request on a Claude model without it,
  Claude 3.7 gets no interleaved-thinking beta (it has none), and a model without prompt
  caching on Bedrock gets no ``cache_control`` marks, which would fail its request;
- the tool placeholders and stop reasons of ``bedrock_common``, and the event stream's
  ``chunk.bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openptc.models import anthropic_wire
from openptc.models.base import ModelRequest, ModelResponse
from openptc.models.bedrock_common import (
    BedrockModelBase,
    Call,
    TurnBuilder,
    offered_tools,
    stop_reason,
)
from openptc.models.bedrock_models import bedrock_model, claude_thinking, prompt_cache_places
from openptc.models.claude_models import check_has_thinking

ANTHROPIC_VERSION = "bedrock-2023-05-31"


def invoke_body(model_id: str, request: ModelRequest) -> dict[str, Any]:
    """The native Anthropic Messages body InvokeModel takes for ``model_id``; raises
    ``UnsupportedSetting`` for what the model cannot take."""
    where = f"Bedrock InvokeModel for {model_id!r}"
    model = bedrock_model(model_id)
    name = model.name if model.is_claude else None  # as Anthropic's API names it
    if request.settings.reasoning is not None and model.is_claude:
        check_has_thinking(claude_thinking(model), where)
    body = anthropic_wire.request_body(request, offered_tools(request), provider=where, model=name)
    betas = list(anthropic_wire.beta_flags(request.settings, name))
    version = model.claude_version
    if version is not None and version < (4, 0):  # interleaved thinking came with Claude 4
        betas = []
    if not prompt_cache_places(model_id):
        _unmark_cache(body)
    if betas:
        body["anthropic_beta"] = betas
    return {"anthropic_version": ANTHROPIC_VERSION, **body}


def _unmark_cache(body: dict[str, Any]) -> None:
    """Take out the ``cache_control`` marks ``anthropic_wire`` put on tools, system, blocks."""
    marked: list[dict[str, Any]] = [*body.get("tools", [])]
    if isinstance(body.get("system"), list):
        marked += body["system"]
    for message in body.get("messages", []):
        if isinstance(message["content"], list):
            marked += message["content"]
    for item in marked:
        item.pop("cache_control", None)


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

    def _prepare(self, request: ModelRequest) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "body": json.dumps(invoke_body(self.model_id, request)).encode(),
            "contentType": "application/json",
            "accept": "application/json",
        }

    def _complete(self, call: Call) -> ModelResponse:
        response = self.client().invoke_model(**call.kwargs)
        return anthropic_response(json.loads(response["body"].read()), self.model_id)

    def _open_stream(self, call: Call) -> Any:
        return self.client().invoke_model_with_response_stream(**call.kwargs)["body"]

    def _turn(self, call: Call) -> TurnBuilder:
        return _InvokeTurn()


__all__ = ["ANTHROPIC_VERSION", "BedrockInvokeModel", "anthropic_response", "invoke_body"]
