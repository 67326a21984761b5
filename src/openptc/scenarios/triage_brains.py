"""Scripted brains for the incident triage: a filtering program in ptc mode; in direct mode, every
service's logs pulled into the context in one parallel turn, then the same reasoning.

Both read only the tool results, and apply the rule the tools state (a service is failing when
more than 5% of its lines in the window are ERROR); the root cause is the failing service with
no failing dependency whose errors started first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios.turns import Results, call, calls, offers_code_tool, program_turn

TOOL_NAMES = ("list_services", "get_logs")
WINDOW_MINUTES = 30
FAILING_ERROR_RATE = 0.05

PROGRAM = """\
import asyncio
import json

WINDOW = 30
services = json.loads(await list_services())
texts = await asyncio.gather(
    *(get_logs(service=s["name"], since_minutes=WINDOW) for s in services)
)
logs = [json.loads(text) for text in texts]

stats = {}
for svc, lines in zip(services, logs):
    errors = [line["timestamp"] for line in lines if line["level"] == "ERROR"]
    stats[svc["name"]] = (len(errors), len(lines), min(errors, default=None))

failing = {name for name, (e, n, _) in stats.items() if n and e / n > 0.05}
deps = {s["name"]: set(s["depends_on"]) for s in services}
first = {name: stats[name][2] for name in failing if not deps[name] & failing}
root = min(first, key=first.get)

print(f"Failing in the last {WINDOW} min (error rate > 5%): {len(failing)} of {len(services)}")
for name in sorted(failing, key=lambda n: stats[n][2]):
    e, n, t = stats[name]
    print(f"  {name}: {e}/{n} lines ERROR ({e / n:.0%}), first error {t}")
print(f"Root cause: {root} (first to fail among failing services with no failing dependency)")
"""
"""What a strong model writes: keyword arguments, one gather over all services, the counting and
the dependency check in code, a few printed lines. It parses results as JSON (a no-op here, where
they arrive parsed), so it also runs behind ``ptc serve``, where tools return text."""


def _ptc(request: ModelRequest) -> Turn:
    """Turn 1: the program. Turn 2: what it printed."""
    return program_turn(
        request,
        PROGRAM,
        "the triage",
        lambda printed: f"Here is what the triage program found:\n{printed}",
    )


@dataclass(frozen=True)
class _Health:
    """One service's errors in the window."""

    errors: int
    lines: int
    first_error: str | None

    @property
    def rate(self) -> float:
        return self.errors / self.lines if self.lines else 0.0


def diagnose(
    services: list[dict[str, Any]], logs: dict[str, list[dict[str, Any]]]
) -> tuple[dict[str, _Health], str | None]:
    """The failing services (by the tools' rule) and the root cause among them."""
    health = {}
    for s in services:
        lines = logs[s["name"]]
        errors = [x["timestamp"] for x in lines if x["level"] == "ERROR"]
        health[s["name"]] = _Health(len(errors), len(lines), min(errors, default=None))
    failing = {n: h for n, h in health.items() if h.rate > FAILING_ERROR_RATE}
    roots = {
        s["name"]: str(failing[s["name"]].first_error)
        for s in services
        if s["name"] in failing and not set(s["depends_on"]) & set(failing)
    }
    return failing, min(roots, key=lambda n: roots[n]) if roots else None


def _direct(request: ModelRequest) -> Turn:
    """The service map (1 turn), every service's logs (1 parallel turn), then the answer."""
    results = Results(request)
    if (failed := results.failed()) is not None:
        return f"I could not triage the incident; a tool call failed:\n{failed}"
    listed = results.of("list_services")
    if not listed:
        return call(request, "list_services")
    services: list[dict[str, Any]] = next(iter(listed.values()))
    logs = results.of("get_logs", "service")
    missing = [s["name"] for s in services if s["name"] not in logs]
    if missing:
        wanted = {"since_minutes": WINDOW_MINUTES}
        return calls(request, [("get_logs", {"service": name, **wanted}) for name in missing])
    failing, root = diagnose(services, logs)
    if not failing:
        return f"No service is failing in the last {WINDOW_MINUTES} minutes."
    order = sorted(failing, key=lambda n: str(failing[n].first_error))
    listing = ", ".join(f"{n} ({failing[n].rate:.0%} of lines are errors)" for n in order)
    verdict = (
        f"The root cause is {root}: none of the services it depends on is failing, and its "
        f"errors started at {failing[root].first_error}."
        if root
        else "Every failing service depends on another failing one, so no single root cause."
    )
    return (
        f"{len(failing)} services are failing in the last {WINDOW_MINUTES} minutes (more than "
        f"5% of their log lines are errors): {listing}.\n\n{verdict}"
    )


def _log_triage(request: ModelRequest) -> Turn:
    """A program when offered the code tool; tool calls turn by turn otherwise."""
    return _ptc(request) if offers_code_tool(request) else _direct(request)


log_triage_brain = Brain(_log_triage, "the incident triage", TOOL_NAMES)
"""The brain of ``scripted:log-triage``."""
