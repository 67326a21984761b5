"""Currency conversion: hundreds of amounts converted and added, exact to the cent.

"What did the European subsidiary spend in October 2025, in USD?" needs one invoice list (~300
invoices in ten currencies) and the exchange rates of every invoice date (~20 business days),
then ~300 multiplications, roundings and one sum. Code gets it right to the cent; a model adding
hundreds of numbers read from its context does not. The data is synthetic and deterministic.
"""

import asyncio
import datetime as dt
import functools
import math
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openptc.scenarios import answers
from openptc.scenarios.base import Scenario, Verdict
from openptc.scenarios.numeric_brains import numeric_precision_brain

SEED = 20251031
MONTH = "2025-10"
MONTHS = ("2025-09", "2025-10", "2025-11")
QUESTION = (
    "What did the European subsidiary spend in October 2025, in USD, converting each invoice "
    "at the rate of its invoice date?"
)

Currency = Literal["EUR", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "JPY"]
# USD per unit at the start of September 2025, and how often invoices come in each currency.
_INVOICED: dict[Currency, tuple[float, int]] = {
    "EUR": (1.1712, 40), "GBP": (1.3489, 14), "CHF": (1.2543, 8), "SEK": (0.1064, 8),
    "NOK": (0.0993, 5), "DKK": (0.1569, 5), "PLN": (0.2748, 8), "CZK": (0.0478, 4),
    "HUF": (0.002981, 3), "JPY": (0.006652, 5),
}  # fmt: skip
_ALSO_QUOTED = {"CAD": 0.7231, "AUD": 0.6547, "CNY": 0.1402, "INR": 0.01131, "RON": 0.2311}
_WHOLE_UNITS = {"HUF", "JPY"}  # invoiced without minor units
_VENDORS = (
    "Nordlicht Logistik GmbH", "Brightwater Consulting Ltd", "Alpina Treuhand AG",
    "Skandia Kontorsmaterial AB", "Fjordnett AS", "Københavns Rengøring ApS",
    "Wisła Software Sp. z o.o.", "Vltava Print s.r.o.", "Duna Catering Kft.",
    "Sakura Components KK", "Atelier Lumière SARL", "Costa Verde Eventos SL",
    "Van Dijk Facilitair BV", "Thames Legal LLP", "Helvetia Cloud AG", "Baltic Freight OÜ",
)  # fmt: skip
_CATEGORIES = (
    "logistics", "consulting", "software", "facilities", "travel", "legal", "marketing",
    "office supplies", "catering", "hardware",
)  # fmt: skip


class Invoice(BaseModel):
    """One supplier invoice of the European subsidiary."""

    model_config = ConfigDict(frozen=True)
    invoice_id: str = Field(description="Invoice id, e.g. 'INV-2510-0042'.")
    date: dt.date = Field(description="Invoice date (a business day); its rates convert it.")
    vendor: str
    category: str
    currency: Currency
    amount: float = Field(description="Amount in `currency`, to the cent (HUF, JPY: whole).")


class ExchangeRates(BaseModel):
    """The reference rates published for one business day."""

    model_config = ConfigDict(frozen=True)
    date: dt.date
    base: Literal["USD"] = "USD"
    rates: dict[str, float] = Field(
        description="USD per one unit of each currency, 6 decimals: usd = amount * rate."
    )


def business_days(month: str) -> list[dt.date]:
    """The weekdays of a month given as 'YYYY-MM' (the scenario has no holidays)."""
    year, number = (int(part) for part in month.split("-"))
    day, days = dt.date(year, number, 1), []
    while day.month == number:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


@dataclass(frozen=True)
class NumericData:
    """Invoices by month and rates by date, for one seed."""

    invoices: dict[str, tuple[Invoice, ...]]
    rates: dict[dt.date, ExchangeRates]

    def rate(self, day: dt.date, currency: str) -> float:
        return self.rates[day].rates[currency]


def _rates(rng: random.Random) -> dict[dt.date, ExchangeRates]:
    """A small daily random walk per currency, rounded to 6 decimals."""
    level = {c: r for c, (r, _) in _INVOICED.items()} | _ALSO_QUOTED
    table = {}
    for day in (d for m in MONTHS for d in business_days(m)):
        level = {c: r * (1 + rng.gauss(0, 0.004)) for c, r in level.items()}
        table[day] = ExchangeRates(date=day, rates={c: round(r, 6) for c, r in level.items()})
    return table


def _invoices(rng: random.Random, month: str) -> tuple[Invoice, ...]:
    """~300 invoices worth $40 to $25,000 each (log-uniform), sorted by date."""
    currencies = list(_INVOICED)
    weights = [_INVOICED[c][1] for c in currencies]
    rows = []
    for _ in range(rng.randint(290, 320)):
        currency = rng.choices(currencies, weights)[0]
        usd = math.exp(rng.uniform(math.log(40), math.log(25_000)))
        amount = usd / _INVOICED[currency][0]
        digits = 0 if currency in _WHOLE_UNITS else 2
        rows.append((rng.choice(business_days(month)), currency, round(amount, digits)))
    rows.sort(key=lambda row: row[0])
    prefix = month.replace("-", "")[2:]
    return tuple(
        Invoice(
            invoice_id=f"INV-{prefix}-{i:04d}",
            date=day,
            vendor=rng.choice(_VENDORS),
            category=rng.choice(_CATEGORIES),
            currency=currency,
            amount=amount,
        )
        for i, (day, currency, amount) in enumerate(rows, start=1)
    )


@functools.cache
def data(seed: int = SEED) -> NumericData:
    """The scenario's tables (built once per process)."""
    rng = random.Random(seed)
    return NumericData({m: _invoices(rng, m) for m in MONTHS}, _rates(rng))


def make_tools(latency: float = 0.0) -> list[Callable[..., Awaitable[Any]]]:
    """The scenario's two async tools; `latency` simulates a remote API per call."""
    d = data()

    async def list_invoices(month: str) -> list[Invoice]:
        """List the European subsidiary's supplier invoices of one month, in their currencies.

        Spend in USD converts each invoice on its own, at the rate of its invoice date
        (get_exchange_rates): usd = round(amount * rate, 2) with Python's round, then adds the
        converted amounts; the total is exact to the cent.

        Args:
            month: The month as 'YYYY-MM', e.g. '2025-10' (2025-09 to 2025-11 are on file).
        """
        await asyncio.sleep(latency)
        if month not in d.invoices:
            raise ValueError(f"no invoices for month {month!r}; on file: {', '.join(MONTHS)}")
        return list(d.invoices[month])

    async def get_exchange_rates(date: str) -> ExchangeRates:
        """Get the reference rates of one business day: USD per one unit of each currency.

        Convert an invoice at the rates of its own invoice date: usd = round(amount * rate, 2)
        with Python's round; the USD total of several invoices is the sum of those converted
        amounts, exact to the cent. Rates are published on business days only.

        Args:
            date: The day as 'YYYY-MM-DD', e.g. '2025-10-01'.
        """
        await asyncio.sleep(latency)
        day = dt.date.fromisoformat(date)
        if day not in d.rates:
            raise ValueError(f"no rates published on {date} (weekends and unknown dates)")
        return d.rates[day]

    return [list_invoices, get_exchange_rates]


def to_usd(invoice: Invoice, rate: float) -> float:
    """The conversion rule of the tools' docstrings, for one invoice."""
    return round(invoice.amount * rate, 2)


def expected_cents(d: NumericData | None = None, month: str = MONTH) -> int:
    """The right total in cents, straight from the tables (no float sum drift)."""
    d = d if d is not None else data()
    return sum(round(to_usd(i, d.rate(i.date, i.currency)) * 100) for i in d.invoices[month])


_MONEY = (
    r"(?:US\$|\$|\bUSD)\s?\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?\s?USD\b"
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+"
)
"""An amount as written: with "$" or "USD", thousands separators or decimals ("305" is not)."""
_AMOUNT = re.compile(rf"(?<![\w.,/-])(?:{_MONEY})(?!\d|,\d|\.\d|[-/]\d)", re.IGNORECASE)
_IN_USD = re.compile(r"\$|\bUSD\b|\bUS dollars?\b|\bdollars?\b", re.IGNORECASE)
_TOTAL = answers.cues(
    r"\btotal\w*|\bspen[dt]\b|\bcame to\b|\bcomes to\b|\bamount(?:s|ed)? to\b|\bsum\b|\bin all\b"
)
_HYPOTHETICAL = answers.cues(r"\bwould\b|\bcould\b|\bif\b|\binstead\b|\bunrounded\b")
_RANGE = answers.cues(
    rf"\bbetween\s+(?:{_MONEY})\s+and\b|(?:{_MONEY})\s*(?:-|–|—|to|or)\s*(?:{_MONEY})"
)


def _amounts(text: str) -> list[float]:
    """The amounts of a text, years left out ("October 2025 USD 1,170,374.35")."""
    found = []
    for m in _AMOUNT.finditer(text):
        number = re.sub(r"[^\d.]", "", m.group())
        if not (re.fullmatch(r"(?:19|20)\d\d", number) and "$" not in m.group()):
            found.append(float(number))
    return found


def usd_totals(answer: str) -> tuple[list[float], str]:
    """The amounts that may be the answer's total, and the statement they are in: those of its
    first statement in USD that speaks of a total ("Total:", "spent"), else of any statement in
    USD; amounts in a hypothetical clause ("at month-end rates it would be $X") left out."""
    in_usd = [s for s in answers.statements(answer) if _IN_USD.search(s)]
    for statement in sorted(in_usd, key=lambda s: _TOTAL.search(s) is None):
        real = [statement[a:b] for a, b in answers.clauses(statement)]
        amounts = [x for c in real if not _HYPOTHETICAL.search(c) for x in _amounts(c)]
        if amounts:
            return amounts, statement
    return [], ""


def check(answer: str) -> Verdict:
    """Right when the total (the largest amount of the statement that gives it; subtotals are
    smaller) is exact to the cent, and given as one amount, not a range."""
    amounts, statement = usd_totals(answer)
    if not amounts:
        return Verdict.wrong("no USD amount found in the answer")
    if _RANGE.search(statement):
        return Verdict.wrong(f"gives a range or alternatives, not one total: {statement.strip()}")
    expected = expected_cents()
    got = round(max(amounts) * 100)
    if got == expected:
        return Verdict.right()
    off = (got - expected) / 100
    return Verdict.wrong(
        f"total ${got / 100:,.2f} is off by {off:+,.2f} USD (expected ${expected / 100:,.2f})"
    )


SCENARIO = Scenario(
    name="numeric-precision",
    title="Currency conversion",
    stresses="arithmetic: ~300 conversions at ~20 dates' rates, summed exactly to the cent",
    question=QUESTION,
    make_tools=make_tools,
    check=check,
    brain=numeric_precision_brain,
    direct_errs=(
        "it does the arithmetic in its head, as models do with hundreds of numbers read from "
        "context: each rate cut to 4 significant digits and each conversion rounded to whole "
        "dollars before adding, so the total is off by tens to hundreds of dollars"
    ),
)
