"""Personal data stays out: a churn report over customer records full of personal data.

"How many customers churned in each region last quarter, and what was their average lifetime
value?" needs every customer record of five regions (300 customers, each with a full name,
email, phone number, street address, date of birth and national id) and the orders of those who
churned, yet the answer is ten numbers. A program reads the records inside the sandbox and
prints only the aggregates, so no personal string reaches the model; classic tool calling puts
all of them in its context. ``private()`` lists those strings for ``leaks.leaked``.

Traps: churn dates a day either side of the quarter, customers who churned in earlier quarters,
and refunded orders, which do not count towards lifetime value.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openptc.scenarios.base import Scenario, Verdict
from openptc.scenarios.privacy_brains import privacy_brain

QUESTION = (
    "How many customers churned in each region last quarter (Q2 2025, April 1 to June 30), "
    "and what was the average lifetime value of those churned customers in each region (in "
    "USD, to the nearest dollar or to the cent)?"
)
SEED = 20250715
AS_OF = dt.date(2025, 7, 15)
Q2_START, Q2_END = dt.date(2025, 4, 1), dt.date(2025, 6, 30)
Region = Literal["north", "south", "east", "west", "central"]
REGIONS: tuple[Region, ...] = ("north", "south", "east", "west", "central")
PER_REGION = 60

_FIRST = (
    "Aaliyah Bernard Camila Declan Elif Fernando Greta Hamza Ines Joaquin Katarzyna Lorenzo "
    "Mei Nadia Osman Paula Quentin Renata Stellan Thandiwe Ulrich Vivienne Wojciech Xiadani "
    "Yannick Zuzana Anouk Bastian Cosima Dariusz Eun-ji Florin Giedre Hugo Ilse Jovana Kenji "
    "Ludmila Matteo Noor"
)
_LAST = (
    "Achterberg Baptiste Castellanos Drummond Eriksen Fontaine Gallagher Halvorsen Iwasaki "
    "Jablonski Karlsson Lindgren Marchetti Nieminen Oyelaran Pereira Quinlan Rasmussen "
    "Szabo Thorsen Underwood Vasquez Whitfield Xenakis Yamamoto Zielinski Abernathy Bergstrom "
    "Cavanagh Delacroix Engstrom Falkenberg Gundersen Hargreaves Ishikawa Janssens"
)
_STREETS = (
    "Maple Avenue", "Oak Street", "Harbor Road", "Linden Lane", "Birch Court", "Cedar Way",
    "Willow Drive", "Elm Terrace", "Juniper Place", "Aspen Boulevard", "Chestnut Row",
    "Sycamore Street", "Laurel Crescent",
)  # fmt: skip
_CITIES: dict[Region, list[str]] = {
    "north": ["Duluth", "Fargo", "Bismarck"],
    "south": ["Savannah", "Mobile", "Baton Rouge"],
    "east": ["Providence", "Hartford", "Portland"],
    "west": ["Eugene", "Fresno", "Boise"],
    "central": ["Omaha", "Wichita", "Tulsa"],
}
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")


class Customer(BaseModel):
    """One customer account, with the personal data a CRM keeps."""

    model_config = ConfigDict(frozen=True)
    customer_id: str = Field(description="Customer id, e.g. 'C20417'; used by get_orders.")
    full_name: str
    email: str
    phone: str
    street_address: str
    date_of_birth: dt.date
    national_id: str = Field(description="Social security number, for credit checks.")
    region: Region
    signed_up: dt.date
    status: Literal["active", "churned"]
    churned_on: dt.date | None = Field(
        description="The day the customer cancelled; null while the customer is active."
    )


class Order(BaseModel):
    """One order of a customer (USD)."""

    model_config = ConfigDict(frozen=True)
    order_id: str
    customer_id: str
    placed_on: dt.date
    amount: float = Field(description="Order total in USD, two decimals.")
    status: Literal["completed", "refunded"] = Field(
        description="Refunded orders do not count towards lifetime value."
    )


@dataclass(frozen=True)
class Tables:
    customers: tuple[Customer, ...]
    orders: dict[str, tuple[Order, ...]]


def _date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))


def _churn_dates(rng: random.Random) -> list[dt.date | None]:
    """Churn dates of one region's customers: 8-14 in Q2 2025, traps at its edges, the rest
    earlier churns or active customers, shuffled."""
    q2 = [_date(rng, Q2_START, Q2_END) for _ in range(rng.randint(8, 14))]
    edges = [Q2_START - dt.timedelta(days=1), Q2_END + dt.timedelta(days=1)]
    earlier = [_date(rng, dt.date(2024, 1, 1), dt.date(2025, 3, 25)) for _ in range(10)]
    later = [_date(rng, dt.date(2025, 7, 2), AS_OF - dt.timedelta(days=1))]
    churned: list[dt.date | None] = [*q2, *edges, *earlier, *later]
    dates = churned + [None] * (PER_REGION - len(churned))
    rng.shuffle(dates)
    return dates


def _orders(
    rng: random.Random, customer_id: str, start: dt.date, end: dt.date, ids: itertools.count[int]
) -> tuple[Order, ...]:
    rows = []
    for _ in range(rng.randint(2, 12)):
        status: Literal["completed", "refunded"] = (
            "refunded" if rng.random() < 0.12 else "completed"
        )
        rows.append((_date(rng, start, end), round(rng.uniform(15, 480), 2), status))
    rows.sort()
    return tuple(
        Order(order_id=f"O{next(ids):06d}", customer_id=customer_id, placed_on=day, amount=amount,
              status=status)
        for day, amount, status in rows
    )  # fmt: skip


def _build(seed: int) -> Tables:
    rng = random.Random(seed)
    n = PER_REGION * len(REGIONS)
    names = rng.sample(list(itertools.product(_FIRST.split(), _LAST.split())), n)
    phones = rng.sample(range(10_000), n)
    house_numbers = rng.sample(range(10, 9_990), n)
    ssns = rng.sample(range(100_000_000, 899_999_999), n)
    ids = rng.sample(range(20_001, 29_999), n)
    order_ids = itertools.count(1)
    customers: list[Customer] = []
    orders: dict[str, tuple[Order, ...]] = {}
    for r, region in enumerate(REGIONS):
        for j, churned_on in enumerate(_churn_dates(rng)):
            i = r * PER_REGION + j
            first, last = names[i]
            signed_up = _date(rng, dt.date(2019, 1, 1), dt.date(2023, 12, 31))
            ssn = f"{ssns[i]:09d}"
            customer = Customer(
                customer_id=f"C{ids[i]}",
                full_name=f"{first} {last}",
                email=f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}".lower(),
                phone=f"+1 ({rng.randint(201, 989)}) 555-{phones[i]:04d}",
                street_address=(
                    f"{house_numbers[i]} {rng.choice(_STREETS)}, {rng.choice(_CITIES[region])}"
                ),
                date_of_birth=_date(rng, dt.date(1950, 1, 1), dt.date(2004, 12, 31)),
                national_id=f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}",
                region=region,
                signed_up=signed_up,
                status="active" if churned_on is None else "churned",
                churned_on=churned_on,
            )
            customers.append(customer)
            end = churned_on or AS_OF
            orders[customer.customer_id] = _orders(
                rng, customer.customer_id, signed_up, end, order_ids
            )
    return Tables(tuple(customers), orders)


@functools.cache
def tables(seed: int = SEED) -> Tables:
    """The data set of one seed, built once per process."""
    return _build(seed)


def make_tools(latency: float = 0.0) -> list[Callable[..., Awaitable[object]]]:
    """The CRM's two async tools; `latency` simulates a remote API per call."""
    t = tables()

    async def list_customers(region: Region) -> list[Customer]:
        """List every customer account of one sales region, active and churned.

        Args:
            region: The sales region.
        """
        await asyncio.sleep(latency)
        return [c for c in t.customers if c.region == region]

    async def get_orders(customer_id: str) -> list[Order]:
        """List every order a customer ever placed, oldest first (USD).

        A customer's lifetime value is the sum of the amounts of their completed orders;
        refunded orders do not count.

        Args:
            customer_id: The customer's id (Customer.customer_id).
        """
        await asyncio.sleep(latency)
        if customer_id not in t.orders:
            raise ValueError(f"unknown customer_id {customer_id!r}")
        return list(t.orders[customer_id])

    return [list_customers, get_orders]


def private(t: Tables | None = None) -> tuple[str, ...]:
    """Every personal string of the data set: what must never reach the model."""
    d = t if t is not None else tables()
    found: dict[str, None] = {}
    for c in d.customers:
        for text in (c.full_name, c.email, c.phone, c.street_address, c.national_id):
            found[text] = None
        found[c.date_of_birth.isoformat()] = None
    return tuple(found)


@dataclass(frozen=True)
class RegionChurn:
    """One region's line of the answer: churned customers and their mean lifetime value."""

    region: Region
    churned: int
    average_cents: Fraction
    """Exact mean in cents; an answer within half a cent of it is right."""


def expected(t: Tables | None = None) -> list[RegionChurn]:
    """The right answer, from the tables, in REGIONS order."""
    d = t if t is not None else tables()
    lines = []
    for region in REGIONS:
        values = [
            sum(round(o.amount * 100) for o in d.orders[c.customer_id] if o.status == "completed")
            for c in d.customers
            if c.region == region and c.churned_on and Q2_START <= c.churned_on <= Q2_END
        ]
        lines.append(RegionChurn(region, len(values), Fraction(sum(values), len(values))))
    return lines


_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?(?![\d,]*\.?\d)"
_MONEY = re.compile(
    rf"(?:\$|\bUSD\s?)\s?{_NUMBER}|{_NUMBER}\s?(?:USD|dollars)\b"
    r"|(\d{1,3}(?:,\d{3})+|\d+)\.(\d{2})(?!\d)|(\d{1,3}(?:,\d{3})+)(?![\d.])"
)
"""An amount: "$1,734.03", "$1,734", "USD 1734", "1,734 dollars", "1734.03", "1,734"."""
_NOT_COUNTS = re.compile(r"\bQ[1-4]\b|\b(?:19|20)\d\d\b|\d+(?:st|nd|rd|th)\b|\d+\s*%")
_COUNT = re.compile(r"(?<![\d.,$])\b(\d+)\b(?![.,]\d)")
_CHURN_COUNT = re.compile(
    r"(?<![\d.,$])\b(\d+)\b(?![.,]\d)(?=(?:\s+[\w-]+){0,2}?\s+churn)"
    r"|churn\w*\W+(?:[a-z]+\W+){0,2}?(\d+)\b(?![.,]\d)",
    re.IGNORECASE,
)


def _amount(segment: str) -> tuple[int, bool] | None:
    """The first amount of a segment, in cents, and whether it was given to the cent."""
    m = _MONEY.search(segment)
    if m is None:
        return None
    groups = m.groups()
    dollars, cents = next((groups[i], groups[i + 1]) for i in range(0, 8, 2) if groups[i])
    return int(dollars.replace(",", "")) * 100 + int(cents or 0), cents is not None


def _count(segment: str) -> int | None:
    """The churn count of a segment: the number said to have churned ("10 churned", "churned:
    10"), else its first whole number that is not an amount, a year, a quarter or a percentage."""
    rest = _NOT_COUNTS.sub(" ", _MONEY.sub(" ", segment))
    said = _CHURN_COUNT.search(rest)
    first = said or _COUNT.search(rest)
    return int(next(g for g in first.groups() if g)) if first else None


def _count_nearest(segment: str) -> int | None:
    """The churn count nearest the region's name: from its own line when that has one, else
    from as few lines after it as give one (a total further on is another count)."""
    lines = segment.split("\n")
    for n in range(1, len(lines) + 1):
        if (count := _count("\n".join(lines[:n]))) is not None:
            return count
    return None


def _region_figures(answer: str) -> dict[str, tuple[int, tuple[int, bool]]]:
    """(count, (average in cents, given to the cent)) per region: read between the region's
    name and the next region's, from the first mention that gives both."""
    marks = sorted(
        (m.start(), m.end(), region)
        for region in REGIONS
        for m in re.finditer(rf"\b{region}\b", answer, re.IGNORECASE)
    )
    found: dict[str, tuple[int, tuple[int, bool]]] = {}
    for k, (_, end, region) in enumerate(marks):
        stop = marks[k + 1][0] if k + 1 < len(marks) else len(answer)
        segment = answer[end:stop]
        count, amount = _count_nearest(segment), _amount(segment)
        if count is not None and amount is not None and region not in found:
            found[region] = (count, amount)
    return found


def _average_ok(cents: int, to_the_cent: bool, exact: Fraction) -> bool:
    """Right to the precision it is given in: within half a cent, or half a dollar."""
    return abs(cents - exact) <= (Fraction(1, 2) if to_the_cent else 50)


def check(answer: str) -> Verdict:
    """Right when every region's churn count is exact and its average is right to the precision
    it is given in (the question allows whole dollars): a figure given to the cent must be right
    to the cent."""
    figures = _region_figures(answer)
    problems = []
    for line in expected():
        exact = line.average_cents
        want = f"{line.churned} churned, average ${float(exact) / 100:,.2f}"
        if line.region not in figures:
            problems.append(f"{line.region}: no count and average found (expected {want})")
            continue
        count, (cents, to_the_cent) = figures[line.region]
        shown = f"${cents / 100:,.2f}" if to_the_cent else f"${cents // 100:,}"
        if count == line.churned and _average_ok(cents, to_the_cent, exact):
            continue
        strict = not _average_ok(cents, to_the_cent, exact) and _average_ok(cents, False, exact)
        note = " (given to the cent, so it must be right to the cent)" if strict else ""
        problems.append(f"{line.region}: {count} churned, average {shown}{note}; expected {want}")
    return Verdict.wrong("; ".join(problems)) if problems else Verdict.right()


SCENARIO = Scenario(
    name="privacy",
    title="Personal data stays out",
    stresses=(
        "privacy: 300 customer records with names, emails, phones, addresses, birth dates and "
        "national ids, of which the answer needs ten aggregates"
    ),
    question=QUESTION,
    make_tools=make_tools,
    check=check,
    brain=privacy_brain,
    private=private,
)
