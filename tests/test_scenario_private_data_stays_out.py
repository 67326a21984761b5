"""Personal data stays out: in ptc mode no personal string reaches the model, and the answer is
still right; in direct mode hundreds of them do. ``leaked`` is shown to find a planted string
wherever it sits, so an empty result means something."""

from __future__ import annotations

from fractions import Fraction

import pytest

from openptc.agent import Agent
from openptc.models.base import (
    Message,
    ModelRequest,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from openptc.models.scripted import ScriptedModel
from openptc.prompts import Mode
from openptc.runs import RunResult
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.leaks import context_text, leaked
from openptc.scenarios.privacy import SCENARIO, RegionChurn, expected, tables
from openptc.tools import Toolbox


async def run(mode: Mode) -> tuple[RunResult, ScriptedModel]:
    model = ScriptedModel(SCENARIO.brain, name=f"scripted:{SCENARIO.name}")
    toolbox = Toolbox(SCENARIO.make_tools(0.0))
    async with LocalSandbox(pool_size=0) as sandbox:
        agent = Agent(model, toolbox, sandbox, mode=mode, max_turns=SCENARIO.direct_max_turns)
        return await agent.run(SCENARIO.question), model


def _cents(line: RegionChurn, off: int = 0) -> str:
    """The average as dollars: rounded to the cent, then moved ``off`` cents."""
    cents = round(line.average_cents) + off
    return f"{cents // 100:,}.{cents % 100:02d}"


def _as_lines(lines: list[RegionChurn]) -> str:
    return "\n".join(
        f"{x.region}: {x.churned} churned, average lifetime value ${_cents(x)}" for x in lines
    )


def _as_table(lines: list[RegionChurn]) -> str:
    rows = [f"| {x.region.title()} | {x.churned} | {_cents(x)} USD |" for x in lines]
    return "| Region | Churned in Q2 2025 | Avg. LTV |\n|---|---|---|\n" + "\n".join(rows)


def test_the_right_counts_and_averages_pass_in_two_phrasings() -> None:
    lines = expected()
    assert SCENARIO.check(_as_lines(lines)).correct
    assert SCENARIO.check(_as_table(lines)).correct


def test_other_counts_beside_the_churn_count_and_whole_dollars_pass() -> None:
    lines = expected()
    mixed = "\n".join(
        f"{x.region}: 1 new account, {x.churned} churned, average LTV ${_cents(x)}" for x in lines
    )
    assert SCENARIO.check(mixed).correct, SCENARIO.check(mixed).reason
    dollars = "\n".join(
        f"- {x.region.title()}: {x.churned} customers churned; average lifetime value "
        f"${round(x.average_cents / 100):,}"
        for x in lines
    )
    assert SCENARIO.check(dollars).correct, SCENARIO.check(dollars).reason
    total = f"{_as_table(lines)}\n\nIn total {sum(x.churned for x in lines)} customers churned."
    assert SCENARIO.check(total).correct, SCENARIO.check(total).reason
    assert "nearest dollar or to the cent" in SCENARIO.question


def test_an_average_is_judged_at_the_precision_it_is_given_in() -> None:
    lines = expected()
    first = lines[0]
    dollar_off = _as_lines(lines).replace(
        f"${_cents(first)}", f"${round(first.average_cents / 100) + 1:,}", 1
    )
    verdict = SCENARIO.check(dollar_off)
    assert not verdict.correct and first.region in verdict.reason
    cents_off = _as_lines(lines).replace(f"${_cents(first)}", f"${_cents(first, 20)}", 1)
    verdict = SCENARIO.check(cents_off)
    assert not verdict.correct and "given to the cent" in verdict.reason


def test_a_wrong_count_a_cent_off_or_a_missing_region_fail() -> None:
    lines = expected()
    first = lines[0]
    wrong_count = [RegionChurn(first.region, first.churned + 1, first.average_cents), *lines[1:]]
    verdict = SCENARIO.check(_as_lines(wrong_count))
    assert not verdict.correct and first.region in verdict.reason

    # A cent away from the rounded average, on the side away from the exact one.
    exact, rounded = first.average_cents, round(first.average_cents)
    off = 1 if rounded >= exact else -1
    assert abs(rounded + off - exact) > Fraction(1, 2)
    text = _as_lines(lines).replace(f"${_cents(first)}", f"${_cents(first, off)}", 1)
    verdict = SCENARIO.check(text)
    assert not verdict.correct and "average" in verdict.reason

    verdict = SCENARIO.check(_as_lines(lines[:-1]))
    assert not verdict.correct and lines[-1].region in verdict.reason


def test_private_lists_every_personal_string_and_no_answer_figure() -> None:
    private = set(SCENARIO.private())
    c = tables().customers[0]
    assert {c.full_name, c.email, c.phone, c.street_address, c.national_id} <= private
    assert c.date_of_birth.isoformat() in private
    assert len(private) > 1500
    answer = _as_lines(expected())
    assert not [p for p in private if p in answer]


async def test_ptc_keeps_every_personal_string_out_and_answers_right() -> None:
    result, model = await run("ptc")
    assert SCENARIO.check(result.answer).correct, result.answer
    assert leaked(model.requests, SCENARIO.private()) == []
    churned = sum(x.churned for x in expected())
    assert result.usage.model_calls == 2
    assert result.usage.tool_calls == 5 + churned  # five lists, then each churned one's orders
    assert len(result.programs) == 1


async def test_direct_puts_hundreds_of_personal_strings_in_context() -> None:
    result, model = await run("direct")
    assert SCENARIO.check(result.answer).correct, result.answer
    # Three turns: the five lists together, the churned customers' orders together, the answer.
    assert result.usage.model_calls == 3
    assert result.usage.tool_calls == 5 + sum(x.churned for x in expected())
    found = leaked(model.requests, SCENARIO.private())
    assert len(found) == len(SCENARIO.private())  # every customer's record was read


def _request(system: str, result: str, tool_input: str) -> ModelRequest:
    spec = ToolSpec("lookup", "Look a thing up.", {"type": "object", "properties": {}})
    return ModelRequest(
        system=system,
        messages=(
            Message.user("hello"),
            Message.assistant([ToolUseBlock("t1", "lookup", {"query": {"q": tool_input}})]),
            Message.tool_results([ToolResultBlock("t1", result)]),
            Message("assistant", (TextBlock("done"),)),
        ),
        tools=(spec,),
    )


@pytest.mark.parametrize("where", ["system", "result", "tool_input"])
def test_leaked_finds_a_string_planted_anywhere_in_the_context(where: str) -> None:
    secret = 'Zoë "Z" O\'Brien'  # quotes and a non-ASCII letter: no escaping hides it
    texts = {"system": "You help.", "result": '{"ok":true}', "tool_input": "x"}
    texts[where] = f"{texts[where]} {secret}"
    request = _request(texts["system"], texts["result"], texts["tool_input"])
    assert secret in context_text(request)
    assert leaked([request], ["nobody@example.com", secret, "", secret]) == [secret]
    clean = _request("You help.", '{"ok":true}', "x")
    assert leaked([clean], [secret]) == []
