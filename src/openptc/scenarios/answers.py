"""Reading a model's free-text answer as a person would: by statements, clauses and cues.

The scenario checkers judge real models' answers, written in any ordinary phrasing: lists under
headings, prose, tables. Two readings cover them:

- claims: an item (a service, a person, a ticket) is claimed when it is named in a clause that
  does not rule it out ("not failing", "none of them exceeded", "below the threshold", "would be
  over only if pending items counted"); each checker says what rules an item out for it;
- picks: a verdict ("I recommend X", "Best: X", "X is the one I'd pick") is read next to its cue,
  skipping what is set aside ("not X", "rather than X") and cues that are denied ("I would not
  pick X", "the second best is X").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

Found = tuple[int, int, str]
"""One mention in a text: where it starts and ends, and the key of what it names."""
Finder = Callable[[str], list[Found]]

NONE = r"\b(?:none|neither|nor|nobody|no one|nothing)\b"
"""Words that rule out whatever their clause names: "none of them exceeded"."""
HYPOTHETICAL = r"\bonly if\b|\bwould\b[^.;]*\bif\b|\bif\b[^.;]*\bwere\b"
"""A hypothetical is not a claim: "X would be over only if pending items counted"."""
ELIDED = r"(?:\bnot|n't)\W*$"
"""A clause that ends in a negation leaves its verb out: "..., while X did not"."""
RULED_OUT = rf"{NONE}|{HYPOTHETICAL}|{ELIDED}|\bruled out\b|\bexclud\w*"

_MARKUP = re.compile(r"\*\*|__|`")
_BULLET = re.compile(r"^(?:[-*•+]|\d{1,2}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_CLAUSE_BREAK = re.compile(
    r"[;()\[\]]|,\s*which\b|,?\s+\b(?:but|whereas|while|although|though|however)\b,?",
    re.IGNORECASE,
)
_OTHERS = re.compile(r"\b(?:other|others|else|rest|remaining)\b", re.IGNORECASE)
_SET_ASIDE = re.compile(
    r"(?:\bnot|n't|\bnever|\bover|\brather than|\binstead of|\bahead of|\bthan|\bexcept)"
    r"\s+(?:[\w']+\s+){0,2}$",
    re.IGNORECASE,
)


def cues(*patterns: str) -> re.Pattern[str]:
    """One pattern, any case, that matches where any of ``patterns`` does."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def negated(words: str) -> str:
    """A pattern for ``words`` negated: "not failing", "did not exceed", "isn't over"."""
    return rf"(?:\bnot|n't|\bnever|\bno longer)\s+(?:[\w']+\s+){{0,2}}?(?:{words})\b"


def finder(spellings: Mapping[str, Iterable[str]]) -> Finder:
    """Finds each key by any of its spellings: whole words ("ledger-db" is not in
    "ledger-db-replica"), any case, in text order."""
    patterns = [
        (key, re.compile(rf"(?<![\w-]){re.escape(s)}(?![\w-])", re.IGNORECASE))
        for key, names in spellings.items()
        for s in names
    ]

    def find(text: str) -> list[Found]:
        return sorted((m.start(), m.end(), key) for key, p in patterns for m in p.finditer(text))

    return find


def statements(text: str) -> list[str]:
    """Sentences and lines, markdown emphasis removed. A list item under a heading ("Not
    failing:", "## Refunds") is read with the heading in front, as is the line right after it."""
    found: list[str] = []
    heading, fresh = "", False
    for raw in text.splitlines():
        line = _MARKUP.sub("", raw).strip().strip("|").strip()
        if not line:
            continue
        bullet = _BULLET.match(line)
        body = line[bullet.end() :] if bullet else line.lstrip("#>").strip()
        if bullet:
            lead, fresh = heading, False
        elif line.startswith("#") or body.endswith(":"):  # one clause, whatever it says
            heading, fresh, lead = _CLAUSE_BREAK.sub(" ", body), True, ""
        else:
            lead = heading if fresh else ""
            heading, fresh = "", False
        found += [f"{lead} {s}".strip() for s in _SENTENCE_END.split(body) if s.strip()]
    return found


def clauses(statement: str) -> list[tuple[int, int]]:
    """Where each clause of a statement starts and ends: it breaks at semicolons, brackets,
    ", which" and contrasts ("but", "while", "although")."""
    spans, start = [], 0
    for m in _CLAUSE_BREAK.finditer(statement):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(statement)))
    return [(a, b) for a, b in spans if statement[a:b].strip()]


def claims(text: str, find: Finder, ruled_out: re.Pattern[str]) -> tuple[set[str], set[str]]:
    """The keys named in a clause that does not rule them out, and those named only in clauses
    that do. A clause that rules out without naming anything ("none of them did", "that is below
    the threshold") rules out the last clause before it that names something, unless it is
    about the others ("no other service is")."""
    claimed: set[str] = set()
    denied: set[str] = set()
    for statement in statements(text):
        parts: list[tuple[set[str], bool]] = []
        for a, b in clauses(statement):
            clause = statement[a:b]
            keys = {key for _, _, key in find(clause)}
            out = bool(ruled_out.search(clause))
            named_before = [i for i, (k, _) in enumerate(parts) if k]
            if out and not keys and named_before and not _OTHERS.search(clause):
                parts[named_before[-1]] = (parts[named_before[-1]][0], True)
            parts.append((keys, out))
        for keys, out in parts:
            (denied if out else claimed).update(keys)
    return claimed, denied - claimed


@dataclass(frozen=True)
class Pick:
    """A key an answer picks, and where: its statement's index in ``statements`` and offset."""

    key: str
    statement: int
    start: int


def picks(
    text: str, find: Finder, cue: re.Pattern[str], denied: re.Pattern[str], *, every: bool
) -> list[Pick]:
    """What each verdict cue of the answer picks, in order: in the cue's clause, every key not
    set aside ("not X", "over X", "rather than X"), or only the nearest one (``every`` False);
    a clause that names nothing picks what the clause before it names ("Klaxon is pricier, but
    it is the best choice"). A cue is skipped when ``denied`` matches in the four words before
    it, after the last key named ("I would not pick", "the second best", not "X, not Y, is")."""
    found: list[Pick] = []
    for index, statement in enumerate(statements(text)):
        previous: list[Found] = []
        for a, b in clauses(statement):
            clause = statement[a:b]
            mentions = [(s + a, e + a, k) for s, e, k in find(clause)]
            named = [m for m in mentions if not _set_aside(statement[a : m[0]])]
            for c in cue.finditer(clause):
                before = [m for m in mentions if m[1] <= c.start() + a]
                after_last = statement[before[-1][1] if before else a : c.start() + a]
                if denied.search(" ".join(after_last.split()[-4:])):
                    continue
                options = named or previous
                chosen = options if every else _nearest(statement, options, c.start() + a)
                found += [Pick(k, index, s) for s, _, k in chosen]
            previous = named or previous
    return found


def first_claims(text: str, find: Finder, ruled_out: re.Pattern[str]) -> list[Pick]:
    """What the first statement that claims anything claims: for an answer that starts with its
    pick and has no cue ("Klaxon. It meets every must-have; Beacon does not.")."""
    for index, statement in enumerate(statements(text)):
        claimed, _ = claims(statement, find, ruled_out)
        firsts = {key: start for start, _, key in reversed(find(statement))}
        if claimed:
            return [Pick(key, index, firsts[key]) for key in sorted(claimed)]
    return []


def named_with(text: str, pick: Pick, find: Finder, picked: Finder) -> str | None:
    """What ``find`` finds named with a pick, before any other key of ``picked`` is: after the
    pick in its statement ("X from Y"), else before it ("from Y, X"), else in a statement that
    follows it ("Supplier: Y")."""
    said = statements(text)
    here = said[pick.statement]
    others = [s for s, _, key in picked(here) if key != pick.key]
    start = max([s for s in others if s < pick.start], default=0)
    stop = min([s for s in others if s > pick.start], default=len(here))
    after = [key for s, _, key in find(here) if pick.start <= s < stop]
    before = [key for s, _, key in find(here) if start <= s < pick.start]
    if after or before:
        return (after or before[::-1])[0]
    for statement in said[pick.statement + 1 :]:
        if {key for _, _, key in picked(statement)} - {pick.key}:
            return None
        if found := find(statement):
            return found[0][2]
    return None


def _set_aside(before: str) -> bool:
    return bool(_SET_ASIDE.search(before))


def _nearest(statement: str, options: list[Found], at: int) -> list[Found]:
    """The mention closest to a cue, by the words between them (a comma or "and" between them
    counts against it, as does a colon after it: each likely starts another thought), and any
    offered with it as an alternative ("X or Y")."""

    def distance(m: Found) -> int:
        before = m[1] <= at
        gap = statement[m[1] : at] if before else statement[at : m[0]]
        breaks = re.search(r",|\band\b", gap) is not None or (before and ":" in gap)
        return len(gap.split()) + 10 * breaks

    if not options:
        return []
    best = min(options, key=distance)
    between = [statement[min(m[1], best[1]) : max(m[0], best[0])] for m in options]
    return [best] + [m for m, gap in zip(options, between, strict=True) if " or " in f" {gap} "]
