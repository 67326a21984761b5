"""PTC on code interpreters that cannot call back, by deterministic re-execution ("replay").

A managed code interpreter (Bedrock AgentCore and the like) runs code and returns its output; a
program inside it cannot reach the application's tools. ``ReplaySandbox`` runs the program anyway,
in passes (``harness`` runs each one inside the interpreter, ``execution`` drives them from the
host): a pass runs the program with the tool results known so far and ends at the first step that
needs unknown ones; the host runs those calls concurrently, adds their results to the table, and
runs the program again. The last pass's output is the result. Every tool call runs on the host
exactly once; a program costs one pass per level of dependent calls, plus one. Pre-loaded tools
(``portable``) run inside the interpreter and cost no pass at all. This module holds the sandbox
and its sessions: one interpreter each, with the harness installed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from types import TracebackType

from openptc.sandbox.base import Execution, Isolation, Limits, SandboxError, SessionClosed, ToolHost
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.local.isolation import IsolationMode
from openptc.sandbox.managed import shipping
from openptc.sandbox.managed.execution import ReplayExecution, output_tail
from openptc.sandbox.managed.interpreter import CodeInterpreter, LocalInterpreter
from openptc.sandbox.managed.portable import PortableTool

InterpreterFactory = Callable[[], Awaitable[CodeInterpreter]]

DEFAULT_MAX_PASSES = 50
# What the harness prints (the program's capped output plus the calls it asks for) must fit through
# the local interpreter's own output cap.
TRANSPORT_OUTPUT_BYTES = 16 * 1024 * 1024
MANAGED = Isolation(level="managed")


class ReplaySandbox:
    """A ``Sandbox`` over any ``CodeInterpreter``: one interpreter per session, tools by replay.

    ``preloaded`` tools are installed into every session's interpreter when it opens and called
    there directly; a pre-loaded tool with the name of a host tool takes its calls.
    """

    def __init__(
        self,
        interpreter_factory: InterpreterFactory,
        *,
        limits: Limits | None = None,
        max_passes: int = DEFAULT_MAX_PASSES,
        preloaded: Sequence[PortableTool] = (),
    ) -> None:
        if max_passes < 1:
            raise ValueError("max_passes must be at least 1")
        names = [t.name for t in preloaded]
        if len(set(names)) != len(names):
            raise ValueError(f"pre-loaded tool names must be unique, got {names}")
        self.limits = limits or Limits()
        self.max_passes = max_passes
        self.preloaded = tuple(preloaded)
        self._factory = interpreter_factory
        self._local: LocalSandbox | None = None
        self._sessions: set[ReplaySession] = set()
        self._closed = False
        self._harness: str | None = None

    @classmethod
    def local(
        cls,
        limits: Limits | None = None,
        *,
        max_passes: int = DEFAULT_MAX_PASSES,
        preloaded: Sequence[PortableTool] = (),
        pool_size: int = 1,
        isolation: IsolationMode = "auto",
    ) -> ReplaySandbox:
        """Replay over the local sandbox used as a stateless interpreter (no cloud needed).

        The sandbox is this object's own and is closed with it.
        """
        limits = limits or Limits()
        transport = dataclasses.replace(
            limits, output_bytes=max(limits.output_bytes, TRANSPORT_OUTPUT_BYTES)
        )
        local = LocalSandbox(transport, pool_size=pool_size, isolation=isolation)
        sandbox = cls(
            partial(LocalInterpreter.open, local),
            limits=limits,
            max_passes=max_passes,
            preloaded=preloaded,
        )
        sandbox._local = local
        return sandbox

    async def __aenter__(self) -> ReplaySandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def isolation(self) -> Isolation:
        """The provider's for a managed interpreter; the local sandbox's measured one locally."""
        return MANAGED if self._local is None else self._local.isolation

    @property
    def harness(self) -> str:
        if self._harness is None:
            self._harness = shipping.harness_source()
        return self._harness

    async def start(self) -> None:
        if self._local is not None:
            await self._local.start()

    async def open_session(self) -> ReplaySession:
        """A fresh interpreter with the harness and the pre-loaded tools installed."""
        if self._closed:
            raise SandboxError("this sandbox is closed")
        await self.start()
        session = ReplaySession(self, await self._factory())
        try:
            await session.install(self.limits.timeout_s)
        except BaseException:
            await session.close()
            raise
        self._sessions.add(session)
        return session

    async def aclose(self) -> None:
        """Close every session; a local sandbox of our own goes with them."""
        self._closed = True
        sessions, self._sessions = list(self._sessions), set()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        if self._local is not None:
            await self._local.aclose()

    def _forget(self, session: ReplaySession) -> None:
        self._sessions.discard(session)


class ReplaySession:
    """One interpreter session; executions run one at a time, variables persist between them."""

    def __init__(self, sandbox: ReplaySandbox, interpreter: CodeInterpreter) -> None:
        nonce = secrets.token_hex(8)
        self.sandbox = sandbox
        self.interpreter = interpreter
        self.module = f"openptc_replay_{nonce}"
        self.marker = shipping.marker_for(nonce)
        self._id = "replay_" + secrets.token_urlsafe(12)
        self._lock = asyncio.Lock()
        self._closed = False
        self._executions = 0
        self._installed = False
        # Installed, and no pass has run since: losing the harness now means the interpreter
        # keeps no state between runs, so every pass must carry it (``self_contained``).
        self.fresh = False
        self.self_contained = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed

    def setup_code(self, *, announce: bool = True) -> str:
        return shipping.setup_code(
            self.sandbox.harness,
            self.module,
            self.marker,
            [t.spec() for t in self.sandbox.preloaded],
            announce=announce,
        )

    async def install(self, timeout_s: float) -> bool:
        """Install the harness and the pre-loaded tools; True if they had been installed before
        (the interpreter restarted and lost them). SandboxError says why it failed."""
        run = await self.interpreter.run(self.setup_code(), timeout_s=timeout_s)
        where = f"the {self.interpreter.name} interpreter"
        try:
            answer = shipping.parse_envelope(run.stdout, self.marker)
        except ValueError:
            answer = None
        if answer is None:
            detail = output_tail(run.stderr or run.stdout) or "no output"
            raise SandboxError(f"could not install the replay harness in {where}: {detail}")
        if answer["status"] != "ready":
            message = (answer.get("error") or {}).get("message", "no reason given")
            raise SandboxError(f"could not set up {where}: {message}")
        again, self._installed = self._installed, True
        self.fresh = True
        return again

    async def execute(
        self,
        code: str,
        tools: ToolHost | None = None,
        *,
        timeout_s: float | None = None,
        output_bytes: int | None = None,
    ) -> Execution:
        """Run ``code`` to its end in as many passes as its dependent tool calls need."""
        async with self._lock:
            if self._closed:
                raise SessionClosed(f"session {self._id} is closed; open a new session")
            self._executions += 1
            sandbox = self.sandbox
            limits = sandbox.limits.for_execution(timeout_s, output_bytes)
            execution = ReplayExecution(
                self, code, tools, limits, self._executions, sandbox.max_passes, sandbox.isolation
            )
            return await execution.run()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sandbox._forget(self)
        await self.interpreter.close()
