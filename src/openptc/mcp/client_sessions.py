"""One sandbox session per MCP client connection: the interpreter that keeps a client's variables
between ``run_code`` calls, opened on its first program and closed when the client goes.

A connection's programs run one at a time, in order. A session that is gone (idled out on the
sandbox, lost with a remote server) is replaced on the next program, with a notice that says its
variables are gone; so is one whose program the client cancelled, since nobody knows what state
the cancelled program left. A sandbox that cannot open a session at all is an error for that
call only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from openptc.sandbox.base import Execution, Sandbox, SandboxError, Session, ToolHost

__all__ = ["ClientSandbox", "SessionGone"]

log = logging.getLogger("openptc.mcp")

REOPENED_NOTICE = (
    "this connection's sandbox session had ended (a program was cancelled, the session idled "
    "out, or it was lost) and a new one was opened: variables, imports and files from earlier "
    "runs are gone"
)


class SessionGone(SandboxError):
    """The sandbox failed while running this program; the next program gets a new session."""


class ClientSandbox:
    """The sandbox session of one client connection, opened lazily and reopened when lost."""

    def __init__(self, sandbox: Sandbox, *, label: str = "") -> None:
        self._sandbox = sandbox
        self._label = label
        self._session: Session | None = None
        self._had_session = False
        self._lock = asyncio.Lock()
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def session(self) -> Session | None:
        """The live session, if a program has run and the session has not been lost since."""
        return self._session

    @property
    def closed(self) -> bool:
        return self._closed

    async def run(self, code: str, tools: ToolHost, *, timeout_s: float | None = None) -> Execution:
        """Run one program in this connection's session. Raises ``SandboxError`` when no
        session can be had, ``SessionGone`` when the session died under the program."""
        async with self._lock:
            if self._closed:
                raise SandboxError("this connection is closed")
            notices: tuple[str, ...] = ()
            if self._session is not None and self._session.closed:
                self._session = None
            if self._session is None:
                self._session = await self._sandbox.open_session()
                if self._had_session:
                    notices = (REOPENED_NOTICE,)
                self._had_session = True
                log.debug("opened sandbox session %s for %s", self._session.id, self._label)
            try:
                execution = await self._session.execute(code, tools, timeout_s=timeout_s)
            except SandboxError as exc:
                dead, self._session = self._session, None
                await _close_quietly(dead)
                raise SessionGone(str(exc)) from exc
            except asyncio.CancelledError:  # the client gave up: close it without waiting here
                dead, self._session = self._session, None
                closing = asyncio.get_running_loop().create_task(_close_quietly(dead))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
                raise
            if notices:
                execution = dataclasses.replace(execution, notices=notices + execution.notices)
            return execution

    async def aclose(self) -> None:
        """Close the session; later programs are refused. Safe to call more than once."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            log.debug("closing sandbox session %s of %s", session.id, self._label)
            await _close_quietly(session)
        if self._closing:
            await asyncio.gather(*self._closing)


async def _close_quietly(session: Session) -> None:
    # A session that just died may fail to close in any way; it is being dropped anyway.
    with contextlib.suppress(Exception):
        await session.close()
