"""Incident triage: 40 services' logs, of which the answer needs a handful of counts.

"Which services are failing in the last 30 minutes, and which one is the root cause?" takes the
service map and ~60 log lines per service (~2,500 lines), filtered by level and time in code.
The incident is engineered so that each shortcut changes the answer: a database fails first and
four services that depend on it (directly or not) follow; a failing service had an unrelated
error before the database did (so "earliest error" alone is wrong); a service has two sporadic
errors below the failure threshold; another had an error burst before the window; one logs
"timed out" at INFO; two log harmless WARNs. The data is synthetic and deterministic.
"""

import asyncio
import datetime as dt
import functools
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openptc.scenarios import answers
from openptc.scenarios.base import Scenario, Verdict
from openptc.scenarios.triage_brains import log_triage_brain

SEED = 20251114
NOW = dt.datetime(2025, 11, 14, 9, 30, tzinfo=dt.UTC)
WINDOW_MINUTES = 30
HISTORY_MINUTES = 60
FAILING_ERROR_RATE = 0.05
QUESTION = "Which services are failing in the last 30 minutes, and which one is the root cause?"

Level = Literal["DEBUG", "INFO", "WARN", "ERROR"]
Tier = Literal["data", "core", "edge"]

# name: (team, tier, depends_on)
_TOPOLOGY: dict[str, tuple[str, Tier, tuple[str, ...]]] = {
    "ledger-db": ("payments", "data", ("object-store",)),
    "orders-db": ("commerce", "data", ()),
    "users-db": ("identity", "data", ()),
    "catalog-db": ("commerce", "data", ()),
    "inventory-db": ("commerce", "data", ()),
    "session-cache": ("platform", "data", ()),
    "search-index": ("discovery", "data", ()),
    "object-store": ("platform", "data", ()),
    "event-bus": ("platform", "data", ()),
    "config-store": ("platform", "data", ()),
    "ledger-service": ("payments", "core", ("ledger-db", "event-bus")),
    "payments-api": ("payments", "core", ("ledger-service", "fraud-detector", "auth-service")),
    "billing-worker": ("payments", "core", ("ledger-service", "event-bus", "email-sender")),
    "fraud-detector": ("risk", "core", ("users-db", "event-bus")),
    "auth-service": ("identity", "core", ("users-db", "session-cache")),
    "users-service": ("identity", "core", ("users-db", "auth-service")),
    "orders-service": ("commerce", "core", ("orders-db", "event-bus", "inventory-service")),
    "inventory-service": ("commerce", "core", ("inventory-db",)),
    "catalog-service": ("commerce", "core", ("catalog-db", "object-store")),
    "pricing-service": ("commerce", "core", ("catalog-service", "config-store")),
    "search-api": ("discovery", "core", ("search-index", "catalog-service")),
    "recommendations": ("discovery", "core", ("search-index", "event-bus")),
    "notifications": ("growth", "core", ("event-bus", "users-service")),
    "email-sender": ("growth", "core", ("config-store",)),
    "shipping-service": ("fulfilment", "core", ("orders-service",)),
    "tax-service": ("finance", "core", ("config-store",)),
    "reporting-service": ("finance", "core", ("ledger-service", "orders-db")),
    "audit-log": ("security", "core", ("event-bus", "object-store")),
    "checkout": ("commerce", "edge", ("payments-api", "orders-service", "pricing-service")),
    "web-frontend": ("web", "edge", ("checkout", "catalog-service", "search-api")),
    "mobile-bff": ("mobile", "edge", ("catalog-service", "users-service", "orders-service")),
    "api-gateway": ("platform", "edge", ("auth-service", "orders-service", "catalog-service")),
    "admin-portal": ("internal-tools", "edge", ("users-service", "audit-log")),
    "partner-api": ("partnerships", "edge", ("orders-service", "auth-service")),
    "webhooks-dispatcher": ("platform", "edge", ("event-bus",)),
    "cdn-edge": ("web", "edge", ("object-store",)),
    "status-page": ("sre", "edge", ("config-store",)),
    "analytics-ingest": ("data", "edge", ("event-bus", "object-store")),
    "image-resizer": ("media", "edge", ("object-store",)),
    "scheduler": ("platform", "edge", ("event-bus", "config-store")),
}


@dataclass(frozen=True)
class _Episode:
    """From `start` to `end` minutes ago, each line of `service` becomes `level` with `chance`."""

    service: str
    start: float
    end: float
    chance: float
    level: Level
    messages: tuple[str, ...]


_EPISODES = (
    # The incident: ledger-db's disk fills up, then everything that writes to the ledger fails.
    _Episode("ledger-db", 24.0, 0, 0.6, "ERROR", (
        "could not write to WAL segment: No space left on device",
        "checkpoint failed: could not extend file base/16384/24576: No space left on device",
        "terminating connection: database is in read-only recovery mode",
    )),
    _Episode("ledger-service", 23.2, 0, 0.45, "ERROR", (
        "POST /v1/entries 500: ledger-db write failed (SQLSTATE 53100)",
        "transaction rolled back: ledger-db unavailable",
    )),
    _Episode("payments-api", 22.4, 0, 0.35, "ERROR", (
        "POST /v1/payments 502: ledger-service returned 500",
        "capture failed for payment: ledger-service error",
    )),
    _Episode("billing-worker", 21.9, 0, 0.3, "ERROR", (
        "invoice run failed: ledger-service returned 500",
        "job billing.settle aborted after 3 retries: ledger-service error",
    )),
    _Episode("checkout", 21.5, 0, 0.25, "ERROR", (
        "POST /v1/checkout 502: payments-api unavailable",
        "order not confirmed: payment step failed (payments-api 502)",
    )),
    # Noise that looks like trouble and is not failing by the rule.
    _Episode("reporting-service", 23.0, 0, 0.3, "INFO", (
        "ledger-service request timed out after 5000ms; served cached balances",
    )),
    _Episode("web-frontend", 21.0, 0, 0.06, "WARN", (
        "checkout returned 502; showed the retry page",
    )),
    _Episode("inventory-service", 52.0, 41.0, 0.5, "ERROR", (
        "deadlock detected on inventory-db; transaction aborted",
    )),
)  # fmt: skip

# (service, minutes ago, level, message): single lines placed on purpose.
_PINNED: tuple[tuple[str, float, Level, str], ...] = (
    ("checkout", 29.1, "ERROR", "template render failed: missing key 'promo_banner'"),
    ("ledger-db", 27.6, "WARN", "disk usage at 97% on /var/lib/postgresql/data"),
    ("ledger-db", 25.9, "WARN", "disk usage at 99% on /var/lib/postgresql/data"),
    ("search-api", 17.3, "ERROR", "query timed out on shard 7 after 2000ms"),
    ("search-api", 6.8, "ERROR", "query timed out on shard 3 after 2000ms"),
    ("cdn-edge", 26.2, "WARN", "origin response slow: 1840ms"),
    ("cdn-edge", 19.4, "WARN", "origin response slow: 2210ms"),
    ("cdn-edge", 8.5, "WARN", "origin response slow: 1655ms"),
)

_ROUTINE: dict[Tier, tuple[str, ...]] = {
    "data": (
        "query ok rows={n} in {ms}ms",
        "connection accepted from 10.4.{a}.{b}",
        "checkpoint complete: wrote {n} buffers",
        "autovacuum done on table {table}",
    ),
    "core": (
        "GET /v1/{resource} 200 in {ms}ms",
        "POST /v1/{resource} 201 in {ms}ms",
        "processed batch of {n} events",
        "cache hit ratio 0.9{a}",
    ),
    "edge": (
        "GET /{resource} 200 in {ms}ms",
        "GET /{resource}/{n} 200 in {ms}ms",
        "POST /{resource} 200 in {ms}ms",
        "upstream pool: {n} idle connections",
    ),
}
_DEBUG = ("health check ok", "exported {n} spans", "config reloaded (no changes)")


class Service(BaseModel):
    """One service of the platform."""

    model_config = ConfigDict(frozen=True)
    name: str
    team: str
    tier: Tier = Field(description="data (stores), core (internal APIs) or edge (user-facing).")
    depends_on: tuple[str, ...] = Field(
        description="Services this one calls; a failure propagates to the services that call it."
    )


class LogLine(BaseModel):
    """One log line."""

    model_config = ConfigDict(frozen=True)
    timestamp: str = Field(description="UTC, ISO 8601 with milliseconds.")
    level: Level
    message: str
    trace_id: str


def _stamp(minutes_ago: float) -> str:
    moment = NOW - dt.timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _routine(rng: random.Random, name: str, tier: Tier) -> tuple[Level, str]:
    """A healthy line: mostly INFO, some DEBUG."""
    resource = name.split("-")[0]
    fill = dict(n=rng.randint(2, 480), ms=rng.randint(2, 180), a=rng.randint(0, 9),
                b=rng.randint(2, 250), resource=resource, table=resource)  # fmt: skip
    if rng.random() < 0.15:
        return "DEBUG", rng.choice(_DEBUG).format(**fill)
    return "INFO", rng.choice(_ROUTINE[tier]).format(**fill)


def _service_logs(rng: random.Random, name: str, tier: Tier) -> tuple[LogLine, ...]:
    """100-150 lines over the last hour (~50-75 per half hour), oldest first: the direct run's
    last call is then ~112k tokens (cl100k), which fits a 200k-token context window with room to
    spare for tokenizers that count more (Claude's)."""
    moments = [rng.uniform(0.01, HISTORY_MINUTES) for _ in range(rng.randint(100, 150))]
    episodes = [e for e in _EPISODES if e.service == name]
    rows: list[tuple[float, Level, str]] = []
    for ago in moments:
        level, message = _routine(rng, name, tier)
        for e in episodes:
            if e.end <= ago <= e.start and rng.random() < e.chance:
                level, message = e.level, rng.choice(e.messages)
        rows.append((ago, level, message))
    pinned = [(ago + rng.uniform(0, 0.01), lvl, msg) for s, ago, lvl, msg in _PINNED if s == name]
    rows += pinned
    rows.sort(key=lambda row: -row[0])
    return tuple(
        LogLine(
            timestamp=_stamp(ago), level=level, message=message, trace_id=rng.randbytes(6).hex()
        )
        for ago, level, message in rows
    )


@dataclass(frozen=True)
class TriageData:
    """The service map and each service's last hour of logs."""

    services: tuple[Service, ...]
    logs: dict[str, tuple[LogLine, ...]]

    def since(self, service: str, minutes: float) -> list[LogLine]:
        cutoff = _stamp(minutes)
        return [line for line in self.logs[service] if line.timestamp > cutoff]


@functools.cache
def data(seed: int = SEED) -> TriageData:
    """The scenario's tables (built once per process)."""
    rng = random.Random(seed)
    services = tuple(
        Service(name=name, team=team, tier=tier, depends_on=deps)
        for name, (team, tier, deps) in _TOPOLOGY.items()
    )
    return TriageData(services, {s.name: _service_logs(rng, s.name, s.tier) for s in services})


def make_tools(latency: float = 0.0) -> list[Callable[..., Awaitable[Any]]]:
    """The scenario's two async tools; `latency` simulates a remote API per call."""
    d = data()

    async def list_services() -> list[Service]:
        """List every service of the platform with its team and the services it depends on.

        A failure propagates from a service to the services that depend on it.
        """
        await asyncio.sleep(latency)
        return list(d.services)

    async def get_logs(service: str, since_minutes: int) -> list[LogLine]:
        """Get a service's log lines of the last `since_minutes` minutes, oldest first.

        It is now 2025-11-14 09:30 UTC. A service is failing when more than 5% of its log
        lines in the period are ERROR (WARN and INFO lines never count as errors).

        Args:
            service: The service's name, e.g. "checkout".
            since_minutes: How far back to look, 1 to 60 minutes.
        """
        await asyncio.sleep(latency)
        if service not in d.logs:
            raise ValueError(f"unknown service {service!r}")
        if not 1 <= since_minutes <= HISTORY_MINUTES:
            raise ValueError(f"since_minutes must be 1 to {HISTORY_MINUTES}, not {since_minutes}")
        return d.since(service, since_minutes)

    return [list_services, get_logs]


def error_rates(d: TriageData | None = None, minutes: int = WINDOW_MINUTES) -> dict[str, float]:
    """Each service's share of ERROR lines in the window."""
    d = d if d is not None else data()
    rates = {}
    for s in d.services:
        lines = d.since(s.name, minutes)
        rates[s.name] = sum(line.level == "ERROR" for line in lines) / len(lines)
    return rates


def first_error(service: str, d: TriageData | None = None) -> str:
    """Timestamp of the service's first ERROR in the window."""
    d = d if d is not None else data()
    return min(x.timestamp for x in d.since(service, WINDOW_MINUTES) if x.level == "ERROR")


def expected(d: TriageData | None = None) -> tuple[set[str], str]:
    """The failing services and the root cause: the failing service with no failing dependency
    whose errors started first."""
    d = d if d is not None else data()
    failing = {name for name, rate in error_rates(d).items() if rate > FAILING_ERROR_RATE}
    deps = {s.name: set(s.depends_on) for s in d.services}
    roots = [name for name in failing if not deps[name] & failing]
    return failing, min(roots, key=lambda name: first_error(name, d))


_SERVICES = answers.finder({name: (name,) for name in _TOPOLOGY})
_NOT_FAILING = answers.cues(
    answers.RULED_OUT,
    answers.negated("failing|failed|erroring|down|affected|counted|count"),
    r"\bno (?:errors?|failures?|issues?)\b|\b(?:0|zero) errors?\b|[<≤]\s*5\s*%",
    r"\b(?:below|under)\s+(?:the\s+)?(?:5|five|threshold|failure|failing)",
    r"\bhealthy\b|\brecovered\b|\bharmless\b|\bbenign\b",
    r"\bnoise\b|\bonly (?:warn|info)|\b(?:warn|info)\w* only\b|\bat info\b",
)
"""What rules a service out: "not failing", "below the threshold", "its dependency X is healthy",
"none in the window", "timeouts logged at INFO"."""
_ROOT_CUE = re.compile(r"root[ -]?cause|culprit", re.IGNORECASE)
_COPULA = re.compile(r"\b(?:is|was|appears|seems|looks|being|as)\b", re.IGNORECASE)
_LINK = re.compile(r"\b(?:is|was|appears to be|seems to be|looks like)\b|[:=(—–→-]", re.IGNORECASE)
_DENIAL = re.compile(r"\bnot\b|n't\b|\bnever\b|\brather than\b|\binstead of\b", re.IGNORECASE)


def _links(gap: str, after: bool) -> bool:
    """Whether the text between a service and "root cause" makes one the other: a link ("is",
    ":", "appears to be"), no denial, a few words and, after the cue, no list of other services
    on the way ("the root cause, and X, Y fail because of it")."""
    if not _LINK.search(gap) or _DENIAL.search(gap) or len(gap.split()) > 12:
        return False
    return not (after and "," in gap and _SERVICES(gap))


def _root_in(statement: str) -> str | None:
    """The service a statement calls the root cause: "X is (most likely) the root cause", else
    "the root cause (of the incident) is X", "Root cause: the X database", else "X (root cause)"."""
    found = _SERVICES(statement)
    for cue in _ROOT_CUE.finditer(statement):
        before = [m for m in found if m[1] <= cue.start()][-1:]
        subject = [m for m in before if _links(statement[m[1] : cue.start()], after=False)]
        copula = [m for m in subject if _COPULA.search(statement[m[1] : cue.start()])]
        after = [m for m in found if m[0] >= cue.end()]
        complement = [m for m in after if _links(statement[cue.end() : m[0]], after=True)]
        if chosen := (copula or complement or subject)[:1]:
            return chosen[0][2]
    return None


def named_root(answer: str) -> str | None:
    """The service an answer calls the root cause, in its first statement that names one."""
    for statement in answers.statements(answer):
        if root := _root_in(statement):
            return root
    return None


def check(answer: str) -> Verdict:
    """Right when the answer claims exactly the failing services (those it names only to rule
    out do not count), and names the right root cause."""
    failing, root = expected()
    said_root = named_root(answer)
    claimed, ruled_out = answers.claims(answer, _SERVICES, _NOT_FAILING)
    named = claimed | ({said_root} if said_root else set())
    problems = []
    if named != failing:
        missing, extra = sorted(failing - named), sorted(named - failing)
        problems.append(f"missing {missing or 'none'}; wrongly named {extra or 'none'}")
        if denied := sorted(set(missing) & ruled_out):
            problems.append(f"{', '.join(denied)} named only as not failing")
    if said_root is None:
        problems.append("no root cause named (as 'root cause: <service>')")
    elif said_root != root:
        problems.append(f"root cause given as {said_root}, not {root}")
    return Verdict.wrong("; ".join(problems)) if problems else Verdict.right()


SCENARIO = Scenario(
    name="log-triage",
    title="Incident triage",
    stresses="filtering: ~2,500 log lines of 40 services, reduced in code to a few counts",
    question=QUESTION,
    make_tools=make_tools,
    check=check,
    brain=log_triage_brain,
)
