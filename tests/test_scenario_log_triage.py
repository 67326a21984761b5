"""Incident triage: the checker wants exactly the failing services and the root cause, and each
shortcut (earliest error, any error, a wider window, grepping messages) gives another answer."""

from __future__ import annotations

import asyncio

import pytest

from openptc.agent import Agent, RunResult
from openptc.models.scripted import ScriptedModel
from openptc.prompts import Mode
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.triage import (
    SCENARIO,
    WINDOW_MINUTES,
    data,
    error_rates,
    expected,
    first_error,
    make_tools,
)
from openptc.tools import Toolbox


async def run(mode: Mode) -> RunResult:
    model = ScriptedModel(SCENARIO.brain, name=f"scripted:{SCENARIO.name}")
    toolbox = Toolbox(SCENARIO.make_tools(0.0))
    async with LocalSandbox(pool_size=0) as sandbox:
        agent = Agent(model, toolbox, sandbox, mode=mode, max_turns=SCENARIO.direct_max_turns)
        return await agent.run(SCENARIO.question)


def _answer(failing: set[str], root: str) -> str:
    return f"Failing: {', '.join(sorted(failing))}. Root cause: {root}."


def _errors_in(service: str, minutes: int) -> int:
    return sum(line.level == "ERROR" for line in data().since(service, minutes))


def test_the_right_answer_passes_in_any_phrasing() -> None:
    failing, root = expected()
    assert SCENARIO.check(_answer(failing, root)).correct
    others = " and ".join(sorted(failing - {root}))
    second = f"`{root}` is the root cause (its disk filled up); {others} fail because of it."
    assert SCENARIO.check(second).correct


@pytest.mark.parametrize(
    "root_sentence",
    [
        "The root cause appears to be {root}.",
        "The root cause of the incident is {root}.",
        "Root cause: the {root} database ran out of disk space.",
        "{root} is most likely the root cause.",
        "Root-cause analysis: {root} failed first, then the services that write to it.",
        "**Root cause:**\n- {root}: No space left on device.",
    ],
)
def test_the_root_cause_is_read_in_any_phrasing(root_sentence: str) -> None:
    failing, root = expected()
    text = f"Failing: {', '.join(sorted(failing))}.\n" + root_sentence.format(root=root)
    assert SCENARIO.check(text).correct, SCENARIO.check(text).reason


def test_services_named_only_to_be_ruled_out_are_not_claimed() -> None:
    failing, root = expected()
    sporadic = next(n for n, r in error_rates().items() if 0 < r <= 0.05)
    healthy_dependency = sorted(d for s in data().services if s.name == root for d in s.depends_on)
    old = sorted({n for n, r in error_rates(minutes=60).items() if r > 0.05} - failing)
    text = (
        f"{_answer(failing, root)} {sporadic} had 2 sporadic errors, below the threshold. "
        f"Its dependency {healthy_dependency[0]} is healthy. {old[0]} had a burst of errors "
        "before the window, but none in the last 30 minutes."
    )
    assert SCENARIO.check(text).correct, SCENARIO.check(text).reason
    listed = (
        "Failing services:\n"
        + "".join(f"- {n}\n" for n in sorted(failing))
        + f"\nNot failing:\n- {sporadic} (2 errors)\n\nThe root cause is {root}: none of the "
        "services it depends on is failing."
    )
    assert SCENARIO.check(listed).correct, SCENARIO.check(listed).reason


def test_a_ruled_out_failing_service_is_reported_as_missing() -> None:
    failing, root = expected()
    dropped = sorted(failing - {root})[0]
    text = f"{_answer(failing - {dropped}, root)} {dropped} is not failing."
    verdict = SCENARIO.check(text)
    assert not verdict.correct
    assert f"missing ['{dropped}']" in verdict.reason and "only as not failing" in verdict.reason


def test_a_missing_failing_service_fails() -> None:
    failing, root = expected()
    dropped = sorted(failing - {root})[0]
    verdict = SCENARIO.check(_answer(failing - {dropped}, root))
    assert not verdict.correct
    assert f"missing ['{dropped}']" in verdict.reason


def test_failing_services_are_clearly_apart_from_the_rest() -> None:
    """The threshold is 5%: no service sits close to it, on either side."""
    failing, _ = expected()
    rates = error_rates()
    assert min(rates[n] for n in failing) > 0.10
    assert max(r for n, r in rates.items() if n not in failing) < 0.04


def test_sporadic_errors_below_the_threshold_are_not_failing() -> None:
    failing, root = expected()
    sporadic = [n for n, r in error_rates().items() if 0 < r <= 0.05]
    assert sporadic, "the data should have a service with a few errors below the threshold"
    verdict = SCENARIO.check(_answer(failing | {sporadic[0]}, root))
    assert f"wrongly named ['{sporadic[0]}']" in verdict.reason


def test_errors_before_the_window_do_not_count() -> None:
    """Looking at the last hour instead of the last 30 minutes adds a recovered service."""
    failing, root = expected()
    hour = {n for n, r in error_rates(minutes=60).items() if r > 0.05}
    old = sorted(hour - failing)
    assert old and all(_errors_in(n, WINDOW_MINUTES) == 0 for n in old)
    assert all(error_rates(minutes=60)[n] > 0.08 for n in old)
    assert not SCENARIO.check(_answer(hour, root)).correct


def test_a_timeout_logged_at_info_is_not_a_failure() -> None:
    failing, root = expected()
    lookalikes = sorted(
        s.name
        for s in data().services
        if s.name not in failing
        and any("timed out" in x.message and x.level == "INFO" for x in data().since(s.name, 30))
    )
    assert lookalikes
    verdict = SCENARIO.check(_answer(failing | set(lookalikes), root))
    assert not verdict.correct and lookalikes[0] in verdict.reason


def test_the_earliest_error_is_not_the_root_cause() -> None:
    failing, root = expected()
    earliest = min(failing, key=first_error)
    assert earliest != root, "the data should have a dependent service that erred first"
    verdict = SCENARIO.check(_answer(failing, earliest))
    assert verdict.reason == f"root cause given as {earliest}, not {root}"


def test_an_answer_without_a_root_cause_fails() -> None:
    failing, _ = expected()
    verdict = SCENARIO.check(f"These are failing: {', '.join(sorted(failing))}.")
    assert "no root cause named" in verdict.reason


def test_every_failing_service_depends_on_the_root_cause() -> None:
    """One incident: the root cause reaches each failing service through the service map."""
    failing, root = expected()
    deps = {s.name: set(s.depends_on) for s in data().services}

    def reaches(name: str) -> bool:
        return name == root or any(reaches(d) for d in deps[name])

    assert all(reaches(name) for name in failing)
    assert deps[root], "the root cause has dependencies, all of them healthy"


async def test_logs_are_asked_for_a_window_of_up_to_an_hour() -> None:
    get_logs = make_tools()[1]
    with pytest.raises(ValueError, match="since_minutes"):
        await get_logs(service="checkout", since_minutes=120)
    with pytest.raises(ValueError, match="unknown service"):
        await get_logs(service="checkout-v2", since_minutes=30)


async def test_both_modes_find_the_root_cause_and_ptc_reads_a_fraction() -> None:
    ptc, direct = await asyncio.gather(run("ptc"), run("direct"))
    services = len(data().services)
    for result in (ptc, direct):
        assert SCENARIO.check(result.answer).correct, result.answer
        assert result.usage.tool_calls == 1 + services
    assert ptc.usage.model_calls == 2 and len(ptc.programs) == 1
    # the service map, every service's logs in one parallel turn, the answer
    assert direct.usage.model_calls == 3 and not direct.programs
    assert direct.usage.input_tokens > 40 * ptc.usage.input_tokens
    # ~112k tokens (cl100k) in all, the last call nearly all of it: within a 200k-token window
    # with room for tokenizers that count more
    assert direct.usage.input_tokens < 130_000
