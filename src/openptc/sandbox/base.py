"""What every sandbox backend promises: limits, the execution result, the tool host, errors.

Backends (local, docker, remote, replay) differ in *where* code runs; the types here are what the
agent loop and the proxy see, so they stay the same for all of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class Limits:
    """Resource limits of one execution (wall clock, output) and of its session (the rest).

    CPU seconds are a budget for the whole session, because the kernel counts CPU time per
    process; the wall-clock timeout is what bounds a single execution. Memory and processes
    hold for the whole sandbox where it has a cgroup (see ``Isolation.cgroup``), per process
    where it has not. ``tool_calls`` is a budget per execution; at most ``calls_in_flight`` of
    them run on the host at once (the rest wait their turn), so one program's flood of calls
    cannot crowd out other sessions.
    """

    timeout_s: float = 30.0
    cpu_s: int = 300
    memory_mb: int = 512
    output_bytes: int = 64_000
    file_size_mb: int = 16
    processes: int = 32
    open_files: int = 256
    disk_mb: int = 64
    tool_calls: int = 10_000
    calls_in_flight: int = 256

    def for_execution(
        self, timeout_s: float | None = None, output_bytes: int | None = None
    ) -> Limits:
        """The limits of one execution: a request may only lower the configured ones.

        Only the wall clock and the output cap can change per execution; memory, CPU, files and
        processes are enforced by the kernel for the interpreter's lifetime, so they are set
        once, on the sandbox.
        """
        return dataclasses.replace(
            self,
            timeout_s=self.timeout_s if timeout_s is None else min(self.timeout_s, timeout_s),
            output_bytes=(
                self.output_bytes if output_bytes is None else min(self.output_bytes, output_bytes)
            ),
        )


IsolationLevel = Literal["bubblewrap", "docker", "process", "managed"]


@dataclass(frozen=True)
class Isolation:
    """How strongly a sandbox is isolated, reported on every execution and by ``ptc doctor``."""

    level: IsolationLevel
    namespaces: tuple[str, ...] = ()
    dedicated_uid: bool = False
    read_only_root: bool = False
    # How memory and process limits are held for the whole sandbox, e.g. "cgroup v1 (memory,
    # pids)"; empty where they can only be set per process.
    cgroup: str = ""
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.level == "bubblewrap":
            ns = ", ".join(self.namespaces)
            text = f"bubblewrap namespaces ({ns}), read-only root, scrubbed environment, rlimits"
        elif self.level == "docker":
            text = (
                "Docker container: no network, read-only root file system, non-root user, "
                "all capabilities dropped, no-new-privileges, pids/memory/CPU limits, "
                f"namespaces ({', '.join(self.namespaces)})"
            )
        elif self.level == "managed":
            text = "a managed code interpreter: isolation is the provider's"
        else:
            text = "separate process with rlimits and a scrubbed environment only (NO namespaces)"
        if self.cgroup:
            text += f"; memory and process limits for the whole sandbox ({self.cgroup})"
        if self.warnings:
            text += "; WARNING: " + "; ".join(self.warnings)
        return text


CallOutcome = Literal["ok", "error", "cancelled"]


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call the program made: after a failure this says which side effects happened."""

    call_id: int
    tool: str
    arguments: dict[str, Any]
    outcome: CallOutcome
    error: str | None
    duration_ms: float


ErrorKind = Literal[
    "syntax",
    "exception",
    "timeout",
    "memory",
    "cpu",
    "crashed",
    "bridge",
]


@dataclass(frozen=True)
class ExecutionError:
    """Why an execution did not finish normally, in words a model can act on."""

    kind: ErrorKind
    type: str
    message: str
    traceback: str = ""
    line: int | None = None

    def render(self) -> str:
        return self.traceback or f"{self.type}: {self.message}"


@dataclass(frozen=True)
class Execution:
    """The result of running one program: what it printed, how it ended, what it called."""

    stdout: str
    stderr: str
    error: ExecutionError | None
    tool_calls: tuple[ToolCallRecord, ...]
    duration_ms: float
    isolation: Isolation
    stdout_truncated: bool = False
    notices: tuple[str, ...] = field(default=())
    # How many times the program ran to get its result: 1 for live backends, the depth of
    # dependent tool calls (plus one) for the replay backend.
    passes: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_model_text(self) -> str:
        """What goes back into the model's context as the code tool's result."""
        parts: list[str] = []
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        parts.extend(f"[note] {n}" for n in self.notices)
        if self.error is not None:
            parts.append("[error]\n" + self.error.render().rstrip("\n"))
            if self.tool_calls:
                parts.append(f"[tool calls that ran before the error] {self.call_summary()}")
        if not parts:
            parts.append("(the program printed nothing; use print() to return results)")
        return "\n".join(parts)

    def call_summary(self, itemize: int = 10) -> str:
        """Which calls ran and how they ended: each one when few, counts per tool when many."""
        if len(self.tool_calls) <= itemize:
            return ", ".join(f"{c.tool}#{c.call_id}:{c.outcome}" for c in self.tool_calls)
        counts: dict[str, dict[str, int]] = {}
        for call in self.tool_calls:
            per_tool = counts.setdefault(call.tool, {})
            per_tool[call.outcome] = per_tool.get(call.outcome, 0) + 1
        return "; ".join(
            f"{tool}: " + ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
            for tool, outcomes in counts.items()
        )


@dataclass(frozen=True)
class ToolSignature:
    """What the sandbox needs to know of a tool: its name and parameter order.

    The parameter order lets a program call ``f("a", 2)`` as well as ``f(x="a", y=2)`` and
    ``f({"x": "a", "y": 2})``; the host receives one dict of arguments in every case.
    """

    name: str
    params: tuple[str, ...]


class ToolCallError(Exception):
    """Raised by a tool host to make the program see a (catchable) exception from a tool."""

    def __init__(self, message: str, *, kind: str = "ToolError") -> None:
        super().__init__(message)
        self.kind = kind


@runtime_checkable
class ToolHost(Protocol):
    """The tools a program may call; implemented by ``Toolbox`` and by the proxy's client tools."""

    def signatures(self) -> Sequence[ToolSignature]: ...

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run one call and return a JSON value, or raise ``ToolCallError``."""
        ...


@runtime_checkable
class BlockAwareToolHost(ToolHost, Protocol):
    """A tool host that must know when the program waits with every call it can make issued.

    The proxy answers its client with exactly the calls a program issued before it blocked;
    the sandbox calls ``program_blocked`` after handing over those calls.
    """

    def program_blocked(self) -> None: ...


class SandboxError(Exception):
    """The sandbox itself failed (could not start, lost its process) — not the program."""


class SessionClosed(SandboxError):
    """The session was closed or expired; open a new one."""


@runtime_checkable
class Session(Protocol):
    """A live interpreter: variables, imports and files persist between executions."""

    @property
    def id(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    async def execute(
        self,
        code: str,
        tools: ToolHost | None = None,
        *,
        timeout_s: float | None = None,
        output_bytes: int | None = None,
    ) -> Execution: ...

    async def close(self) -> None: ...


@runtime_checkable
class Sandbox(Protocol):
    """A factory of sessions (and owner of any warm pool)."""

    @property
    def isolation(self) -> Isolation: ...

    async def open_session(self) -> Session: ...

    async def aclose(self) -> None: ...
