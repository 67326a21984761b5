"""One sandbox session held for a conversation: an agent's run, a ``CodeTool``, an MCP client
connection. Each needs variables to persist from one program to the next, so each holds one
session; the rules of holding it are written once, here.

The session opens on the first program, not before, so it cannot idle out while a model thinks.
Programs run one at a time: a session is one interpreter. A session gone by the next program
(idled out on the sandbox, lost with a remote server, dropped after a failure or cancellation)
is replaced, and that program's result carries the holder's notice, worded for its reader, that
earlier variables are gone: whoever wrote the program must not count on them. A session that
dies under a program raises ``SessionLost``, for the holder to word. A program cancelled mid-run
(a framework's tool timeout, a client giving up) left its session in an unknown state: it is
closed in the background, so the cancellation is not held up, and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from openptc.sandbox.base import Execution, Limits, Sandbox, SandboxError, Session, ToolHost

__all__ = ["HeldSession", "SessionLost"]


class SessionLost(SandboxError):
    """The session died under a program (crash, lost server); the next program gets a new one."""


class HeldSession:
    """The one session of a conversation over ``sandbox``, opened lazily and reopened when lost.

    Without a ``sandbox`` the holder starts a ``LocalSandbox`` of its own (with ``limits``) and
    closes it in ``aclose``; a sandbox passed in is borrowed and left open. ``notice`` is what a
    program run in a replacement session is told; ``refused`` is the error once closed.
    """

    def __init__(
        self,
        sandbox: Sandbox | None,
        *,
        notice: str,
        limits: Limits | None = None,
        refused: str = "this session holder is closed",
        log: logging.Logger | None = None,
        label: str = "",
    ) -> None:
        self._sandbox = sandbox
        self._notice = notice
        self._limits = limits
        self._refused = refused
        self._log = log or logging.getLogger("openptc.sandbox")
        self._label = label
        self._stack = contextlib.AsyncExitStack()
        self._session: Session | None = None
        self._had_session = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def session(self) -> Session | None:
        """The live session, if a program has run and the session has not been lost since."""
        return self._session

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> Sandbox:
        """The sandbox, started first if it is the holder's own (no warm pool: one session)."""
        if self._sandbox is None:
            from openptc.sandbox.local import LocalSandbox  # only callers that run code need it

            owned = LocalSandbox(limits=self._limits, pool_size=0)
            self._sandbox = await self._stack.enter_async_context(owned)
        return self._sandbox

    async def run(
        self,
        code: str,
        tools: ToolHost,
        *,
        timeout_s: float | None = None,
        output_bytes: int | None = None,
    ) -> Execution:
        """Run one program in the held session; each limit left ``None`` comes from ``limits``.

        Raises ``SandboxError`` when no session can be opened (the machine, not the program)
        and ``SessionLost`` when the session died under the program.
        """
        if self._limits is not None:
            timeout_s = self._limits.timeout_s if timeout_s is None else timeout_s
            output_bytes = self._limits.output_bytes if output_bytes is None else output_bytes
        async with self._lock:
            if self._closed:
                raise SandboxError(self._refused)
            if self._session is not None and self._session.closed:
                self._session = None  # idled out or lost since the last program
            notices: tuple[str, ...] = ()
            if self._session is None:
                self._session = await (await self.start()).open_session()
                notices = (self._notice,) if self._had_session else ()
                self._had_session = True
                self._log.debug("opened sandbox session %s for %s", self._session.id, self._label)
            try:
                execution = await self._session.execute(
                    code, tools, timeout_s=timeout_s, output_bytes=output_bytes
                )
            except SandboxError as exc:
                dead, self._session = self._session, None
                await _close_quietly(dead)
                raise SessionLost(str(exc)) from exc
            except asyncio.CancelledError:  # what the program left is unknown: replace it
                dead, self._session = self._session, None
                closing = asyncio.get_running_loop().create_task(_close_quietly(dead))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
                raise
        if notices:
            execution = dataclasses.replace(execution, notices=notices + execution.notices)
        return execution

    async def aclose(self) -> None:
        """Close the session and an owned sandbox; later programs are refused. Idempotent."""
        self._closed = True
        session, self._session = self._session, None  # a program still running ends with it
        try:
            if session is not None:
                self._log.debug("closing sandbox session %s of %s", session.id, self._label)
                await session.close()
            await asyncio.gather(*self._closing)
        finally:
            await self._stack.aclose()


async def _close_quietly(session: Session) -> None:
    # A session that just died may fail to close in any way; it is being dropped anyway.
    with contextlib.suppress(Exception):
        await session.close()
