"""One execution over replay: the pass loop, the table of known results, the host's tool calls,
and the errors an execution can end with.

Apart from ``replay.py`` (the sandbox and its sessions) because it is a different idea: what one
``execute`` does, pass after pass, given a session whose interpreter has the harness installed.
The session is seen through ``HarnessSession``, what this needs of it, so that neither module
imports the other's classes both ways.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any, Protocol

from openptc.sandbox import protocol
from openptc.sandbox.base import (
    Execution,
    ExecutionError,
    Isolation,
    Limits,
    SandboxError,
    ToolCallError,
    ToolCallRecord,
    ToolHost,
)
from openptc.sandbox.call_budget import budget_error
from openptc.sandbox.host_calls import run_tool_call
from openptc.sandbox.managed import shipping
from openptc.sandbox.managed.interpreter import CodeInterpreter

# An interpreter that does not stop at its timeout is given up on this much later.
TIMEOUT_GRACE_S = 5.0
RESTART_NOTICE = (
    "the interpreter had restarted (timeout or crash) before this run: variables, imports and "
    "files from earlier runs are gone"
)
STATELESS_NOTICE = (
    "this interpreter keeps no state between runs: each program starts afresh, so variables "
    "and imports from earlier programs are not available here"
)
_TAIL = 2000


class HarnessSession(Protocol):
    """What an execution needs of its session: the interpreter and the harness installed in it."""

    interpreter: CodeInterpreter
    module: str
    marker: str
    # Installed, and no pass has run since; and whether every pass must carry the harness.
    fresh: bool
    self_contained: bool

    def setup_code(self, *, announce: bool = True) -> str: ...

    async def install(self, timeout_s: float) -> bool: ...


class HostCalls:
    """Runs the calls one pass asked for, concurrently, keeping a record of each."""

    def __init__(self, tools: ToolHost | None) -> None:
        self.tools = tools
        self.records: list[ToolCallRecord] = []

    async def run(self, call_id: int, tool: str, args: dict[str, Any]) -> str:
        """The call's table entry, encoded as JSON; a failing tool is an entry too."""

        def on_value(value: Any) -> str:
            try:
                return _encode({"tool": tool, "args": args, "ok": True, "value": value})
            except (TypeError, ValueError) as exc:
                raise ToolCallError(f"the tool returned a value that is not JSON: {exc}") from None

        return await run_tool_call(
            self.tools,
            call_id,
            tool,
            args,
            records=self.records,
            on_value=on_value,
            on_error=lambda error: self.refuse(tool, args, error),
        )

    @staticmethod
    def refuse(tool: str, args: dict[str, Any], error: ToolCallError) -> str:
        """The table entry of a call that failed, or never ran (over the budget)."""
        failure = {"type": error.kind, "message": str(error)}
        return _encode({"tool": tool, "args": args, "ok": False, "error": failure})


class ReplayExecution:
    """One execution: the pass loop, the table of known results and the log of host calls."""

    def __init__(
        self,
        session: HarnessSession,
        code: str,
        tools: ToolHost | None,
        limits: Limits,
        number: int,
        max_passes: int,
        isolation: Isolation,
    ) -> None:
        self.session = session
        self.code = code
        self.tools = tools
        self.limits = limits
        self.number = number
        self.max_passes = max_passes
        self.isolation = isolation  # what the execution reports: the sandbox's
        self.signatures = [
            {"name": s.name, "params": list(s.params)}
            for s in (tools.signatures() if tools else [])
        ]
        self.steps: list[list[str]] = []  # the table: encoded entries, step by step
        self.sent = 0  # how many steps the interpreter already holds
        self.records: list[ToolCallRecord] = []
        self.notices: list[str] = []
        if session.self_contained and number > 1:
            self.notices.append(STATELESS_NOTICE)
        self.passes = 0
        self.clock = time.time()
        self.seed = secrets.randbits(32)
        self.started = time.perf_counter()
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + limits.timeout_s

    async def run(self) -> Execution:
        while True:
            answer = await self.run_pass()
            if isinstance(answer, ExecutionError):
                return self.result(error=answer)
            status = answer["status"]
            if status == "need_calls" and self.passes >= self.max_passes:
                return self.result(error=self.pass_limit_error())  # before more side effects
            if status == "need_calls":
                failure = await self.call_tools(answer.get("calls"))
                if failure is not None:
                    return self.result(error=failure)
            elif status == "diverged":
                return self.result(error=self.divergence_error(answer.get("divergence") or {}))
            elif status in ("done", "error"):
                return self.result(answer)
            else:
                return self.result(error=_crashed(f"the harness answered {status!r}"))

    # -- passes ---------------------------------------------------------------------------------
    def pass_config(self) -> dict[str, Any]:
        filename = "<program>" if self.number == 1 else f"<program {self.number}>"
        return {
            "execution": self.number,
            "program": self.code,
            "filename": filename,
            "tools": self.signatures,
            "clock": self.clock,
            "seed": self.seed,
            "output_bytes": self.limits.output_bytes,
            "table_start": self.sent,
        }

    async def run_pass(self) -> dict[str, Any] | ExecutionError:
        """Run the program once. If the interpreter lost the harness or the table (it restarted,
        or it keeps no state at all), restore them first; that is not a pass."""
        session = self.session
        for _ in range(4):
            answer = await self.run_program()
            if isinstance(answer, ExecutionError):
                return answer
            status = answer["status"]
            if status not in ("need_setup", "need_table"):
                session.fresh = False
                return answer
            self.sent = 0
            if status == "need_table":
                continue
            if session.fresh:
                session.self_contained = True
            elif await session.install(max(self.deadline - self.loop.time(), 1.0)):
                self.notices.append(RESTART_NOTICE)
        return _crashed("the interpreter keeps losing the replay harness between runs")

    async def run_program(self) -> dict[str, Any] | ExecutionError:
        """One run in the interpreter: the harness's answer, or why there is none."""
        session = self.session
        remaining = self.deadline - self.loop.time()
        if remaining <= 0:
            return self.timeout_error()
        sending = len(self.steps)
        code = shipping.pass_code(
            session.module, session.marker, self.pass_config(), self.steps[self.sent :]
        )
        if session.self_contained:
            code = session.setup_code(announce=False) + code
        self.passes += 1
        try:
            async with asyncio.timeout(remaining + TIMEOUT_GRACE_S):
                run = await session.interpreter.run(code, timeout_s=remaining)
        except TimeoutError:
            return self.timeout_error()
        except SandboxError as exc:  # e.g. the managed session expired between passes
            return _crashed(
                f"the {session.interpreter.name} interpreter failed between passes ({exc}); "
                "the tool calls listed below already ran and were not repeated"
            )
        try:
            answer = shipping.parse_envelope(run.stdout, session.marker)
        except ValueError as exc:
            return _crashed(
                f"the replay result from the {session.interpreter.name} interpreter was cut "
                f"short or malformed ({exc}); its output limit may be too small"
            )
        if answer is None:
            if self.loop.time() >= self.deadline:
                return self.timeout_error()
            detail = output_tail(run.stderr or run.stdout) or "no output"
            return _crashed(
                f"the {session.interpreter.name} interpreter returned no replay result: {detail}"
            )
        if answer["status"] in ("need_setup", "need_table"):
            self.passes -= 1  # the program did not run
        else:
            self.sent = sending
        return answer

    async def call_tools(self, calls: Any) -> ExecutionError | None:
        """Run the calls a pass asked for, all at once; their results are the table's next step."""
        first = self.known + 1
        try:
            parsed = [(int(c["id"]), str(c["tool"]), dict(c["args"])) for c in calls]
        except (TypeError, KeyError, ValueError):
            return _crashed("the harness asked for tool calls in a malformed list")
        if not parsed or [c[0] for c in parsed] != list(range(first, first + len(parsed))):
            return _crashed("the harness asked for tool calls out of order")
        host = HostCalls(self.tools)
        in_flight = asyncio.Semaphore(self.limits.calls_in_flight)

        async def run(call_id: int, tool: str, args: dict[str, Any]) -> str:
            if call_id > self.limits.tool_calls:  # ids count the run's calls from 1
                return host.refuse(tool, args, budget_error(self.limits))
            async with in_flight:
                return await host.run(call_id, tool, args)

        tasks = [asyncio.create_task(run(*call)) for call in parsed]
        try:
            async with asyncio.timeout(self.deadline - self.loop.time()):
                entries = await asyncio.gather(*tasks)
        except TimeoutError:
            await asyncio.gather(*tasks, return_exceptions=True)
            self.records.extend(host.records)
            return self.timeout_error()
        self.records.extend(host.records)
        self.steps.append(entries)
        return None

    @property
    def known(self) -> int:
        return sum(map(len, self.steps))

    # -- results --------------------------------------------------------------------------------
    def result(
        self, answer: dict[str, Any] | None = None, *, error: ExecutionError | None = None
    ) -> Execution:
        """The execution as the agent sees it: the final pass's output, or why there is none."""
        # The harness runs in an interpreter the program shares: its report is capped again.
        report = protocol.NO_REPORT
        try:
            report = protocol.parse_report(answer or {}, self.limits)
        except (protocol.BridgeError, KeyError):
            error = error or _crashed("the harness reported its result in a malformed way")
        return Execution(
            stdout=report.stdout,
            stderr=report.stderr,
            error=error or report.error,
            tool_calls=tuple(sorted(self.records, key=lambda r: r.call_id)),
            duration_ms=(time.perf_counter() - self.started) * 1000,
            isolation=self.isolation,
            stdout_truncated=report.stdout_truncated,
            notices=(*self.notices, *report.notices),
            passes=self.passes,
        )

    def timeout_error(self) -> ExecutionError:
        return ExecutionError(
            kind="timeout",
            type="TimeoutError",
            message=(
                f"the program did not finish within {self.limits.timeout_s:g} s and was stopped "
                f"(in pass {max(self.passes, 1)}; the replay backend runs the program once per "
                "level of dependent tool calls); the tool calls that completed are listed, and "
                "variables from earlier runs may be gone"
            ),
        )

    def pass_limit_error(self) -> ExecutionError:
        limit = self.max_passes
        return ExecutionError(
            kind="exception",
            type="ReplayPassLimit",
            message=(
                f"the program still needed tool results after {limit} passes: each level of "
                "tool calls that depend on earlier results costs one run of the whole program. "
                "Issue independent calls together (asyncio.gather) instead of one after another"
            ),
        )

    def divergence_error(self, divergence: dict[str, Any]) -> ExecutionError:
        step = divergence.get("step")
        line = divergence.get("line") if divergence.get("reason") == "mismatch" else None
        if divergence.get("reason") == "mismatch":
            expected = [_call_text(e.get("tool"), e.get("args")) for e in divergence["expected"]]
            more = divergence.get("expected_count", 0) - len(expected)
            recorded = ", ".join(expected) + (f" and {more} more" if more > 0 else "")
            what = (
                f"it called {_call_text(divergence.get('tool'), divergence.get('args'))}"
                f"{f' (line {line})' if line else ''} in step {step}, where the earlier pass "
                + (f"made {recorded} instead" if expected else "made no more calls")
            )
        else:
            what = (
                f"it made only {divergence.get('made')} of the {divergence.get('known')} tool "
                f"calls the earlier passes made (step {step})"
            )
        message = (
            f"pass {self.passes} of the program did not repeat the earlier passes: {what}. The "
            "replay backend runs the program again after each round of tool calls, so it must "
            "make the same calls every time. Something in the program differs between runs: "
            "randomness other than the `random` module (random.SystemRandom, os.urandom, "
            "uuid.uuid4, secrets), the monotonic clock (time.perf_counter, time.monotonic), or "
            "state outside the program (files, environment). `random` is seeded and "
            "time.time() and datetime.now() are fixed within one execution. The "
            f"{self.known} tool result(s) already obtained were not requested again."
        )
        return ExecutionError(kind="exception", type="ReplayDivergence", message=message, line=line)


def _encode(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":"), allow_nan=False)


def _call_text(tool: Any, args: Any) -> str:
    pairs = args.items() if isinstance(args, dict) else ()
    text = f"{tool}({', '.join(f'{k}={json.dumps(v)}' for k, v in pairs)})"
    return text if len(text) <= 200 else text[:197] + "..."


def output_tail(text: str) -> str:
    """The end of an interpreter's output, where the reason it failed usually is."""
    text = text.strip()
    return text if len(text) <= _TAIL else "..." + text[-_TAIL:]


def _crashed(message: str) -> ExecutionError:
    return ExecutionError(kind="crashed", type="ReplayError", message=message)
