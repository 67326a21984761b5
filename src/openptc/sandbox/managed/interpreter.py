"""Code interpreters that cannot call back into the host: managed services and their stand-ins.

A managed code interpreter (Bedrock AgentCore Code Interpreter and the like) runs code and
returns its output, nothing more: the program cannot reach the application's tools. The replay
backend (``replay.py``) makes PTC work on any such ``CodeInterpreter`` by re-running the
program with the tool results known so far; pre-loaded tools run inside it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from openptc.sandbox.base import ToolHost
from openptc.sandbox.local import LocalSandbox, LocalSession


@dataclass(frozen=True)
class CodeRun:
    """What an interpreter returned for one piece of code."""

    stdout: str
    stderr: str
    is_error: bool
    duration_ms: float


@runtime_checkable
class CodeInterpreter(Protocol):
    """Runs Python code in a session; state may persist between runs of one session."""

    @property
    def name(self) -> str: ...

    async def run(self, code: str, *, timeout_s: float) -> CodeRun: ...

    async def close(self) -> None: ...


class LocalInterpreter:
    """A ``CodeInterpreter`` backed by a local sandbox session, used as a stateless one.

    It lets the replay backend run (and be tested) without any cloud service: the session is
    given no tools, so the program cannot call back, exactly as in a managed interpreter.
    """

    def __init__(self, session: LocalSession) -> None:
        self._session = session

    @classmethod
    async def open(cls, sandbox: LocalSandbox) -> LocalInterpreter:
        return cls(await sandbox.open_session())

    @property
    def name(self) -> str:
        return "local"

    async def run(self, code: str, *, timeout_s: float) -> CodeRun:
        no_tools: ToolHost | None = None
        execution = await self._session.execute(code, no_tools, timeout_s=timeout_s)
        stderr = execution.stderr
        if execution.error is not None:
            stderr += execution.error.render()
        return CodeRun(
            stdout=execution.stdout,
            stderr=stderr,
            is_error=execution.error is not None,
            duration_ms=execution.duration_ms,
        )

    async def close(self) -> None:
        await self._session.close()
