"""``ptc bench replay``: the replay backend against the live bridge, scenario by scenario.

Each scenario's program runs on the bridge backend (``LocalSandbox``: tools called live) and on
the replay backend over the same kind of local interpreter, rounds interleaved, sessions warm.
Figures per scenario: passes, interpreter time (replay: the sum of its passes; bridge: the
execution), wall time, code sent into the interpreter, and the ratios replay / bridge. The two
backends must print the same output; the report says whether they did.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from openptc.bench.report import report_header
from openptc.sandbox.base import Limits, Session, ToolHost, ToolSignature
from openptc.sandbox.local import LocalSandbox
from openptc.sandbox.managed.interpreter import CodeInterpreter, CodeRun, LocalInterpreter
from openptc.sandbox.managed.portable import PortableTool, portable
from openptc.sandbox.managed.replay import TRANSPORT_OUTPUT_BYTES, ReplaySandbox
from openptc.scenarios import expense
from openptc.tools import Toolbox

Progress = Callable[[str], None]
FAN_OUT = 20  # independent calls per level


def expense_snapshot(data: expense.ExpenseData | None = None) -> dict[str, Any]:
    """The expense tables a Q3 engineering audit reads, as plain JSON."""
    d = data if data is not None else expense.default_data()
    return {
        "members": [m.model_dump(mode="json") for m in d.members],
        "expenses": {
            m.id: [e.model_dump(mode="json") for e in d.expenses(m.id, "Q3")]
            for m in d.team("engineering")
        },
        "budgets": {m.id: d.budget(m.id).model_dump(mode="json") for m in d.members},
    }


def portable_expense_tools(data: expense.ExpenseData | None = None) -> list[PortableTool]:
    """The three expense tools as pre-loaded tools over a snapshot of the Q3 engineering data.

    ``openptc.scenarios.expense`` cannot be imported inside an interpreter (no site-packages), so
    the data travels in the tools' source, as constants they close over.
    """
    snapshot = expense_snapshot(data)
    members: list[dict[str, Any]] = snapshot["members"]
    expenses: dict[str, list[dict[str, Any]]] = snapshot["expenses"]
    budgets: dict[str, dict[str, Any]] = snapshot["budgets"]
    snapshot_quarter = "Q3"

    @portable
    async def get_team_members(department: str) -> list[dict[str, Any]]:
        """List the members of one department."""
        return [m for m in members if m["department"] == department]

    @portable
    async def get_expenses(employee_id: str, quarter: str) -> list[dict[str, Any]]:
        """Expense line items of one engineering employee in Q3 of 2025 (USD)."""
        if quarter != snapshot_quarter or employee_id not in expenses:
            raise ValueError(
                f"no {quarter} expenses for {employee_id!r} in the pre-loaded snapshot "
                f"(it holds {snapshot_quarter} for engineering)"
            )
        return expenses[employee_id]

    @portable
    async def get_custom_budget(user_id: str) -> dict[str, Any]:
        """An employee's quarterly travel budget in USD."""
        if user_id not in budgets:
            raise ValueError(f"unknown user_id {user_id!r}")
        return budgets[user_id]

    return [get_team_members, get_expenses, get_custom_budget]


class EchoTools:
    """A tool host that costs nothing, so the backends themselves are what gets measured."""

    def signatures(self) -> Sequence[ToolSignature]:
        return [ToolSignature("echo", ("value",))]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        return arguments["value"]


def chain_program(levels: int, fan_out: int = FAN_OUT) -> str:
    """``levels`` rounds of ``fan_out`` calls, each built from the previous round's results (no
    two calls alike)."""
    lines = [f"values = list(range({fan_out}))"]
    for _ in range(levels):
        lines.append(f"values = await asyncio.gather(*[echo(value=v + {fan_out}) for v in values])")
    lines.append("print(sum(values))")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    levels: int
    program: str
    tools: Callable[[], ToolHost]
    preloaded: Sequence[PortableTool] = ()


@dataclass(frozen=True)
class ScenarioResult:
    """Medians over the rounds of one scenario; ratios are replay / bridge."""

    name: str
    levels: int
    tool_calls: int
    passes: int
    bridge_ms: float
    bridge_wall_ms: float
    replay_interpreter_ms: float
    replay_wall_ms: float
    replay_code_kb: float
    same_output: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def interpreter_ratio(self) -> float:
        return self.replay_interpreter_ms / self.bridge_ms

    @property
    def wall_ratio(self) -> float:
        return self.replay_wall_ms / self.bridge_wall_ms


class MeteredInterpreter:
    """A ``CodeInterpreter`` that adds up the time and the code of every run it passes on."""

    def __init__(self, inner: CodeInterpreter) -> None:
        self.inner = inner
        self.ms = 0.0
        self.code_bytes = 0

    @property
    def name(self) -> str:
        return self.inner.name

    async def run(self, code: str, *, timeout_s: float) -> CodeRun:
        run = await self.inner.run(code, timeout_s=timeout_s)
        self.ms += run.duration_ms
        self.code_bytes += len(code.encode())
        return run

    async def close(self) -> None:
        await self.inner.close()

    def take(self) -> tuple[float, int]:
        taken = self.ms, self.code_bytes
        self.ms, self.code_bytes = 0.0, 0
        return taken


def scenarios() -> list[Scenario]:
    def expense_tools() -> ToolHost:
        return Toolbox(expense.make_tools())

    audit = expense.REFERENCE_PROGRAM
    return [
        *(Scenario(f"{n} level(s) x {FAN_OUT}", n, chain_program(n), EchoTools) for n in (1, 2, 3)),
        Scenario("expense audit", 2, audit, expense_tools),
        Scenario("expense, pre-loaded", 2, audit, expense_tools, portable_expense_tools()),
    ]


async def _timed(action: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await action()
    return result, (time.perf_counter() - started) * 1000


async def run_scenario(
    scenario: Scenario, bridge: Session, rounds: int, limits: Limits
) -> ScenarioResult:
    """Run the scenario ``rounds`` times on each backend, interleaved, after one warm-up."""
    local = LocalSandbox(
        Limits(output_bytes=TRANSPORT_OUTPUT_BYTES, timeout_s=limits.timeout_s), pool_size=0
    )
    metered: list[MeteredInterpreter] = []

    async def factory() -> CodeInterpreter:
        metered.append(MeteredInterpreter(await LocalInterpreter.open(local)))
        return metered[-1]

    replay = ReplaySandbox(factory, limits=limits, preloaded=scenario.preloaded)
    bridge_ms: list[float] = []
    bridge_wall_ms: list[float] = []
    interpreter_ms: list[float] = []
    wall_ms: list[float] = []
    code_kb: list[float] = []
    same = True
    passes = calls = 0
    async with local, replay:
        session = await replay.open_session()
        for round_number in range(rounds + 1):
            live, live_ms = await _timed(lambda: bridge.execute(scenario.program, scenario.tools()))
            metered[0].take()
            replayed, replay_ms = await _timed(
                lambda: session.execute(scenario.program, scenario.tools())
            )
            spent_ms, sent = metered[0].take()
            if not (live.ok and replayed.ok):
                raise RuntimeError(f"{scenario.name}: {live.error or replayed.error}")
            same = same and live.stdout == replayed.stdout
            passes, calls = replayed.passes, len(live.tool_calls)
            if round_number == 0:
                continue  # warm-up: first imports, first tool data
            bridge_ms.append(live.duration_ms)
            bridge_wall_ms.append(live_ms)
            interpreter_ms.append(spent_ms)
            wall_ms.append(replay_ms)
            code_kb.append(sent / 1024)
    return ScenarioResult(
        name=scenario.name,
        levels=scenario.levels,
        tool_calls=calls,
        passes=passes,
        bridge_ms=statistics.median(bridge_ms),
        bridge_wall_ms=statistics.median(bridge_wall_ms),
        replay_interpreter_ms=statistics.median(interpreter_ms),
        replay_wall_ms=statistics.median(wall_ms),
        replay_code_kb=statistics.median(code_kb),
        same_output=same,
        details={"rounds": rounds, "bridge_ms": bridge_ms, "replay_interpreter_ms": interpreter_ms},
    )


async def run_replay_bench(
    *, quick: bool = False, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """Every scenario, replay vs bridge in the same run; returns the report written as JSON."""
    rounds = 3 if quick else 15
    limits = Limits(timeout_s=60)
    results: list[ScenarioResult] = []
    async with LocalSandbox(limits, pool_size=0) as bridge_sandbox:
        bridge = await bridge_sandbox.open_session()
        for scenario in scenarios():
            result = await run_scenario(scenario, bridge, rounds, limits)
            progress(
                f"{result.name}: {result.passes} passes, replay {result.replay_interpreter_ms:.1f} "
                f"ms in the interpreter vs bridge {result.bridge_ms:.1f} ms "
                f"({result.interpreter_ratio:.2f}x)"
            )
            results.append(result)
        isolation = bridge_sandbox.isolation
    return {
        **report_header("replay"),
        "interpreter": f"local sandbox ({isolation.level}) used as a stateless interpreter",
        "scenarios": [
            asdict(r) | {"interpreter_ratio": r.interpreter_ratio, "wall_ratio": r.wall_ratio}
            for r in results
        ],
    }
