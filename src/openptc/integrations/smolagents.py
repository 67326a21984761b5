"""openptc in smolagents: the code tool as a smolagents ``Tool``, for a ``ToolCallingAgent``.

Why a tool and not a ``CodeAgent`` executor: a ``CodeAgent``'s programs call its tools as plain
functions and end with ``final_answer()`` inside its own interpreter, while openptc's programs
``await`` tools that run on the host. Executing ``CodeAgent`` code in openptc would need sync
tool calls inside the sandbox. So a ``ToolCallingAgent`` is offered ``execute_code``, as PTC
mode offers it: its description carries the toolbox's stubs, and each call runs the program in
an isolated openptc session whose variables persist between calls.

smolagents is synchronous and a sandbox lives on one event loop, so the tool runs its own
``CodeTool`` (with its own ``LocalSandbox``) on a background loop thread; close it (or use it
as a context manager) to stop both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from openptc.code_tool import CodeTool
from openptc.integrations import missing_framework
from openptc.prompts import CODE_TOOL_NAME
from openptc.sandbox.base import Limits, SandboxError
from openptc.tools import Toolbox

try:
    from smolagents import Tool  # type: ignore[import-untyped]  # ships no py.typed
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without smolagents
    raise ImportError(missing_framework("smolagents", "smolagents", "smolagents")) from exc

__all__ = ["SmolagentsCodeTool"]

T = TypeVar("T")


class SmolagentsCodeTool(Tool):  # type: ignore[misc]  # smolagents is untyped
    """``execute_code`` for smolagents: ``with SmolagentsCodeTool(tools) as execute_code:
    ToolCallingAgent(tools=[execute_code], model=...)``."""

    output_type = "string"

    def __init__(
        self,
        tools: Toolbox | Iterable[Any],
        *,
        limits: Limits | None = None,
        name: str = CODE_TOOL_NAME,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="openptc-code-tool", daemon=True
        )
        self._thread.start()
        self._closed = False
        self.code_tool = CodeTool(tools, limits=limits, name=name)
        try:
            self._call(self.code_tool.start())
        except BaseException:
            self._stop_loop()
            raise
        code_schema = self.code_tool.input_schema["properties"]["code"]
        self.name = name
        self.description = self.code_tool.description
        self.inputs = {"code": {"type": "string", "description": code_schema["description"]}}
        super().__init__()

    def forward(self, code: str) -> str:
        """Run one program on the tool's loop; what it printed, as the model should read it."""
        if self._closed:
            raise SandboxError("this execute_code tool is closed")
        return self._call(self.code_tool.run(code))

    def close(self) -> None:
        """Close the session and the sandbox, then stop the loop thread. Safe to repeat."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self.code_tool.aclose())
        finally:
            self._stop_loop()

    def __enter__(self) -> SmolagentsCodeTool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
