"""The scenario suite of ``ptc bench scenarios``, in the order the report shows them."""

from __future__ import annotations

from openptc.scenarios.base import Scenario
from openptc.scenarios.brains import EXPENSE_AUDIT

SCENARIOS: tuple[Scenario, ...] = (EXPENSE_AUDIT,)


def select(names: list[str] | None) -> tuple[Scenario, ...]:
    """The scenarios named (all when none); a ``ValueError`` listing the names that exist."""
    if not names:
        return SCENARIOS
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)
