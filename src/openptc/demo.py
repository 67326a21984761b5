"""The expense audit run in both modes, side by side: what ``ptc demo`` shows.

Both runs use the same model, the same tools and the same data in the same process, so the
comparison is fair: the only difference is whether the model writes a program or calls tools
one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from openptc.agent import Agent, RunResult
from openptc.bench import expense
from openptc.models import model_from_string
from openptc.sandbox.local import LocalSandbox
from openptc.tools import Toolbox

DEFAULT_MODEL = "scripted:expense-audit"
# A classic agent calls one tool per turn: 1 + 24 + 24 + 1 turns for the audit.
DIRECT_MAX_TURNS = 80


@dataclass(frozen=True)
class ModeOutcome:
    result: RunResult
    correct: bool


@dataclass(frozen=True)
class DemoOutcome:
    """Both runs of the expense audit and the expected answer they are judged against."""

    question: str
    expected: tuple[expense.Overspend, ...]
    ptc: ModeOutcome
    direct: ModeOutcome

    def verdict(self) -> str:
        ptc, direct = self.ptc.result.usage, self.direct.result.usage
        saved = 1 - ptc.input_tokens / direct.input_tokens if direct.input_tokens else 0.0
        return (
            f"PTC: {ptc.model_calls} model calls instead of {direct.model_calls}, "
            f"{saved:.1%} fewer input tokens"
        )


async def run_expense_audit(
    model: str = DEFAULT_MODEL, *, latency_s: float = 0.02, seed: int = expense.DEFAULT_SEED
) -> DemoOutcome:
    """Run the expense audit in ptc and direct mode with one model string."""
    data = expense.ExpenseData(seed=seed)
    toolbox = Toolbox(expense.make_tools(data, latency=latency_s))
    async with LocalSandbox(pool_size=1) as sandbox:
        ptc = await Agent(model_from_string(model), toolbox, sandbox=sandbox, mode="ptc").run(
            expense.QUESTION
        )
    direct_agent = Agent(
        model_from_string(model), toolbox, mode="direct", max_turns=DIRECT_MAX_TURNS
    )
    direct = await direct_agent.run(expense.QUESTION)
    return DemoOutcome(
        question=expense.QUESTION,
        expected=tuple(expense.expected_overspenders(data)),
        ptc=ModeOutcome(ptc, expense.is_correct(ptc.answer, data)),
        direct=ModeOutcome(direct, expense.is_correct(direct.answer, data)),
    )
