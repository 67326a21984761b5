"""openptc in LangChain and LangGraph: the code tool as a ``StructuredTool``.

``create_agent(model, tools=[langchain_tool(code_tool)])`` (or LangGraph's prebuilt agents and
``ToolNode``): the model sees one ``execute_code`` tool whose description carries the toolbox's
stubs; each call runs the program in the code tool's sandbox session and returns what it
printed. The tool is async only, as LangGraph runs it.
"""

from __future__ import annotations

from openptc.code_tool import CodeTool
from openptc.integrations import missing_framework

try:
    from langchain_core.tools import StructuredTool
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without LangChain
    raise ImportError(missing_framework("langchain", "langchain-core", "langchain")) from exc

__all__ = ["langchain_tool"]


def langchain_tool(code_tool: CodeTool) -> StructuredTool:
    """A LangChain tool that runs programs with ``code_tool`` (which must be started)."""

    async def execute_code(code: object = None, **_: object) -> str:
        # LangChain does not validate against a JSON Schema: a malformed call is answered in
        # words here rather than raised, which would end a LangGraph run.
        return await code_tool.run(code if isinstance(code, str) else None)

    return StructuredTool.from_function(
        coroutine=execute_code,
        name=code_tool.name,
        description=code_tool.description,
        args_schema=code_tool.input_schema,
    )
