"""The model boundary: normalized types, the scripted model, offline token counting, prompts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openptc.models import (
    SCRIPTED_LABEL,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ScriptedModel,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    count_request_tokens,
    count_response_tokens,
    model_from_string,
)
from openptc.prompts import CODE_TOOL_NAME, PROMPT_VERSION, code_tool_spec, system_prompt


def _request(*messages: Message, tools: tuple[ToolSpec, ...] = ()) -> ModelRequest:
    return ModelRequest("system", messages or (Message.user("hi"),), tools, 1024)


def test_message_helpers_and_response_conveniences() -> None:
    use = ToolUseBlock("t1", "lookup", {"q": "x"})
    response = ModelResponse((TextBlock("a"), use, TextBlock("b")), "tool_use", None, "m")
    assert response.text == "ab"
    assert response.tool_uses == (use,)
    assert response.to_message() == Message("assistant", response.content)
    results = Message.tool_results([ToolResultBlock("t1", "42")])
    assert results.role == "user" and results.results == (ToolResultBlock("t1", "42"),)
    assert Message.user("q").text == "q"
    assert Message.assistant("done").content == (TextBlock("done"),)


async def test_from_turns_replays_in_order_then_fails_naming_the_count() -> None:
    use = ToolUseBlock("t1", "lookup", {"q": "x"})
    model = ScriptedModel.from_turns([[use], "the answer"])

    first = await model.generate(_request())
    second = await model.generate(_request())

    assert first.tool_uses == (use,) and first.stop_reason == "tool_use"
    assert second.text == "the answer" and second.stop_reason == "end_turn"
    with pytest.raises(ModelError, match="2 recorded turn"):
        await model.generate(_request())


async def test_policy_brain_reads_the_request() -> None:
    def brain(request: ModelRequest) -> list[TextBlock]:
        results = request.messages[-1].results
        seen = results[0].content if results else "nothing"
        return [TextBlock(f"saw {seen}")]

    model = ScriptedModel(brain)
    fed = _request(Message.user("q"), Message.tool_results([ToolResultBlock("t1", "7 rows")]))

    assert (await model.generate(_request())).text == "saw nothing"
    assert (await model.generate(fed)).text == "saw 7 rows"
    assert model.requests[-1] is fed


async def test_scripted_model_always_says_what_it_is_and_reports_no_usage() -> None:
    recorded = ModelResponse((TextBlock("x"),), "end_turn", ModelUsage(10, 5), "claude-x")
    model = ScriptedModel.from_turns([recorded], name="replay")

    response = await model.generate(_request())

    assert model.name == "scripted:replay"
    assert "scripted" in model.label and "no real model" in model.label
    assert model.label == SCRIPTED_LABEL
    assert response.usage is None and response.model == "scripted:replay"


def test_model_from_string_resolves_scripted_and_rejects_unknown_prefixes() -> None:
    model = model_from_string("scripted:expense-audit")
    assert model.name == "scripted:expense-audit" and model.label == SCRIPTED_LABEL
    with pytest.raises(ValueError, match="scripted"):
        model_from_string("nowhere:model-x")
    with pytest.raises(ValueError, match="scripted:expense-audit"):
        model_from_string("scripted:unknown-brain")


def test_token_counts_grow_with_content() -> None:
    spec = ToolSpec("lookup", "Look a thing up.", {"type": "object", "properties": {}})
    small = _request(Message.user("hello"))
    more = _request(Message.user("hello"), Message.assistant("a longer reply " * 20))
    with_tool = _request(Message.user("hello"), tools=(spec,))
    with_result = _request(
        Message.user("hello"),
        Message.assistant([ToolUseBlock("t1", "lookup", {"q": "x"})]),
        Message.tool_results([ToolResultBlock("t1", '{"rows": [1, 2, 3]}' * 10)]),
    )

    base = count_request_tokens(small)
    assert 0 < base < count_request_tokens(more)
    assert base < count_request_tokens(with_tool)
    assert base < count_request_tokens(with_result)
    assert count_request_tokens(more) == count_request_tokens(more)  # deterministic

    short = ModelResponse((TextBlock("ok"),), "end_turn", None, "m")
    long = ModelResponse((TextBlock("ok " * 50),), "end_turn", None, "m")
    assert 0 < count_response_tokens(short) < count_response_tokens(long)


def test_encoding_loads_with_the_network_unreachable(tmp_path: Path) -> None:
    """A fresh process with dead proxies, an empty cache and sockets that refuse to connect."""
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network used")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        from openptc.models.tokens import count_text, encoding
        assert encoding() is encoding()
        print(count_text("hello world"))
        """
    )
    env = {
        **os.environ,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_code_tool_spec_carries_the_stubs_and_the_calling_rules() -> None:
    stubs = "async def get_thing(id: str) -> Thing:\n    '''One thing.'''"
    spec = code_tool_spec(stubs)

    assert spec.name == CODE_TOOL_NAME == "execute_code"
    assert spec.input_schema["required"] == ["code"]
    assert spec.input_schema["properties"]["code"]["type"] == "string"
    assert stubs in spec.description
    for rule in ("await", "asyncio.gather", "print", "persist"):
        assert rule in spec.description
    assert PROMPT_VERSION == "2"
    assert "execute_code" in system_prompt("ptc")
    assert "execute_code" not in system_prompt("direct")
    assert system_prompt("hybrid").startswith(system_prompt("ptc"))
