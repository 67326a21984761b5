"""One sandbox session per MCP client connection: the interpreter that keeps a client's variables
between ``run_code`` calls, opened on its first program and closed when the client goes.

The rules (one program at a time, a lost, idled-out or cancelled session replaced with a notice)
are ``HeldSession``'s; what is the connection's own is the notice's wording, for a client that
may have cancelled, and a quiet close, since nobody is left to tell.
"""

from __future__ import annotations

import contextlib
import logging

from openptc.sandbox.base import Sandbox
from openptc.sandbox.held_session import HeldSession, SessionLost

__all__ = ["ClientSandbox", "SessionGone"]

log = logging.getLogger("openptc.mcp")

REOPENED_NOTICE = (
    "this connection's sandbox session had ended (a program was cancelled, the session idled "
    "out, or it was lost) and a new one was opened: variables, imports and files from earlier "
    "runs are gone"
)

SessionGone = SessionLost  # the sandbox failed while running a program; the next gets a new one


class ClientSandbox(HeldSession):
    """The sandbox session of one client connection, opened lazily and reopened when lost."""

    def __init__(self, sandbox: Sandbox, *, label: str = "") -> None:
        refused = "this connection is closed"
        super().__init__(sandbox, notice=REOPENED_NOTICE, refused=refused, log=log, label=label)

    async def aclose(self) -> None:
        """Close the session, quietly (the client is gone); later programs are refused."""
        with contextlib.suppress(Exception):
            await super().aclose()
