"""Running a hostile case and judging it: its own outcome, then the host's safety.

An ``Arena`` is one backend made ready for the suite: a shared sandbox (no warm pool, so no
process starts behind the suite's back), a shared session for harmless cases, and a *witness*
session opened before any case runs, which must keep working after every one of them. Every
problem a case shows is collected, so one failing run reports all it got wrong at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from hostile.host import Canaries, HostTools, Listeners, Proc
from hostile.table import Case, Context, Expect, Observed
from openptc.sandbox.base import Execution, Limits, Sandbox, Session

# How long past its own deadline an execution may take to be reported before the suite calls
# the host hung (a guard against a hang, not a measure of speed).
HANG_GUARD_S = 120.0
WITNESS_CODE = "print(await echo('witness'))"

SandboxFactory = Callable[[Limits], Sandbox]
Leftovers = Callable[[], Awaitable[set[str]]]


def error_text(execution: Execution) -> str:
    error = execution.error
    return "" if error is None else f"{error.type}: {error.message}\n{error.traceback}"


def all_text(execution: Execution) -> str:
    """Everything an execution hands back that could carry a leaked secret."""
    calls = "\n".join(f"{c.tool} {c.arguments} {c.error}" for c in execution.tool_calls)
    notices = "\n".join(execution.notices)
    return "\n".join([execution.stdout, execution.stderr, error_text(execution), notices, calls])


def judge(execution: Execution, expect: Expect, context: Context, label: str) -> list[str]:
    """What ``execution`` got wrong against ``expect``."""
    problems: list[str] = []
    outcome = "ok" if execution.error is None else execution.error.kind
    summary = (
        f"stdout={execution.stdout[:300]!r} stderr={execution.stderr[-300:]!r} "
        f"error={error_text(execution)[-500:]!r} notices={execution.notices!r}"
    )
    if outcome not in expect.outcomes:
        problems.append(
            f"{label}: ended {outcome!r}, expected {sorted(expect.outcomes)}; {summary}"
        )
    if expect.stdout is not None and execution.stdout != context.fill(expect.stdout):
        problems.append(f"{label}: stdout {execution.stdout[:300]!r} != {expect.stdout!r}")
    for wanted in expect.contains:
        if context.fill(wanted) not in execution.stdout:
            problems.append(f"{label}: {wanted!r} not in stdout; {summary}")
    text = all_text(execution)
    for unwanted in expect.lacks:
        if context.fill(unwanted) in text:
            problems.append(f"{label}: {unwanted!r} appeared; {summary}")
    message = error_text(execution)
    if execution.error is not None:
        problems += [
            f"{label}: {m!r} not in the error: {message[-500:]!r}"
            for m in expect.message
            if m not in message
        ]
    problems += [
        f"{label}: {m!r} in the error: {message[-500:]!r}"
        for m in expect.message_lacks
        if m in message
    ]
    return problems


@dataclass
class Arena:
    """One backend, ready to run cases against, and everything the host must keep safe."""

    backend: str
    limits: Limits
    make_sandbox: SandboxFactory
    leftovers: Leftovers  # processes or containers of the suite beyond those of open sessions
    canaries: Canaries
    listeners: Listeners
    tools: HostTools
    context: Context
    sandbox: Sandbox
    shared: Session
    witness: Session
    escape_dirs: tuple[Path, ...]
    # The test process before the arena was made: its descriptors and its child processes,
    # and the private directory its temporary files go to while the arena exists.
    baseline_fds: dict[int, str]
    baseline_procs: set[Proc]
    private_tmp: Path
    own: list[Sandbox] = field(default_factory=list)

    async def execute(
        self, session: Session, code: str, timeout_s: float | None, limits: Limits
    ) -> Execution:
        guard = min(timeout_s or limits.timeout_s, limits.timeout_s) + HANG_GUARD_S
        return await asyncio.wait_for(
            session.execute(code, self.tools.for_code, timeout_s=timeout_s), guard
        )

    async def run(self, case: Case) -> None:
        """Run ``case``; fail with every problem it showed, its own and the host's."""
        self.tools.reset()
        limits = case.limits or self.limits
        before = await self.leftovers()
        sandbox: Sandbox | None = None
        session = self.shared
        problems: list[str] = []
        executions: list[Execution] = []
        try:
            if case.placement == "own":
                sandbox = self.make_sandbox(limits)
                self.own.append(sandbox)
                session = await sandbox.open_session()
            elif case.placement == "fresh":
                session = await self.sandbox.open_session()
            execution, witness_first = await self._execute_case(case, session, limits)
            executions.append(execution)
            problems += judge(execution, case.expect_for(self.backend), self.context, case.name)
            if case.check is not None:
                observed = Observed(
                    limits=limits,
                    max_in_flight=self.tools.max_in_flight,
                    secret_calls=self.tools.secret_calls,
                    hang_cancelled=self.tools.hang_cancelled,
                    witness_finished_first=witness_first,
                )
                try:
                    case.check(execution, observed)
                except AssertionError as exc:
                    problems.append(f"{case.name}: {exc}")
                except AttributeError as exc:  # a Limits field the contract names, not there yet
                    problems.append(f"{case.name}: {type(exc).__name__}: {exc}")
            if case.followup is not None:
                code = self.context.fill(case.followup.program)
                after = await self.execute(session, code, None, limits)
                executions.append(after)
                problems += judge(after, case.followup.expect, self.context, "next execution")
        finally:
            if session is not self.shared:
                await session.close()
            if sandbox is not None:
                await sandbox.aclose()
                self.own.remove(sandbox)
        problems += await self.host_problems(executions)
        if case.placement != "shared":
            left = await self.leftovers() - before
            if left:
                problems.append(f"left behind after the session closed: {sorted(left)}")
        assert not problems, "\n".join(problems)

    async def _execute_case(
        self, case: Case, session: Session, limits: Limits
    ) -> tuple[Execution, bool | None]:
        code = self.context.fill(case.program)
        if not case.witness_during:
            return await self.execute(session, code, case.timeout_s, limits), None
        # The witness calls a tool once the flood has begun: it must not wait for the flood.
        running = asyncio.ensure_future(self.execute(session, code, case.timeout_s, limits))
        started = asyncio.ensure_future(self.tools.first_cheap_call.wait())
        await asyncio.wait([running, started], return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        witness = await self.execute(self.witness, WITNESS_CODE, None, self.limits)
        first = not running.done()
        assert witness.stdout == "witness\n", witness
        return await running, first

    async def host_problems(self, executions: list[Execution]) -> list[str]:
        """Whether the host, its other sessions and the machine are as they were."""
        problems = []
        for execution in executions:
            text = all_text(execution)
            problems += [
                f"host secret #{number} leaked into what the sandbox returned"
                for number, value in enumerate(self.canaries.values)
                if value in text
            ]
        if self.listeners.hits:
            problems.append(f"the host's listeners were reached: {self.listeners.hits}")
            self.listeners.hits.clear()
        if not self.canaries.intact():
            problems.append("a host file was changed")
        for folder in self.escape_dirs:
            escaped = folder / self.context.escape
            if escaped.exists():
                problems.append(f"a file was written on the host: {escaped}")
                with contextlib.suppress(OSError):
                    escaped.unlink()
        if self.tools.secret_calls:
            problems.append(f"a tool not allowed ran {self.tools.secret_calls} time(s)")
        witness = await self.execute(self.witness, WITNESS_CODE, None, self.limits)
        if witness.stdout != "witness\n" or witness.error or witness.notices:
            problems.append(f"the witness session was harmed: {witness}")
        return problems
