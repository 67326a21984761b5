"""The tools of one request: which the model may call directly, which only from code."""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from openptc.proxy.errors import invalid
from openptc.proxy.wire import (
    CODE_EXECUTION_TYPES,
    CodeExecutionTool,
    CustomTool,
    MessagesRequest,
    ToolChoice,
    UnsupportedTool,
)


@dataclass(frozen=True)
class RequestTools:
    code: CodeExecutionTool | None
    custom: tuple[CustomTool, ...]

    @property
    def caller_type(self) -> str:
        """Responses tag calls with the caller types the real API uses (2026-05 still says
        ``code_execution_20260120``)."""
        if self.code is not None and self.code.type == "code_execution_20250825":
            return "code_execution_20250825"
        return "code_execution_20260120"

    def from_code(self) -> tuple[CustomTool, ...]:
        return tuple(t for t in self.custom if t.callable_from_code) if self.code else ()

    def direct(self) -> tuple[CustomTool, ...]:
        return tuple(t for t in self.custom if t.callable_directly)

    def by_name(self, name: str) -> CustomTool | None:
        return next((t for t in self.custom if t.name == name), None)


def read_tools(tools: list[object] | None, tool_choice: ToolChoice | None) -> RequestTools:
    """Validate the tool list as the API does, with its rules for ``allowed_callers``."""
    code: CodeExecutionTool | None = None
    custom: list[CustomTool] = []
    seen: set[str] = set()
    for index, tool in enumerate(tools or ()):
        if isinstance(tool, UnsupportedTool):
            versions = ", ".join(CODE_EXECUTION_TYPES)
            raise invalid(
                f"tools.{index}.type: '{tool.type}' is not supported by this proxy; it serves "
                f"custom tools and the code execution tool ({versions})"
            )
        name = tool.name if isinstance(tool, CustomTool | CodeExecutionTool) else ""
        if name in seen:
            raise invalid(f"tools: tool names must be unique; '{name}' appears twice")
        seen.add(name)
        if isinstance(tool, CodeExecutionTool):
            code = tool
        elif isinstance(tool, CustomTool):
            custom.append(tool)
    for index, tool in enumerate(custom):
        if not tool.callable_from_code:
            continue
        if not tool.name.isidentifier() or keyword.iskeyword(tool.name):
            raise invalid(
                f"tools.{index}.name: '{tool.name}' cannot be called from code execution, "
                "where a tool is a Python function: use letters, digits and underscores"
            )
        if code is None:
            raise invalid(
                f"tools.{index}.allowed_callers: '{tool.name}' may be called from code "
                "execution, but the code execution tool is not in `tools`"
            )
        if tool.strict:
            raise invalid(
                f"tools.{index}: strict tools cannot be called from code execution; "
                "remove `strict` or the code execution caller"
            )
    found = RequestTools(code, tuple(custom))
    if tool_choice is not None and tool_choice.type == "tool":
        chosen = found.by_name(tool_choice.name or "")
        if chosen is None:
            raise invalid(f"tool_choice: tool '{tool_choice.name}' is not in `tools`")
        if not chosen.callable_directly:
            raise invalid(
                f"tool_choice: tool '{chosen.name}' can only be called from code execution "
                '(its allowed_callers do not include "direct"); programmatic calls cannot be '
                "forced with tool_choice"
            )
    return found


def request_tools(request: MessagesRequest) -> RequestTools:
    return read_tools(list(request.tools or ()), request.tool_choice)
