"""Scripted brains for "Judgment calls": read the requirements and three proposals, pick one.

Both modes judge the same way, in the model: a small deterministic reader finds the must-haves
and nice-to-haves in the requirements' prose, then, in each proposal, the sentences about each
of them, and takes a sentence that hedges or negates ("not", "only", "on our roadmap",
"planned") as a must-have not met. The pick is the cheapest proposal that meets every must-have
within the budget. PTC: a program fetches the four texts and prints them whole (there is nothing
to compute), then the pick is made from the printed text. Direct: the four calls in one
parallel turn, then the pick from their results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios.turns import Results, calls, offers_code_tool, program_turn

TOOL_NAMES = ("get_requirements", "get_proposal")

PROGRAM = """\
import asyncio

vendors = ["beacon", "klaxon", "nightwatch"]
requirements, *proposals = await asyncio.gather(
    get_requirements(),
    *(get_proposal({"vendor": v}) for v in vendors),
)
print(f"# {requirements['title']}\\n")
print(requirements["text"])
for proposal in proposals:
    print(f"\\n# Proposal: {proposal['vendor']}\\n")
    print(proposal["text"])
"""
"""Judgment cannot be programmed, so the program fetches all four texts at once (one dict
argument each) and prints them in full for the model to read."""

_TOPICS: dict[str, tuple[str, str]] = {
    # what a reader of paging proposals looks for: (how the text names it, how to say it)
    "voice": (r"\bvoice\b|\bphone calls?\b", "escalation by voice call"),
    "alertmanager": (r"\balertmanager\b", "alerts straight from Alertmanager"),
    "saml": (r"\bsaml\b", "SAML single sign-on"),
    "eu": (r"\bEU\b|\bEuropean Union\b", "incident data stored in the EU"),
    "slack": (r"\bslack\b", "a Slack integration"),
    "mobile": (r"\bmobile app\b", "a mobile app"),
    "status": (r"\bstatus page\b", "a public status page"),
}
_MUST = re.compile(r"\bmust\b|\brequires?\b|\bmandatory\b|\bnon-negotiable\b", re.IGNORECASE)
_NICE = re.compile(r"\bnice to have\b|\bbonus\b", re.IGNORECASE)
_UNMET = re.compile(
    r"\b(?:not|no|never|cannot|can't|doesn't|don't|isn't|lacks?|roadmap|planned|only|yet)\b",
    re.IGNORECASE,
)
_PRICE = re.compile(r"\$(\d+(?:\.\d\d)?) per user per month")
_BUDGET = re.compile(r"budget[^.]*?\$(\d+(?:\.\d\d)?)", re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _topics(sentence: str) -> list[str]:
    return [t for t, (pattern, _) in _TOPICS.items() if re.search(pattern, sentence, re.I)]


def _wanted(requirements: str) -> tuple[list[str], list[str], float | None]:
    """Must-haves, nice-to-haves and the budget per user per month, as the requirements say."""
    must: dict[str, None] = {}
    nice: dict[str, None] = {}
    for sentence in _sentences(requirements):
        if _NICE.search(sentence):
            nice.update(dict.fromkeys(_topics(sentence)))
        elif _MUST.search(sentence):
            must.update(dict.fromkeys(_topics(sentence)))
    budget = _BUDGET.search(requirements)
    return list(must), list(nice), float(budget.group(1)) if budget else None


@dataclass(frozen=True)
class _Reading:
    """What one proposal says: its price, and which topics it meets."""

    vendor: str
    price: float
    met: dict[str, bool]

    def misses(self, topics: list[str]) -> list[str]:
        return [t for t in topics if not self.met.get(t, False)]


def _read(vendor: str, text: str) -> _Reading:
    """A topic is met when the proposal speaks of it, and never with a negation or a hedge."""
    met: dict[str, bool] = {}
    for sentence in _sentences(text):
        for topic in _topics(sentence):
            met[topic] = met.get(topic, True) and not _UNMET.search(sentence)
    price = _PRICE.search(text)
    return _Reading(vendor, float(price.group(1)) if price else float("inf"), met)


def _labels(topics: list[str]) -> str:
    """The topics in words: "a, b and c"."""
    words = [_TOPICS[t][1] for t in topics]
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words) or "none"


def judge(requirements: str, proposals: dict[str, str], style: Literal["ptc", "direct"]) -> str:
    """The pick and why, from the texts alone: the cheapest proposal within budget that meets
    every must-have; why each other one is ruled out."""
    must, nice, budget = _wanted(requirements)
    readings = [_read(vendor, text) for vendor, text in proposals.items()]
    ok = [r for r in readings if not r.misses(must) and (budget is None or r.price <= budget)]
    if not ok:
        why = "; ".join(f"{r.vendor} lacks {_labels(r.misses(must))}" for r in readings)
        return f"None of the proposals meets every must-have: {why}."
    best = min(ok, key=lambda r: (r.price, len(r.misses(nice))))
    cheapest = min(readings, key=lambda r: r.price)
    extras = _labels([t for t in nice if t not in best.misses(nice)])
    others = []
    for r in readings:
        if r is best:
            continue
        missing = r.misses(must)
        reason = f"lacks {_labels(missing)}" if missing else "costs more"
        tag = ", the cheapest," if r is cheapest else ""
        others.append(f"{r.vendor}{tag} at ${r.price:g} per user per month {reason}")
    only = "the only proposal that meets" if len(ok) == 1 else "meets"
    if style == "ptc":
        return (
            f"Pick {best.vendor}: it is {only} every must-have ({_labels(must)}) at "
            f"${best.price:g} per user per month, and it offers {extras}.\n"
            f"Ruled out: {'; '.join(others)}."
        )
    return (
        f"I recommend {best.vendor}. It is {only} all {len(must)} of your must-haves "
        f"({_labels(must)}), at ${best.price:g} per user per month, within the budget; it also "
        f"has {extras}.\n\nThe others: {'; '.join(others)}."
    )


def _printed_sections(output: str) -> tuple[str, dict[str, str]]:
    """The requirements and each vendor's proposal, from the program's printed output."""
    parts = re.split(r"^# Proposal: (.+)$", output, flags=re.MULTILINE)
    proposals = {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    return parts[0], proposals


def _ptc(request: ModelRequest) -> Turn:
    return program_turn(
        request,
        PROGRAM,
        "reading the proposals",
        lambda printed: judge(*_printed_sections(printed), "ptc"),
    )


def _vendors(request: ModelRequest) -> list[str]:
    """The vendors ``get_proposal`` accepts, from the enum of its input schema."""
    spec = next(s for s in request.tools if s.name == "get_proposal")
    return list(spec.input_schema["properties"]["vendor"]["enum"])


def _direct(request: ModelRequest) -> Turn:
    results = Results(request)
    if (failure := results.failed()) is not None:
        return f"I could not read the proposals; a tool call failed:\n{failure}"
    if not results.called("get_requirements"):
        wanted: list[tuple[str, dict[str, Any]]] = [("get_requirements", {})] + [
            ("get_proposal", {"vendor": v}) for v in _vendors(request)
        ]
        return calls(request, wanted)
    (requirements,) = results.of("get_requirements").values()
    proposals = {p["vendor"]: p["text"] for p in results.of("get_proposal", "vendor").values()}
    return judge(requirements["text"], proposals, "direct")


def _policy(request: ModelRequest) -> Turn:
    return _ptc(request) if offers_code_tool(request) else _direct(request)


judgment_brain = Brain(_policy, "the judgment calls", TOOL_NAMES)
"""The brain of ``scripted:judgment``."""
