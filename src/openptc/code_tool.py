"""PTC mode's code tool on its own, for agent frameworks that run their own loop.

An ``Agent`` offers the model one ``execute_code`` tool whose description lists the toolbox as
Python stubs, and runs each program in one sandbox session. ``CodeTool`` is that tool without
the loop: a framework (pydantic-ai, the OpenAI Agents SDK, LangChain, smolagents; see
``openptc.integrations``) shows the model ``name``, ``description`` and ``input_schema``, and
hands each program to ``run``, which returns the text the model should read. The programs of
one ``CodeTool`` share a session, so variables persist from one call to the next.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from openptc.prompts import (
    CODE_TOOL_NAME,
    CODE_TOOL_SCHEMA,
    code_tool_description,
    session_lost_text,
)
from openptc.sandbox.base import Execution, Limits, Sandbox, SandboxError, ToolHost
from openptc.sandbox.held_session import HeldSession, SessionLost
from openptc.tools import Toolbox

__all__ = ["CodeTool", "SessionLost"]

REOPENED_NOTICE = (
    "the sandbox session had been lost and a new one was opened: variables, imports and files "
    "from earlier programs are gone"
)
NO_CODE = '{name} needs {{"code": "<a Python program>"}}, and the program was missing or empty.'


class CodeTool:
    """One code-execution tool over a toolbox, with its own sandbox session.

    Use as ``async with CodeTool(tools) as code: text = await code.run(program)``. Without a
    ``sandbox`` it starts a ``LocalSandbox`` of its own (with ``limits``) and closes it on exit;
    a sandbox passed in is borrowed and left open. Only tools that allow the ``code`` caller
    are shown and callable. The session opens on the first program (so it cannot idle out
    while the model thinks) and is replaced, with a notice, if it dies.
    """

    def __init__(
        self,
        tools: Toolbox | Iterable[Any],
        sandbox: Sandbox | None = None,
        *,
        limits: Limits | None = None,
        name: str = CODE_TOOL_NAME,
    ) -> None:
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        self.name = name
        self.limits = limits
        self.last_execution: Execution | None = None
        self._started = False
        self._held = HeldSession(
            sandbox,
            notice=REOPENED_NOTICE,
            limits=limits,
            refused="this code tool is closed",
            label=f"code tool {name}",
        )

    @property
    def tools(self) -> ToolHost:
        """What a program may call: the toolbox's tools that allow the ``code`` caller."""
        if all("code" in t.callers for t in self.toolbox):
            return self.toolbox  # as it is, so a live toolbox (MCP) stays live
        return self.toolbox.for_caller("code")

    @property
    def description(self) -> str:
        """The tool's description as the model reads it: calling rules, then the stubs."""
        code_tools = self.toolbox.for_caller("code")
        return code_tool_description(code_tools.render_stubs())

    @property
    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the tool's input: ``{"code": str}`` (a fresh copy each time)."""
        return copy.deepcopy(CODE_TOOL_SCHEMA)

    async def start(self) -> None:
        """Start the sandbox this tool owns (a borrowed one is the lender's to start)."""
        if self._held.closed:
            raise SandboxError("this code tool is closed")
        await self._held.start()
        self._started = True

    async def execute(self, code: str) -> Execution:
        """Run one program in this tool's session and return its full result.

        Raises ``SandboxError`` when no session can be opened (the machine, not the program)
        and ``SessionLost`` when the session died under the program.
        """
        if not self._started:
            raise SandboxError("the code tool is not started: use `async with CodeTool(...)`")
        self.last_execution = await self._held.run(code, self.tools)
        return self.last_execution

    async def run(self, code: str | None) -> str:
        """Run one program; what it printed (or how it failed) as the model should read it.

        A missing (``None``) or blank program is answered in words, for the model to correct.
        """
        if code is None or not code.strip():
            return NO_CODE.format(name=self.name)
        try:
            execution = await self.execute(code)
        except SessionLost as exc:
            return session_lost_text(exc)
        return execution.to_model_text()

    async def aclose(self) -> None:
        """Close the session and an owned sandbox; later programs are refused."""
        await self._held.aclose()

    async def __aenter__(self) -> CodeTool:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
