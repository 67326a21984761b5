"""Scripted brains for the currency conversion: a program in ptc mode, head arithmetic in direct.

Both read only the tool results. The direct brain fetches what a careful model would (the
invoices, then every invoice date's rates in one parallel turn) but then adds ~300 converted
amounts as a model does without a calculator, with rates cut to 4 significant digits and each
conversion rounded to whole dollars: the answer it gives is close, and wrong to the cent.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal
from typing import Any

from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios.turns import Results, call, calls, offers_code_tool, program_turn

TOOL_NAMES = ("list_invoices", "get_exchange_rates")
MONTH = "2025-10"

PROGRAM = """\
import asyncio
import json
from collections import defaultdict

invoices = json.loads(await list_invoices({"month": "2025-10"}))
dates = sorted({inv["date"] for inv in invoices})
tables = await asyncio.gather(*(get_exchange_rates({"date": d}) for d in dates))
rates = {t["date"]: t["rates"] for t in map(json.loads, tables)}

by_currency = defaultdict(float)
counts = defaultdict(int)
for inv in invoices:
    by_currency[inv["currency"]] += round(inv["amount"] * rates[inv["date"]][inv["currency"]], 2)
    counts[inv["currency"]] += 1

total = sum(by_currency.values())
print(f"{len(invoices)} invoices, {len(dates)} rate dates")
for cur in sorted(by_currency, key=by_currency.get, reverse=True):
    print(f"  {cur}: ${by_currency[cur]:,.2f} ({counts[cur]} invoices)")
print(f"Total: ${total:,.2f}")
"""
"""What a strong model writes: dict arguments, ``json.loads`` out of habit, a gather over the
distinct dates, per-invoice rounding as the docstrings require, a few lines of output."""

_TOTAL = re.compile(r"^Total: (\$[\d,]+\.\d\d)$", re.MULTILINE)


def _ptc(request: ModelRequest) -> Turn:
    """Turn 1: the program. Turn 2: the total it printed, with its breakdown."""
    return program_turn(request, PROGRAM, "the conversion", _answer)


def _answer(printed: str) -> str:
    total = _TOTAL.search(printed)
    if total is None:
        return f"The program did not print a total; it printed:\n{printed}"
    return (
        f"The European subsidiary spent {total.group(1)} in October 2025, each invoice "
        f"converted to USD at the rate of its invoice date.\n\nBreakdown:\n{printed}"
    )


def head_rate(rate: float) -> Decimal:
    """A rate as a model carries it in its head: cut to 4 significant digits (1.171234 -> 1.171)."""
    exact = Decimal(repr(rate))
    return exact.quantize(Decimal(1).scaleb(exact.adjusted() - 3), rounding=ROUND_DOWN)


def head_total(invoices: list[dict[str, Any]], rates: dict[str, dict[str, Any]]) -> int:
    """Whole dollars per invoice at 4-digit rates, then summed: a model's mental arithmetic."""
    return sum(
        round(Decimal(repr(i["amount"])) * head_rate(rates[i["date"]]["rates"][i["currency"]]))
        for i in invoices
    )


def _direct(request: ModelRequest) -> Turn:
    """Invoices (1 turn), every distinct date's rates (1 parallel turn), then the answer."""
    results = Results(request)
    if (failed := results.failed()) is not None:
        return f"I could not convert the invoices; a tool call failed:\n{failed}"
    listed = results.of("list_invoices", "month")
    if MONTH not in listed:
        return call(request, "list_invoices", month=MONTH)
    invoices: list[dict[str, Any]] = listed[MONTH]
    rates = results.of("get_exchange_rates", "date")
    missing = sorted({i["date"] for i in invoices} - set(rates))
    if missing:
        return calls(request, [("get_exchange_rates", {"date": day}) for day in missing])
    total = head_total(invoices, rates)
    return (
        f"The European subsidiary spent ${total:,} in October 2025 across {len(invoices)} "
        "invoices, each converted to USD at the rate of its invoice date."
    )


def _numeric_precision(request: ModelRequest) -> Turn:
    """A program when offered the code tool; tool calls turn by turn otherwise."""
    return _ptc(request) if offers_code_tool(request) else _direct(request)


numeric_precision_brain = Brain(_numeric_precision, "the currency conversion", TOOL_NAMES)
"""The brain of ``scripted:numeric-precision``."""
