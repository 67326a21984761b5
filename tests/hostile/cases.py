"""Every hostile case, by category: the table the suite runs on each backend."""

from __future__ import annotations

from collections import Counter

from hostile import bridge, damage, escape
from hostile.table import Case

CASES: list[Case] = [*escape.CASES, *damage.CASES, *bridge.CASES]

_names = Counter(case.name for case in CASES)
assert all(n == 1 for n in _names.values()), [name for name, n in _names.items() if n > 1]


def per_category() -> dict[str, int]:
    return dict(Counter(case.category for case in CASES))
