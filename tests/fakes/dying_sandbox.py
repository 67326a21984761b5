"""A sandbox whose every session dies under every program, as a lost remote server's does: for
the holders of a session (agent, ``CodeTool``, MCP connection) to show how they replace it."""

from __future__ import annotations

from typing import Any

from openptc.sandbox.base import Execution, Isolation, SandboxError


class DyingSession:
    id = "sess_dying"
    closed = False

    def __init__(self, why: str) -> None:
        self._why = why

    async def execute(self, code: str, tools: Any = None, **limits: Any) -> Execution:
        raise SandboxError(self._why)

    async def close(self) -> None:
        self.closed = True


class DyingSandbox:
    isolation = Isolation(level="process")

    def __init__(self, why: str = "the sandbox server went away") -> None:
        self.why = why
        self.opened: list[DyingSession] = []

    async def open_session(self) -> DyingSession:
        self.opened.append(DyingSession(self.why))
        return self.opened[-1]

    async def aclose(self) -> None:
        pass
