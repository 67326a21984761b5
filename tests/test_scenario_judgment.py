"""Judgment calls: the scenario where PTC does not pay. Both modes pick the right vendor in two
model calls, and ptc spends at least as much input and more output to get there."""

from __future__ import annotations

from openptc.agent import Agent
from openptc.models.base import ToolResultBlock
from openptc.models.scripted import ScriptedModel
from openptc.prompts import Mode
from openptc.runs import RunResult
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.judgment import REQUIREMENTS, SCENARIO, VENDORS, expected, offers
from openptc.scenarios.judgment_brains import judge
from openptc.tools import Toolbox


async def run(mode: Mode) -> tuple[RunResult, ScriptedModel]:
    model = ScriptedModel(SCENARIO.brain, name=f"scripted:{SCENARIO.name}")
    toolbox = Toolbox(SCENARIO.make_tools(0.0))
    async with LocalSandbox(pool_size=0) as sandbox:
        agent = Agent(model, toolbox, sandbox, mode=mode, max_turns=SCENARIO.direct_max_turns)
        return await agent.run(SCENARIO.question), model


async def both() -> dict[str, tuple[RunResult, ScriptedModel]]:
    return {mode: await run(mode) for mode in ("ptc", "direct")}


def _cheapest_missing() -> str:
    cheapest = min(offers().values(), key=lambda o: o.price)
    assert cheapest.misses is not None, "the data must make the cheapest proposal a trap"
    return VENDORS[cheapest.vendor]


def test_the_data_sets_a_trap_and_has_one_right_answer() -> None:
    complete = [o for o in offers().values() if o.misses is None]
    assert complete == [expected()]
    assert all(300 <= len(o.text.split()) <= 500 for o in offers().values())
    assert 180 <= len(REQUIREMENTS.split()) <= 240


def test_the_right_vendor_passes_in_two_phrasings() -> None:
    right = VENDORS[expected().vendor]
    assert SCENARIO.check(f"I recommend {right}. It meets every must-have.").correct
    cheap = _cheapest_missing()
    text = f"{cheap} is cheaper, but it misses a must-have, so {right} is the best choice."
    assert SCENARIO.check(text).correct


def test_the_pick_is_read_where_it_is_made() -> None:
    """Other vendors may be named, compared or ruled out around the pick."""
    right = VENDORS[expected().vendor]
    cheap = _cheapest_missing()
    other = next(
        VENDORS[o.vendor] for o in offers().values() if VENDORS[o.vendor] not in (right, cheap)
    )
    for text in (
        f"{cheap} is cheaper, but {right} is the one I'd pick.",
        f"The best choice is {right}; {cheap} and {other} each miss a must-have.",
        f"I would not pick {cheap}… I recommend {right}.",
        f"{right}. It meets every must-have; {cheap} does not.",
        f"{right}, not {cheap}, is the best choice.",
        f"I'd go with {right} over {cheap}, which lacks a must-have.",
    ):
        verdict = SCENARIO.check(text)
        assert verdict.correct, (text, verdict.reason)


def test_the_cheapest_vendor_fails_with_its_missing_must_have() -> None:
    cheap = _cheapest_missing()
    verdict = SCENARIO.check(f"Go with {cheap}: it is the cheapest and has every extra.")
    assert not verdict.correct
    assert "cheapest" in verdict.reason and "must-have" in verdict.reason


def test_naming_two_vendors_fails() -> None:
    right, cheap = VENDORS[expected().vendor], _cheapest_missing()
    for text in (f"I recommend {right} or {cheap}.", f"Either {cheap} or {right} would do."):
        verdict = SCENARIO.check(text)
        assert not verdict.correct and "more than one" in verdict.reason, text


def test_the_reader_picks_the_complete_proposal_from_the_prose_alone() -> None:
    texts = {VENDORS[v]: o.text for v, o in offers().items()}
    right = VENDORS[expected().vendor]
    assert judge(REQUIREMENTS, texts, "ptc").startswith(f"Pick {right}:")
    # Hedge one of the right vendor's must-haves: the reader must notice, and pick no one.
    texts[right] = texts[right].replace("SAML", "SAML (on our roadmap)")
    assert judge(REQUIREMENTS, texts, "direct").startswith("None of the proposals")


async def test_both_modes_pick_the_right_vendor() -> None:
    runs = await both()
    for mode, (result, _) in runs.items():
        verdict = SCENARIO.check(result.answer)
        assert verdict.correct, (mode, verdict.reason, result.answer)


async def test_ptc_prints_every_text_back_and_calls_the_model_as_often() -> None:
    runs = await both()
    ptc, model = runs["ptc"]
    direct, direct_model = runs["direct"]
    # Direct: all four reads in one parallel turn, then the pick.
    assert len(direct_model.requests[1].messages[1].tool_uses) == 4
    assert ptc.usage.model_calls == direct.usage.model_calls == 2
    assert ptc.usage.tool_calls == direct.usage.tool_calls == 4
    assert len(ptc.programs) == 1
    printed = [b for b in model.requests[-1].messages[-1].content if isinstance(b, ToolResultBlock)]
    assert all(o.text in printed[0].content for o in offers().values())


async def test_ptc_costs_more_tokens_than_direct() -> None:
    runs = await both()
    ptc, direct = runs["ptc"][0].usage, runs["direct"][0].usage
    # The same prose reaches the model either way; ptc adds the program and the code tool.
    assert ptc.input_tokens >= 0.9 * direct.input_tokens
    assert ptc.output_tokens > direct.output_tokens
