"""The expense audit run in both modes, side by side: what ``ptc demo`` shows.

Both runs use the same model, the same tools and the same data in the same process, so the
comparison is fair: the only difference is whether the model writes a program or calls tools
one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openptc.agent import Agent, RunResult
from openptc.models import TextSink
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios import expense
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
    """The runs of the expense audit (PTC, and direct when asked) and their verdict."""

    question: str
    expected: tuple[expense.Overspend, ...]
    ptc: ModeOutcome
    direct: ModeOutcome | None

    def verdict(self) -> str:
        ptc = self.ptc.result.usage
        if self.direct is None:
            return (
                f"PTC: {ptc.model_calls} model calls, {ptc.input_tokens:,} input tokens, "
                f"{ptc.tool_calls} tool calls (direct mode not run)"
            )
        direct = self.direct.result.usage
        saved = 1 - ptc.input_tokens / direct.input_tokens if direct.input_tokens else 0.0
        return (
            f"PTC: {ptc.model_calls} model calls instead of {direct.model_calls}, "
            f"{saved:.1%} fewer input tokens"
        )

    @property
    def all_correct(self) -> bool:
        return self.ptc.correct and (self.direct is None or self.direct.correct)


def provider_models_from_env(env: Mapping[str, str]) -> list[str]:
    """Real models to demo because their credentials are set (model overridable per provider)."""
    models = []
    if env.get("ANTHROPIC_API_KEY"):
        models.append("anthropic:" + env.get("PTC_ANTHROPIC_MODEL", "claude-sonnet-4-6"))
    if env.get("OPENAI_API_KEY"):
        models.append("openai:" + env.get("PTC_OPENAI_MODEL", "gpt-4.1"))
    if env.get("PTC_BEDROCK_MODEL"):  # AWS credentials come from the usual chain
        models.append("bedrock:" + env["PTC_BEDROCK_MODEL"])
    return models


async def run_expense_audit(
    model: str = DEFAULT_MODEL,
    *,
    direct: bool = True,
    latency_s: float = 0.02,
    seed: int = expense.DEFAULT_SEED,
    on_text: TextSink | None = None,
) -> DemoOutcome:
    """Run the expense audit in ptc mode, and in direct mode unless told not to."""
    data = expense.ExpenseData(seed=seed)
    toolbox = Toolbox(expense.make_tools(data, latency=latency_s))
    async with (
        LocalSandbox(pool_size=1) as sandbox,
        Agent(model, toolbox, sandbox, mode="ptc") as agent,
    ):
        ptc = await agent.run(expense.QUESTION, on_text=on_text)
    direct_outcome: ModeOutcome | None = None
    if direct:
        async with Agent(model, toolbox, mode="direct", max_turns=DIRECT_MAX_TURNS) as agent:
            result = await agent.run(expense.QUESTION)
        direct_outcome = ModeOutcome(result, expense.is_correct(result.answer, data))
    return DemoOutcome(
        question=expense.QUESTION,
        expected=tuple(expense.expected_overspenders(data)),
        ptc=ModeOutcome(ptc, expense.is_correct(ptc.answer, data)),
        direct=direct_outcome,
    )
