"""What every phase of ``ptc bench proxy`` hands back: :class:`Comparison`, one figure of the
report against its baseline from the same run, and :data:`Progress`, how a phase reports as it
goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Comparison:
    """One figure: ours, the baseline from the same run, their difference and their ratio."""

    name: str
    ours: float
    baseline: float
    unit: str
    baseline_label: str
    target: str = ""
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> float:
        return self.ours - self.baseline

    @property
    def ratio(self) -> float | None:
        return self.ours / self.baseline if self.baseline else None

    def report(self) -> dict[str, Any]:
        return asdict(self) | {"difference": self.difference, "ratio": self.ratio}
