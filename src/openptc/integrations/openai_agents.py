"""openptc in the OpenAI Agents SDK: the code tool as a ``FunctionTool``.

``Agent(name=..., tools=[openai_agents_tool(code_tool)])``: the model sees one strict
``execute_code`` function whose description carries the toolbox's stubs; each call runs the
program in the code tool's sandbox session and returns what it printed.
"""

from __future__ import annotations

import json
from typing import Any

from openptc.code_tool import CodeTool
from openptc.integrations import missing_framework

try:
    from agents import FunctionTool
    from agents.tool_context import ToolContext
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the SDK
    raise ImportError(missing_framework("openai_agents", "openai-agents", "openai-agents")) from exc

__all__ = ["openai_agents_tool"]


def openai_agents_tool(code_tool: CodeTool) -> FunctionTool:
    """An Agents SDK function tool that runs programs with ``code_tool`` (which must be
    started). A malformed call is answered in words, for the model to correct."""

    async def invoke(_: ToolContext[Any], arguments: str) -> str:
        try:
            code = json.loads(arguments or "{}").get("code")
        except (ValueError, AttributeError):
            code = None
        return await code_tool.run(code if isinstance(code, str) else None)

    return FunctionTool(
        name=code_tool.name,
        description=code_tool.description,
        params_json_schema=code_tool.input_schema,
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )
