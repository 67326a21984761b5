"""The scenario suite of ``ptc bench scenarios``, in the order the report shows them.

Each stresses one thing: fan-out (the expense audit, against a classic agent calling one tool
per turn and one batching its calls), exact arithmetic, filtering large outputs,
dependent calls, a call made only when an earlier result allows it, personal data that must
stay out of the model's context, and judgment, where PTC is not expected to pay.
"""

from __future__ import annotations

from openptc.scenarios import branching, judgment, multihop, numeric, privacy, triage
from openptc.scenarios.base import Scenario
from openptc.scenarios.brains import EXPENSE_AUDIT
from openptc.scenarios.expense_parallel import EXPENSE_AUDIT_PARALLEL

SCENARIOS: tuple[Scenario, ...] = (
    EXPENSE_AUDIT,
    EXPENSE_AUDIT_PARALLEL,
    numeric.SCENARIO,
    triage.SCENARIO,
    multihop.SCENARIO,
    branching.SCENARIO,
    privacy.SCENARIO,
    judgment.SCENARIO,
)


def select(names: list[str] | None) -> tuple[Scenario, ...]:
    """The scenarios named (all when none); a ``ValueError`` listing the names that exist."""
    if not names:
        return SCENARIOS
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)
