"""openptc: programmatic tool calling for any model.

The model writes one program; a sandbox runs it; the program calls your tools; only what it
prints comes back into the model's context.
"""

from openptc.agent import Agent, RunResult, RunUsage
from openptc.code_tool import CodeTool
from openptc.models import Model, ScriptedModel, model_from_string
from openptc.sandbox.base import Execution, Isolation, Limits, ToolCallError
from openptc.sandbox.local import LocalSandbox
from openptc.tools import Tool, Toolbox, tool

__all__ = [
    "Agent",
    "CodeTool",
    "Execution",
    "Isolation",
    "Limits",
    "LocalSandbox",
    "Model",
    "RunResult",
    "RunUsage",
    "ScriptedModel",
    "Tool",
    "ToolCallError",
    "Toolbox",
    "model_from_string",
    "tool",
]
