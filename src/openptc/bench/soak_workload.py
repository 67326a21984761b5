"""The soak benchmark's workload: one program with five tool calls, and how its result is judged.

The tools are real host tools (``@tool`` in a ``Toolbox``: schema validation, JSON conversion),
and every execution is checked in full, so a soak that "passes" cannot hide a wrong answer: the
result must be this execution's (its ``n``), the session must have kept its variables (a counter
the program keeps in ``globals()``), and all five tool calls must have succeeded. Anything else,
or an exception, is an unintended error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from openptc.sandbox.base import Execution, Session
from openptc.tools import Toolbox, tool

CALLS_PER_EXECUTION = 5
# Longer than the sandbox's own 30 s execution timeout: only a hang of the host side trips it.
EXECUTION_BOUND_S = 60.0

PROGRAM = """\
runs = globals().get("runs", 0) + 1
records = await asyncio.gather(lookup(key=n), lookup(key=n + 1), lookup(key=n + 2))
total = sum(record["square"] for record in records)
for step in range(2):
    total = await add(a=total, b=step)
print(runs, n, total)
"""


@tool
async def lookup(key: int) -> dict[str, int]:
    """One record by key: the key and its square."""
    return {"key": key, "square": key * key}


@tool
async def add(a: int, b: int) -> int:
    """The sum of a and b."""
    return a + b


def make_toolbox() -> Toolbox:
    return Toolbox([lookup, add])


def program(n: int) -> str:
    return f"n = {n}\n{PROGRAM}"


def expected_total(n: int) -> int:
    return n * n + (n + 1) ** 2 + (n + 2) ** 2 + 0 + 1


@dataclass
class SessionState:
    """A session and how many executions it has finished, as its program should count them."""

    session: Session
    runs: int | None = 0  # None: unknown after a failure; the next result sets it again


def judge(state: SessionState, n: int, result: Execution) -> str | None:
    """None if the execution did exactly what it should; else what went wrong, in words."""
    if result.error is not None:
        state.runs = None
        return f"{result.error.kind}: {result.error.type}: {result.error.message}"[:300]
    if result.notices:
        state.runs = None
        return f"notice: {' '.join(result.notices)}"[:300]
    parts = result.stdout.split()
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        state.runs = None
        return f"unexpected output for n={n}: {result.stdout[:200]!r}"
    runs, got, total = (int(part) for part in parts)
    expected_runs = runs if state.runs is None else state.runs + 1
    state.runs = runs
    if got != n or total != expected_total(n):
        return f"wrong result for n={n} (another execution's?): {result.stdout.strip()!r}"
    if runs != expected_runs:
        return f"session state lost: the program counted run {runs}, expected {expected_runs}"
    calls = result.tool_calls
    if len(calls) != CALLS_PER_EXECUTION or any(call.outcome != "ok" for call in calls):
        outcomes = [f"{call.tool}:{call.outcome}" for call in calls]
        return f"tool calls for n={n}: {outcomes}, expected {CALLS_PER_EXECUTION} ok"
    return None


async def execute(state: SessionState, n: int, tools: Toolbox) -> tuple[float, str | None]:
    """Run the program for ``n``; its latency in ms and None, or the unintended error."""
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(state.session.execute(program(n), tools), EXECUTION_BOUND_S)
    except Exception as exc:  # SandboxError, SessionLost, TimeoutError: all unintended here
        state.runs = None
        return (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"[:300]
    return (time.perf_counter() - started) * 1000, judge(state, n, result)
