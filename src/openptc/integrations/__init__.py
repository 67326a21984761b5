"""openptc's code tool inside the agent frameworks people already use.

One module per framework, each a thin adapter over ``openptc.CodeTool`` and each importing its
framework only when imported itself, so openptc needs none of them:

- ``pydantic_ai``: a pydantic-ai ``Tool``;
- ``openai_agents``: an OpenAI Agents SDK ``FunctionTool``;
- ``langchain``: a LangChain ``StructuredTool`` (LangGraph, ``langchain.agents``);
- ``smolagents``: a smolagents ``Tool`` for a ``ToolCallingAgent``.
"""

from __future__ import annotations

__all__ = ["missing_framework"]


def missing_framework(module: str, package: str, extra: str) -> str:
    """The one-line error of an adapter whose framework is not installed."""
    return (
        f"openptc.integrations.{module} needs {package}, which is not installed: "
        f"pip install 'openptc[{extra}]'"
    )
