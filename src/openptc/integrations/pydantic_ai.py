"""openptc in pydantic-ai: the code tool as a pydantic-ai ``Tool``.

``Agent(model, tools=[pydantic_ai_tool(code_tool)])``: the model sees one ``execute_code``
tool whose description carries the toolbox's stubs; each call runs the program in the code
tool's sandbox session, where the program calls the tools on the host, and returns what it
printed. pydantic-ai validates the arguments, so a call without ``code`` goes back to the model
as a retry.
"""

from __future__ import annotations

from typing import Any

from openptc.code_tool import CodeTool
from openptc.integrations import missing_framework

try:
    from pydantic_ai import Tool
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without pydantic-ai
    raise ImportError(missing_framework("pydantic_ai", "pydantic-ai", "pydantic-ai")) from exc

__all__ = ["pydantic_ai_tool"]


def pydantic_ai_tool(code_tool: CodeTool) -> Tool[Any]:
    """A pydantic-ai tool that runs programs with ``code_tool`` (which must be started)."""

    async def execute_code(code: str) -> str:
        """Run a program in openptc's sandbox.

        Args:
            code: A complete Python program to run.
        """
        return await code_tool.run(code)

    return Tool(execute_code, name=code_tool.name, description=code_tool.description)
