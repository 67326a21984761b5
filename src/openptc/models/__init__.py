"""Models: the normalized protocol, the offline scripted model, token counting, and a resolver."""

from __future__ import annotations

from openptc.models.base import (
    Block,
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ReasoningBlock,
    StopReason,
    TextBlock,
    TextSink,
    ToolChoice,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.resolve import model_from_string
from openptc.models.scripted import SCRIPTED_LABEL, Policy, ScriptedModel, Turn
from openptc.models.settings import ModelSettings, Reasoning, UnsupportedSetting
from openptc.models.tokens import count_request_tokens, count_response_tokens

__all__ = [
    "SCRIPTED_LABEL",
    "Block",
    "Message",
    "Model",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModelUsage",
    "Policy",
    "Reasoning",
    "ReasoningBlock",
    "ScriptedModel",
    "StopReason",
    "TextBlock",
    "TextSink",
    "ToolChoice",
    "ToolResultBlock",
    "ToolSpec",
    "ToolUseBlock",
    "Turn",
    "UnsupportedSetting",
    "count_request_tokens",
    "count_response_tokens",
    "model_from_string",
]
