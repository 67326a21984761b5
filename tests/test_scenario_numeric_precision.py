"""Currency conversion: the checker wants the total to the cent; code gets it, head arithmetic
does not."""

from __future__ import annotations

from pydantic_core import to_jsonable_python

from openptc.agent import Agent, RunResult
from openptc.models.scripted import ScriptedModel
from openptc.prompts import Mode
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.numeric import MONTH, SCENARIO, data, expected_cents, to_usd
from openptc.scenarios.numeric_brains import head_total
from openptc.tools import Toolbox


async def run(mode: Mode) -> RunResult:
    model = ScriptedModel(SCENARIO.brain, name=f"scripted:{SCENARIO.name}")
    toolbox = Toolbox(SCENARIO.make_tools(0.0))
    async with LocalSandbox(pool_size=0) as sandbox:
        agent = Agent(model, toolbox, sandbox, mode=mode, max_turns=SCENARIO.direct_max_turns)
        return await agent.run(SCENARIO.question)


def _usd(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def test_the_exact_total_passes_in_any_phrasing() -> None:
    cents = expected_cents()
    assert SCENARIO.check(f"They spent {_usd(cents)} in October 2025.").correct
    plain = f"USD {cents // 100}.{cents % 100:02d}"
    assert SCENARIO.check(f"Total spend: {plain} (EUR subtotal $12.00).").correct


def test_the_total_is_told_apart_from_years_labels_and_other_amounts() -> None:
    cents = expected_cents()
    plain = f"{cents // 100:,}.{cents % 100:02d}"
    for text in (
        f"October 2025 USD {plain}",
        f"Total spend (USD): {plain}",
        f"They spent {_usd(cents)}. At month-end rates it would be $1,171,002.10.",
        f"The total is {_usd(cents)} (at month-end rates it would be {_usd(cents + 62_775)}).",
        f"In total, 305 invoices in 10 currencies were converted to USD: {_usd(cents)}.",
    ):
        verdict = SCENARIO.check(text)
        assert verdict.correct, (text, verdict.reason)


def test_a_range_or_alternatives_fail_even_with_the_total_in_them() -> None:
    cents = expected_cents()
    for text in (
        f"The total is between $1,169,000.00 and {_usd(cents)}.",
        f"Total: {_usd(cents - 137_435)} - {_usd(cents)}",
        f"They spent {_usd(cents)} or {_usd(cents + 565)}, depending on rounding.",
    ):
        verdict = SCENARIO.check(text)
        assert not verdict.correct and "range" in verdict.reason, text


def test_a_total_a_cent_or_a_dollar_off_fails_and_says_by_how_much() -> None:
    cents = expected_cents()
    for delta, shown in ((1, "+0.01"), (-1, "-0.01"), (100, "+1.00")):
        verdict = SCENARIO.check(f"The total is {_usd(cents + delta)}.")
        assert not verdict.correct
        assert f"off by {shown} USD" in verdict.reason


def test_a_missing_or_an_extra_invoice_fails() -> None:
    d = data()
    october = d.invoices[MONTH]
    last = october[-1]
    without_last = expected_cents() - round(to_usd(last, d.rate(last.date, last.currency)) * 100)
    september = d.invoices["2025-09"][-1]
    extra = round(to_usd(september, d.rate(september.date, september.currency)) * 100)
    for cents in (without_last, expected_cents() + extra):
        assert not SCENARIO.check(f"Total: {_usd(cents)}").correct


def test_shortcuts_with_the_rates_fail() -> None:
    """Rounding only the sum, or converting everything at the month's last rate, is wrong."""
    d = data()
    october = d.invoices[MONTH]
    unrounded = round(sum(i.amount * d.rate(i.date, i.currency) for i in october) * 100)
    month_end = max(d.rates[i.date].date for i in october)
    at_month_end = sum(round(to_usd(i, d.rate(month_end, i.currency)) * 100) for i in october)
    for cents in (unrounded, at_month_end):
        assert cents != expected_cents()
        assert not SCENARIO.check(f"{_usd(cents)}").correct


def test_an_answer_without_a_usd_amount_fails() -> None:
    assert "no USD amount" in SCENARIO.check("About 1.2 million, in euros mostly.").reason


def test_head_arithmetic_misses_by_more_than_a_dollar() -> None:
    d = data()
    invoices = to_jsonable_python(list(d.invoices[MONTH]))
    rates = {day.isoformat(): to_jsonable_python(r) for day, r in d.rates.items()}
    off = head_total(invoices, rates) * 100 - expected_cents()
    assert abs(off) > 100


async def test_the_program_gets_it_to_the_cent_in_two_model_calls() -> None:
    result = await run("ptc")
    assert SCENARIO.check(result.answer).correct, result.answer
    assert _usd(expected_cents()) in result.answer
    dates = {i.date for i in data().invoices[MONTH]}
    assert result.usage.model_calls == 2
    assert result.usage.tool_calls == 1 + len(dates)
    assert len(result.programs) == 1


async def test_direct_mode_fetches_everything_and_errs_by_a_stated_amount() -> None:
    result = await run("direct")
    verdict = SCENARIO.check(result.answer)
    assert not verdict.correct, result.answer
    assert "off by" in verdict.reason and "expected" in verdict.reason
    dates = {i.date for i in data().invoices[MONTH]}
    # list the invoices, fetch every date's rates in one parallel turn, answer
    assert result.usage.model_calls == 3
    assert result.usage.tool_calls == 1 + len(dates)
    assert SCENARIO.direct_errs
    ptc = await run("ptc")
    assert result.usage.input_tokens > 5 * ptc.usage.input_tokens
