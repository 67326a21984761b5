"""PTC mode's code tool on its own, for agent frameworks that run their own loop.

An ``Agent`` offers the model one ``execute_code`` tool whose description lists the toolbox as
Python stubs, and runs each program in one sandbox session. ``CodeTool`` is that tool without
the loop: a framework (pydantic-ai, the OpenAI Agents SDK, LangChain, smolagents; see
``openptc.integrations``) shows the model ``name``, ``description`` and ``input_schema``, and
hands each program to ``run``, which returns the text the model should read. The programs of
one ``CodeTool`` share a session, so variables persist from one call to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
from collections.abc import Iterable
from typing import Any

from openptc.prompts import (
    CODE_TOOL_NAME,
    CODE_TOOL_SCHEMA,
    code_tool_description,
    session_lost_text,
)
from openptc.sandbox.base import Execution, Limits, Sandbox, SandboxError, Session, ToolHost
from openptc.tools import Toolbox

__all__ = ["CodeTool", "SessionLost"]

REOPENED_NOTICE = (
    "the sandbox session had been lost and a new one was opened: variables, imports and files "
    "from earlier programs are gone"
)
NO_CODE = '{name} needs {{"code": "<a Python program>"}}, and the program was missing or empty.'


class SessionLost(SandboxError):
    """The session died under a program (crash, lost server); the next program gets a new one."""


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
        self._sandbox = sandbox
        self._stack = contextlib.AsyncExitStack()
        self._session: Session | None = None
        self._lost = False
        self._started = False
        self._closed = False
        self._lock = asyncio.Lock()  # a session runs one program at a time
        self._closing: set[asyncio.Task[None]] = set()

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
        if self._closed:
            raise SandboxError("this code tool is closed")
        if not self._started and self._sandbox is None:
            from openptc.sandbox.local import LocalSandbox

            # One session only: a warm pool would start interpreters nobody uses.
            owned = LocalSandbox(limits=self.limits, pool_size=0)
            self._sandbox = await self._stack.enter_async_context(owned)
        self._started = True

    async def execute(self, code: str) -> Execution:
        """Run one program in this tool's session and return its full result.

        Raises ``SandboxError`` when no session can be opened (the machine, not the program)
        and ``SessionLost`` when the session died under the program.
        """
        if not self._started or self._sandbox is None:
            raise SandboxError("the code tool is not started: use `async with CodeTool(...)`")
        async with self._lock:
            if self._closed:
                raise SandboxError("this code tool is closed")
            notices: tuple[str, ...] = ()
            if self._session is not None and self._session.closed:
                self._session, self._lost = None, True  # idled out
            if self._session is None:
                self._session = await self._sandbox.open_session()
                notices, self._lost = ((REOPENED_NOTICE,) if self._lost else ()), False
            limits = self.limits
            try:
                execution = await self._session.execute(
                    code,
                    self.tools,
                    timeout_s=limits.timeout_s if limits else None,
                    output_bytes=limits.output_bytes if limits else None,
                )
            except SandboxError as exc:
                dead, self._session, self._lost = self._session, None, True
                await _close_quietly(dead)
                raise SessionLost(str(exc)) from exc
            except asyncio.CancelledError:  # a framework's tool timeout: the program's state
                dead, self._session, self._lost = self._session, None, True  # is unknown
                closing = asyncio.get_running_loop().create_task(_close_quietly(dead))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
                raise
        if notices:
            execution = dataclasses.replace(execution, notices=notices + execution.notices)
        self.last_execution = execution
        return execution

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
        self._closed = True
        session, self._session = self._session, None  # a program still running ends with it
        try:
            if session is not None:
                await session.close()
            if self._closing:
                await asyncio.gather(*self._closing)
        finally:
            await self._stack.aclose()

    async def __aenter__(self) -> CodeTool:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


async def _close_quietly(session: Session) -> None:
    # A session that just died may fail to close in any way; it is being replaced anyway.
    with contextlib.suppress(Exception):
        await session.close()
