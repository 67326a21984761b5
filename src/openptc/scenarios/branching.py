"""Conditional follow-ups: a call is made only when an earlier result says so.

"Which of the 40 open shipping tickets need a refund?" takes the ticket list, one order per
ticket, and a carrier lookup only for orders shipped more than 10 days before today (a fixed
date, no clock) and not delivered. The data is synthetic and deterministic (a fixed seed), built
so that every common mistake changes the answer or shows in the lookup log: orders shipped
exactly 10 and 11 days ago, recent shipments whose tracking would say "delayed", delivered and
cancelled orders, and unshipped orders placed exactly 14 days ago and earlier.
"""

import asyncio
import datetime as dt
import functools
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openptc.scenarios import answers
from openptc.scenarios.base import Scenario, ToolCall, Verdict
from openptc.scenarios.branching_brains import conditional_brain

DEFAULT_SEED = 20250630
TODAY = dt.date(2025, 6, 30)
TRACK_AFTER_DAYS = 10
"""Tracking may be looked up only for orders shipped more than this many days before TODAY."""
UNSHIPPED_REFUND_AFTER_DAYS = 14
"""An order never shipped is refunded when placed more than this many days before TODAY."""

OrderStatus = Literal["processing", "shipped", "delivered", "cancelled"]
TrackingStatus = Literal["in_transit", "delayed", "delivered", "lost", "returned_to_sender"]
REFUND_TRACKING: tuple[TrackingStatus, ...] = ("lost", "returned_to_sender")

# Kind -> how many tickets. Refunds: lost, returned, unshipped_old. The rest are traps.
_KINDS: dict[str, int] = {
    "lost": 3,
    "lost_day_11": 1,  # shipped 11 days ago: checked, and lost
    "returned": 3,
    "old_in_transit": 4,  # checked, still moving: no refund
    "old_delivered_scan": 3,  # order still says shipped; the carrier says delivered
    "shipped_day_10": 1,  # exactly 10 days: not checked yet
    "recent": 6,  # shipped 1-9 days ago; tracking would say "delayed"
    "delivered": 7,
    "cancelled": 4,  # never shipped, placed long ago, already refunded
    "unshipped_old": 3,
    "unshipped_day_14": 1,  # placed exactly 14 days ago: not yet
    "unshipped_recent": 4,
}
QUESTION = f"Which of the {sum(_KINDS.values())} open shipping tickets need a refund?"
_CARRIERS = {"UPS": "1Z", "FedEx": "7489", "USPS": "9400", "DHL": "JD01"}
_SUBJECTS = (
    "Where is my order?", "Package has not arrived", "Tracking not updating",
    "Order still not shipped?", "Delivery is late", "Can I get a refund?", "Order status please",
)  # fmt: skip
_MESSAGES = (
    "Hi, I ordered a while ago and still have nothing. Can you check what is going on?",
    "The tracking page has not changed for days. Please advise, I need this soon.",
    "I was told it would ship in two days. It is well past that now, what happened?",
    "My order shows no progress. If it cannot arrive I would like my money back.",
)
_PRODUCTS = (
    "Trail running shoes", "Insulated water bottle", "Rain shell jacket", "Camping stove",
    "Headlamp 400 lm", "Merino base layer", "Trekking poles", "Dry bag 20 L", "Sleeping pad",
)  # fmt: skip
_NAMES = (
    "Ana Lima", "Ben Osei", "Chloe Martin", "Dev Mehta", "Eva Novak", "Femi Adeyemi", "Gus Berg",
    "Hana Sato", "Ivo Petrov", "Jill Moss", "Kai Weber", "Lena Kraus", "Milo Grant", "Nia Cole",
)  # fmt: skip


class Ticket(BaseModel):
    """An open support ticket about an order's shipping."""

    model_config = ConfigDict(frozen=True)
    ticket_id: str = Field(description="Ticket id, e.g. 'T-1042'.")
    order_id: str = Field(description="The order the ticket is about; see get_order.")
    customer_name: str
    subject: str
    opened_on: dt.date
    priority: Literal["low", "normal", "high"]
    last_message: str


class OrderItem(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(frozen=True)
    sku: str
    name: str
    quantity: int
    unit_price_usd: float


class Order(BaseModel):
    """An order, with its shipping details once shipped."""

    model_config = ConfigDict(frozen=True)
    order_id: str
    customer_name: str
    placed_on: dt.date
    status: OrderStatus = Field(
        description="processing (not shipped yet), shipped, delivered, or cancelled (refunded)."
    )
    shipped_on: dt.date | None = Field(description="None while not shipped.")
    carrier: str | None
    tracking_number: str | None
    amount_usd: float
    items: list[OrderItem]
    shipping_address: str
    payment_method: str


class TrackingEvent(BaseModel):
    """One carrier scan."""

    model_config = ConfigDict(frozen=True)
    date: dt.date
    location: str
    description: str


class Tracking(BaseModel):
    """What the carrier knows about a parcel."""

    model_config = ConfigDict(frozen=True)
    carrier: str
    tracking_number: str
    status: TrackingStatus
    last_update: dt.date
    events: list[TrackingEvent]


@dataclass
class TrackingLog:
    """The orders whose tracking was looked up, in call order: tests check the rule was kept."""

    orders: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tables:
    """The tickets, orders and carrier records for one seed."""

    tickets: tuple[Ticket, ...]
    orders: dict[str, Order]
    tracking: dict[str, Tracking]  # by tracking number, for every order that shipped


def _days(rng: random.Random, kind: str) -> tuple[int, int | None]:
    """(days since placed, days since shipped or None) for one kind of ticket."""
    shipped = {
        "lost": rng.randint(12, 25), "lost_day_11": 11, "returned": rng.randint(12, 25),
        "old_in_transit": rng.randint(11, 20), "old_delivered_scan": rng.randint(11, 25),
        "shipped_day_10": 10, "recent": rng.randint(1, 9), "delivered": rng.randint(3, 25),
    }.get(kind)  # fmt: skip
    if shipped is not None:
        return shipped + rng.randint(1, 3), shipped
    placed = {"cancelled": rng.randint(15, 40), "unshipped_old": rng.randint(15, 30),
              "unshipped_day_14": 14, "unshipped_recent": rng.randint(1, 13)}[kind]  # fmt: skip
    return placed, None


def _tracking(rng: random.Random, kind: str, carrier: str, number: str, shipped: int) -> Tracking:
    """A carrier record whose status follows the kind; scans from dispatch on."""
    moving: list[TrackingStatus] = ["in_transit", "delayed"]
    statuses: dict[str, TrackingStatus] = {
        "lost": "lost", "lost_day_11": "lost", "returned": "returned_to_sender",
        "old_delivered_scan": "delivered", "delivered": "delivered",
        "old_in_transit": rng.choice(moving),
    }  # fmt: skip
    status = statuses.get(kind, "delayed")  # recent shipments would say "delayed"
    hubs = rng.sample(["Memphis, TN", "Louisville, KY", "Reno, NV", "Chicago, IL", "Dallas, TX"], 3)
    days = sorted(rng.sample(range(0, shipped), min(shipped, 4)))
    events = [
        TrackingEvent(date=TODAY - dt.timedelta(days=shipped - d), location=hub, description=text)
        for d, hub, text in zip(days, hubs * 2, ["Picked up", "Departed facility",
                                                 "Arrived at facility", "In transit"],
                                strict=False)
    ]  # fmt: skip
    final = {"lost": "Parcel could not be located; investigation closed as lost",
             "returned_to_sender": "Returned to sender: address not accessible",
             "delivered": "Delivered, left at front door",
             "delayed": "Delayed: weather and network congestion"}.get(status)  # fmt: skip
    if final:
        events.append(TrackingEvent(date=events[-1].date, location=hubs[-1], description=final))
    return Tracking(carrier=carrier, tracking_number=number, status=status,
                    last_update=events[-1].date, events=events)  # fmt: skip


def _build(seed: int) -> Tables:
    rng = random.Random(seed)
    kinds = [k for k, n in _KINDS.items() for _ in range(n)]
    rng.shuffle(kinds)
    ticket_ids = sorted(rng.sample(range(1001, 1100), len(kinds)))
    tickets, orders, tracking = [], {}, {}
    for kind, number in zip(kinds, ticket_ids, strict=True):
        placed, shipped = _days(rng, kind)
        order_id, name = f"ORD-{rng.randint(100000, 999999)}", rng.choice(_NAMES)
        carrier = rng.choice(sorted(_CARRIERS)) if shipped is not None else None
        track = f"{_CARRIERS[carrier]}{rng.randint(10**11, 10**12 - 1)}" if carrier else None
        items = [
            OrderItem(sku=f"SKU-{rng.randint(1000, 9999)}", name=p, quantity=rng.randint(1, 3),
                      unit_price_usd=round(rng.uniform(12, 180), 2))
            for p in rng.sample(_PRODUCTS, rng.randint(1, 3))
        ]  # fmt: skip
        status: OrderStatus = (
            "delivered" if kind == "delivered" else "cancelled" if kind == "cancelled"
            else "shipped" if shipped is not None else "processing"
        )  # fmt: skip
        orders[order_id] = Order(
            order_id=order_id, customer_name=name, placed_on=TODAY - dt.timedelta(days=placed),
            status=status, carrier=carrier, tracking_number=track,
            shipped_on=None if shipped is None else TODAY - dt.timedelta(days=shipped),
            amount_usd=round(sum(i.quantity * i.unit_price_usd for i in items), 2), items=items,
            shipping_address=f"{rng.randint(1, 999)} {rng.choice(['Oak', 'Elm', 'Main'])} St, "
            f"{rng.choice(['Portland, OR', 'Austin, TX', 'Denver, CO', 'Albany, NY'])}",
            payment_method=rng.choice(["visa", "mastercard", "paypal"]),
        )  # fmt: skip
        if carrier and track and shipped is not None:
            tracking[track] = _tracking(rng, kind, carrier, track, shipped)
        tickets.append(Ticket(
            ticket_id=f"T-{number}", order_id=order_id, customer_name=name,
            subject=rng.choice(_SUBJECTS), opened_on=TODAY - dt.timedelta(days=rng.randint(0, 3)),
            priority=rng.choice(["low", "normal", "normal", "high"]),
            last_message=rng.choice(_MESSAGES),
        ))  # fmt: skip
    return Tables(tuple(tickets), orders, tracking)


@functools.cache
def tables(seed: int = DEFAULT_SEED) -> Tables:
    """The scenario's records for one seed (built once per process)."""
    return _build(seed)


def may_track(order: Order) -> bool:
    """The rule get_tracking states: shipped (not delivered) more than 10 days before TODAY."""
    shipped = order.shipped_on
    return (
        order.status == "shipped"
        and shipped is not None
        and ((TODAY - shipped).days > TRACK_AFTER_DAYS)
    )


def make_tools(
    t: Tables | None = None, *, latency: float = 0.0, log: TrackingLog | None = None
) -> list[Callable[..., Awaitable[Any]]]:
    """The scenario's three async tools; `log` records every tracking lookup, by order id."""
    d = t if t is not None else tables()
    record = log if log is not None else TrackingLog()
    by_tracking = {o.tracking_number: o.order_id for o in d.orders.values() if o.tracking_number}

    async def list_open_tickets() -> list[Ticket]:
        """List every open support ticket about shipping, each with the order it concerns."""
        await asyncio.sleep(latency)
        return list(d.tickets)

    async def get_order(order_id: str) -> Order:
        """Get an order: status, dates, carrier and tracking number, amount and items.

        Refund policy (today is 2025-06-30): a refund is due when the carrier's tracking says
        "lost" or "returned_to_sender", or when an order never shipped (status "processing")
        was placed more than 14 days before today. Cancelled orders were refunded when
        cancelled; delivered orders need no refund.

        Args:
            order_id: The order id from a ticket, e.g. "ORD-482913".
        """
        await asyncio.sleep(latency)
        if order_id not in d.orders:
            raise ValueError(f"unknown order_id {order_id!r}")
        return d.orders[order_id]

    async def get_tracking(carrier: str, tracking_number: str) -> Tracking:
        """Get the carrier's tracking record of a parcel (each lookup is billed).

        Call it ONLY for orders with status "shipped" whose shipped_on is more than 10 days
        before today, 2025-06-30 (so shipped on 2025-06-19 or earlier). Do not look up
        delivered orders or more recent shipments: their tracking is not actionable yet.

        Args:
            carrier: The order's carrier, e.g. "UPS".
            tracking_number: The order's tracking number.
        """
        await asyncio.sleep(latency)
        found = d.tracking.get(tracking_number)
        if found is None or found.carrier != carrier:
            raise ValueError(f"no {carrier} parcel with tracking number {tracking_number!r}")
        record.orders.append(by_tracking[tracking_number])
        return found

    return [list_open_tickets, get_order, get_tracking]


def refunds(t: Tables | None = None) -> dict[str, str]:
    """The right answer: ticket id -> why a refund is due, straight from the tables."""
    d = t if t is not None else tables()
    due = {}
    for ticket in d.tickets:
        order = d.orders[ticket.order_id]
        if may_track(order) and order.tracking_number:
            status = d.tracking[order.tracking_number].status
            if status in REFUND_TRACKING:
                due[ticket.ticket_id] = f"tracking says {status}"
        elif order.status == "processing":
            age = (TODAY - order.placed_on).days
            if age > UNSHIPPED_REFUND_AFTER_DAYS:
                due[ticket.ticket_id] = f"not shipped {age} days after the order"
    return due


def trackable(t: Tables | None = None) -> set[str]:
    """Order ids whose tracking the rule allows looking up."""
    d = t if t is not None else tables()
    return {o.order_id for o in d.orders.values() if may_track(o)}


_TICKET = re.compile(
    r"(?<![\w-])(?:T-?|#)(\d{4})(?!\d)"
    r"|\btickets?\s*(?:#|no\.?\s*|number\s*)?(\d{4}(?:(?:\s*,\s*|\s*,?\s*(?:and|&)\s+)#?\d{4})*)\b",
    re.IGNORECASE,
)
_NO_REFUND = answers.cues(
    answers.RULED_OUT,
    answers.negated("need|needs|require|requires|qualify|qualifies|warrant|warrants|get"),
    r"\bno (?:refunds?|need|action)\b|\bnot (?:yet|eligible|due|needed)\b|n't (?:eligible|due)\b",
    r"\brefunds?\b[^.;,]*?(?:\bnot|n't)\s+(?:\w+\s+)?(?:needed|due|required|necessary|warranted)",
    r"\balready refunded\b|\btoo (?:early|soon)\b",
)
"""What rules a ticket out: "T-1099 does not need a refund", "no refund", "none of ... need one",
"already refunded", "too early to track"."""


def find_tickets(text: str) -> list[answers.Found]:
    """Ticket ids named in a text: "T-1042", "T1042", "#1042", "ticket 1042", "tickets 1042 and
    1055"."""
    found = []
    for m in _TICKET.finditer(text):
        group = 1 if m.group(1) else 2
        found += [(m.start(group), m.end(group), f"T-{n}") for n in re.findall(r"\d{4}", m[group])]
    return found


def parse_tickets(answer: str) -> tuple[set[str], set[str]]:
    """The tickets an answer says need a refund, and those it names only to rule out."""
    return answers.claims(answer, find_tickets, _NO_REFUND)


def check(answer: str, t: Tables | None = None) -> Verdict:
    """Right when exactly the tickets that need a refund are claimed, and no other."""
    expected, (named, ruled_out) = set(refunds(t)), parse_tickets(answer)
    if named == expected:
        return Verdict.right()
    missing, extra = sorted(expected - named), sorted(named - expected)
    reason = f"missing {missing or 'none'}; wrongly named {extra or 'none'}"
    if denied := sorted(set(missing) & ruled_out):
        reason += f"; {', '.join(denied)} named only as needing no refund"
    return Verdict.wrong(reason)


def _why_not(order: Order) -> str:
    """Why the rule does not allow tracking an order."""
    if order.status != "shipped" or order.shipped_on is None:
        return order.status
    return f"shipped {(TODAY - order.shipped_on).days} days ago"


def calls_rule(calls: Sequence[ToolCall], t: Tables | None = None) -> Verdict:
    """Right when every get_tracking call is for an order the rule allows (shipped more than 10
    days ago, not delivered): its (carrier, tracking_number) mapped back to the order."""
    d = t if t is not None else tables()
    by_number = {o.tracking_number: o for o in d.orders.values() if o.tracking_number}
    bad = []
    for name, arguments in calls:
        order = by_number.get(str(arguments.get("tracking_number")))
        if name != "get_tracking" or (order is not None and may_track(order)):
            continue
        bad.append(f"{order.order_id} ({_why_not(order)})" if order else f"parcel {arguments}")
    problem = f"get_tracking called for orders the rule does not allow: {', '.join(bad)}"
    return Verdict.wrong(problem) if bad else Verdict.right()


SCENARIO = Scenario(
    name="conditional",
    title="Conditional follow-ups",
    stresses="calls made only when an earlier result says so: 40 orders, then 14 tracking lookups",
    question=QUESTION,
    make_tools=lambda latency: make_tools(latency=latency),
    check=check,
    brain=conditional_brain,
    calls_rule=calls_rule,
)
