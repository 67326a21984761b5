"""What a scenario is: data, tools over it, a question, a checker, and brains for both modes.

``ptc bench scenarios`` runs each one in ptc and direct mode with the same model, tools and data;
the checker decides whether an answer is right before any saving is counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openptc.models.scripted import Brain

ToolFactory = Callable[[float], list[Callable[..., Awaitable[Any]]]]
"""Builds a scenario's tools; the argument is a simulated per-call latency in seconds."""

ToolCall = tuple[str, dict[str, Any]]
"""One tool call a run made, by a program or directly: the tool's name and its arguments."""


@dataclass(frozen=True)
class Verdict:
    """A checker's decision on one answer: right or not, and if not, what was wrong."""

    correct: bool
    reason: str = ""

    @classmethod
    def right(cls) -> Verdict:
        return cls(True)

    @classmethod
    def wrong(cls, reason: str) -> Verdict:
        return cls(False, reason)


@dataclass(frozen=True)
class Scenario:
    """One benchmark task, deterministic end to end (fixed seeds, no clock, no network)."""

    name: str
    """Short id, also the scripted model's name: ``scripted:<name>``."""
    title: str
    stresses: str
    """What this scenario tests that the others do not, in one line."""
    question: str
    make_tools: ToolFactory
    check: Callable[[str], Verdict]
    brain: Brain
    """Writes a program when offered the code tool, calls tools one turn at a time otherwise."""
    calls_rule: Callable[[Sequence[ToolCall]], Verdict] | None = None
    """For a scenario about which calls may be made: checks every call of a run (a right answer
    reached by calls the rule forbids is still wrong)."""
    private: Callable[[], tuple[str, ...]] = field(default=lambda: ())
    """Strings that must never reach the model's context in ptc mode (personal data)."""
    ptc_pays: bool = True
    """False for the scenario built to show where PTC does not pay."""
    direct_errs: str = ""
    """Why the direct-mode brain deliberately gets it wrong, when it does (as real models do)."""
    direct_max_turns: int = 80
