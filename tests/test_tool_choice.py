"""``tool_choice`` travels from a request to each provider's own wire words."""

from __future__ import annotations

from typing import Any

import pytest

from openptc.models import ToolChoice
from openptc.models.anthropic_wire import request_body
from openptc.models.base import Message, ModelRequest, ToolSpec
from openptc.models.bedrock_converse import converse_request
from openptc.models.openai_chat import OpenAIChatModel
from openptc.models.openai_responses import OpenAIResponsesModel

TOOL = ToolSpec("lookup", "Look it up.", {"type": "object", "properties": {}})


def _request(choice: ToolChoice | None) -> ModelRequest:
    return ModelRequest("", (Message.user("hi"),), (TOOL,), 64, choice)


CASES: list[tuple[ToolChoice | None, Any, Any, Any, Any]] = [
    # choice, anthropic, openai chat, openai responses, bedrock converse
    (None, None, None, None, None),
    (ToolChoice("auto"), {"type": "auto"}, "auto", "auto", None),
    (ToolChoice("any"), {"type": "any"}, "required", "required", {"any": {}}),
    (ToolChoice("none"), {"type": "none"}, "none", "none", None),
    (
        ToolChoice("tool", "lookup"),
        {"type": "tool", "name": "lookup"},
        {"type": "function", "function": {"name": "lookup"}},
        {"type": "function", "name": "lookup"},
        {"tool": {"name": "lookup"}},
    ),
]


@pytest.mark.parametrize(("choice", "anthropic", "chat", "responses", "converse"), CASES)
def test_each_provider_gets_the_choice_in_its_own_words(
    choice: ToolChoice | None, anthropic: Any, chat: Any, responses: Any, converse: Any
) -> None:
    request = _request(choice)
    assert request_body(request).get("tool_choice") == anthropic
    chat_args = OpenAIChatModel("m", api_key="k", base_url="http://127.0.0.1:9")._arguments(request)
    assert chat_args.get("tool_choice") == chat
    responses_model = OpenAIResponsesModel("m", api_key="k", base_url="http://127.0.0.1:9")
    assert responses_model._arguments(request).get("tool_choice") == responses
    assert converse_request("m", request)["toolConfig"].get("toolChoice") == converse


def test_a_choice_without_tools_is_not_sent() -> None:
    bare = ModelRequest("", (Message.user("hi"),), (), 64, ToolChoice("any"))
    assert "tool_choice" not in request_body(bare)
    assert "tool_choice" not in OpenAIChatModel("m", api_key="k")._arguments(bare)


def test_a_name_belongs_to_mode_tool_only() -> None:
    with pytest.raises(ValueError, match="mode 'tool'"):
        ToolChoice("tool")
    with pytest.raises(ValueError, match="mode 'tool'"):
        ToolChoice("any", "lookup")
