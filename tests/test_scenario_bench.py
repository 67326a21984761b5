"""``ptc bench scenarios``: the correctness gate, the billing (cache, prices), the latency model,
real-model runs recorded and replayed offline, and the command's errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.anthropic_fixture import running
from fakes.anthropic_server import FAKE_API_KEY
from openptc.bench.latency_model import LatencyModel
from openptc.bench.metering import MIN_CACHEABLE_TOKENS, CallRecord, simulated_cache
from openptc.bench.prices import Tokens, load_prices
from openptc.bench.scenario_bench import BenchSettings, run_scenario_bench
from openptc.bench.scenario_runs import ModelSource
from openptc.cli import app
from openptc.models.base import ModelRequest
from openptc.models.scripted import Brain, Turn
from openptc.scenarios.base import ToolCall, Verdict
from openptc.scenarios.brains import EXPENSE_AUDIT, expense_audit_brain

FAST = BenchSettings(tool_latency_s=0.0)


def _call(tokens: int, extends: bool, output: int = 10, new_blocks: int = 2) -> CallRecord:
    return CallRecord(tokens, output, 0, 0, False, extends, 0, 0.0, new_blocks)


def test_a_simulated_cache_reads_the_previous_prompt_and_writes_the_rest() -> None:
    billed = simulated_cache([_call(2000, False), _call(2600, True), _call(3000, True)])
    assert billed[0] == Tokens(0, 0, 2000, 10)  # first call: all written
    assert billed[1] == Tokens(0, 2000, 600, 10)
    assert billed[2] == Tokens(0, 2600, 400, 10)


def test_a_short_or_changed_prompt_is_not_read_from_the_cache() -> None:
    short = MIN_CACHEABLE_TOKENS - 1
    billed = simulated_cache([_call(short, False), _call(short + 50, True), _call(5000, False)])
    assert billed[0] == Tokens(short, 0, 0, 10)  # too short to cache
    assert billed[1].cache_read == 0  # the prefix before it was too short to be cached
    assert billed[2].cache_read == 0  # does not extend the previous request


def test_a_turn_of_more_blocks_than_the_lookback_misses_the_cache() -> None:
    calls = [_call(2000, False), _call(9000, True, new_blocks=41)]
    assert simulated_cache(calls)[1] == Tokens(0, 0, 9000, 10)  # Anthropic: written anew
    assert simulated_cache(calls, lookback_blocks=None)[1].cache_read == 2000  # OpenAI: found
    assert simulated_cache(calls, min_tokens=4096)[0] == Tokens(2000, 0, 0, 10)  # too short


def test_a_model_is_billed_by_its_own_row_never_a_siblings() -> None:
    table = load_prices()
    assert table.row_of("bedrock:anthropic.claude-sonnet-4-5-20250929-v1:0") == "claude-sonnet-4-5"
    assert table.row_of("openai:gpt-4.1-mini-2025-04-14") == "gpt-4.1-mini"
    assert table.row_of("openai:gpt-5") == "gpt-5"
    assert table.row_of("openai:gpt-5-mini") is None  # not gpt-5's price
    assert table.price_for("openai:gpt-5-mini")[0] == table.default


def test_cost_keeps_cache_reads_and_writes_apart_from_fresh_input() -> None:
    table = load_prices()
    _, sonnet = table.price_for("anthropic:claude-sonnet-4-5-20250929")
    tokens = Tokens(fresh_input=1_000_000, cache_read=1_000_000, cache_write=1_000_000, output=0)
    assert tokens.cost(sonnet) == pytest.approx(
        sonnet.input + sonnet.cache_read + sonnet.cache_write
    )
    assert tokens.uncached().cost(sonnet) == pytest.approx(3 * sonnet.input)
    assert table.price_for("scripted:expense-audit")[0] == table.default


def test_a_broken_price_table_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text(
        json.dumps({"as_of": "x", "currency": "USD", "source": "me", "models": {}, "default": "y"})
    )
    with pytest.raises(ValueError, match="default 'y' is not one of its models"):
        load_prices(bad)
    with pytest.raises(ValueError, match="cannot read the price table"):
        load_prices(tmp_path / "missing.json")


def test_the_latency_model_charges_fresh_input_and_output() -> None:
    model = LatencyModel(ttft_s=0.5, input_tokens_per_s=1000, output_tokens_per_s=50)
    assert model.call_seconds(2000, 100) == pytest.approx(0.5 + 2 + 2)
    with pytest.raises(ValueError, match="token rates > 0"):
        LatencyModel(output_tokens_per_s=0)


async def test_a_wrong_answer_is_reported_and_its_savings_not_counted() -> None:
    def careless(request: ModelRequest) -> Turn:
        turn = expense_audit_brain(request)
        return "Nobody exceeded the budget." if isinstance(turn, str) else turn

    sloppy = dataclasses.replace(
        EXPENSE_AUDIT, brain=Brain(careless, "the expense audit", expense_audit_brain.tools)
    )
    report = await run_scenario_bench([sloppy], FAST)
    row = report["scenarios"][0]
    assert row["gate"] == "both wrong" and row["counted"] is False
    assert row["reductions"] is None
    assert "missing" in row["modes"]["ptc"]["reason"]
    assert report["summary"]["counted"] == 0 and report["summary"]["right"]["ptc"] == 0


async def test_the_expense_audit_row_shows_what_ptc_saves() -> None:
    report = await run_scenario_bench([EXPENSE_AUDIT], FAST)
    row = report["scenarios"][0]
    ptc, direct = row["modes"]["ptc"], row["modes"]["direct"]
    assert row["gate"] == "both right"
    assert ptc["model_calls"] == 2 and direct["model_calls"] >= 21
    assert row["reductions"]["input_tokens"] >= 0.9
    assert ptc["context_per_call"] and len(direct["context_per_call"]) == direct["model_calls"]
    assert ptc["cache"] == "simulated" and direct["cache_read_tokens"] > 0
    assert ptc["tool_result_bytes"] < direct["tool_result_bytes"] / 100
    assert ptc["sandbox_s"] > 0 and direct["sandbox_s"] == 0


async def test_a_run_that_breaks_the_scenarios_call_rule_is_wrong() -> None:
    def no_budgets(calls: Sequence[ToolCall]) -> Verdict:
        made = [name for name, _ in calls]
        if "get_custom_budget" in made:
            return Verdict.wrong("get_custom_budget is not allowed here")
        return Verdict.right()

    strict = dataclasses.replace(EXPENSE_AUDIT, calls_rule=no_budgets)
    report = await run_scenario_bench([strict], FAST)
    for mode in ("ptc", "direct"):
        run = report["scenarios"][0]["modes"][mode]
        assert not run["correct"] and run["reason"] == "get_custom_budget is not allowed here"
        assert run["tool_calls"] == 49  # made by the program in ptc, directly in direct


async def test_free_prices_and_a_model_that_cannot_start_are_reported_not_raised(
    tmp_path: Path,
) -> None:
    free = load_prices().model_dump()
    free["models"] = {k: dict(v, input=0, output=0, cache_write=0, cache_read=0)
                      for k, v in free["models"].items()}  # fmt: skip
    (tmp_path / "free.json").write_text(json.dumps(free))
    zero = dataclasses.replace(FAST, prices=load_prices(tmp_path / "free.json"))
    report = await run_scenario_bench([EXPENSE_AUDIT], zero)
    assert report["scenarios"][0]["reductions"]["cost_usd"] is None
    assert report["summary"]["ptc_loses"] == []
    broken = dataclasses.replace(FAST, source=ModelSource(model="nosuchprovider:model"))
    failed = await run_scenario_bench([EXPENSE_AUDIT], broken)
    row = failed["scenarios"][0]
    assert row["gate"] == "both wrong"
    assert "nosuchprovider" in row["modes"]["ptc"]["reason"]


def _route(request: ModelRequest) -> Turn:
    return expense_audit_brain(request)


async def test_a_real_model_run_is_recorded_and_replays_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_API_KEY)  # the fake checks it
    async with running() as fake:
        fake.answer_with(_route)
        live = ModelSource(model=f"anthropic:claude-sonnet-4-5@{fake.url}", record_to=tmp_path)
        recorded = await run_scenario_bench([EXPENSE_AUDIT], dataclasses.replace(FAST, source=live))
    row = recorded["scenarios"][0]
    assert row["gate"] == "both right"
    assert row["modes"]["ptc"]["cache"] == "reported"  # the provider's own usage, cache included
    assert row["modes"]["direct"]["cache_read_tokens"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "expense-audit-direct.jsonl",
        "expense-audit-ptc.jsonl",
    ]
    replay = dataclasses.replace(FAST, source=ModelSource(replay_from=tmp_path))
    replayed = await run_scenario_bench([EXPENSE_AUDIT], replay)
    again = replayed["scenarios"][0]
    assert again["gate"] == "both right"
    for mode in ("ptc", "direct"):
        assert again["modes"][mode]["model_calls"] == row["modes"][mode]["model_calls"]
        assert again["modes"][mode]["answer"] == row["modes"][mode]["answer"]
    asked_otherwise = dataclasses.replace(EXPENSE_AUDIT, question="Who spent the most?")
    stale = await run_scenario_bench([asked_otherwise], replay)
    assert stale["scenarios"][0]["gate"] == "both wrong"
    assert "another question" in stale["scenarios"][0]["modes"]["ptc"]["reason"]


def test_the_command_names_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["bench", "scenarios", "--only", "nope", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "unknown scenario nope" in unknown.output
    out = ["--out", str(tmp_path / "results")]
    both = runner.invoke(
        app, ["bench", "scenarios", "--model", "anthropic:x", "--replay", "d", *out]
    )
    assert both.exit_code == 2 and "not both" in both.output
    row = runner.invoke(app, ["bench", "scenarios", "--price-model", "gpt-9", *out])
    assert row.exit_code == 2 and "no row 'gpt-9'" in row.output
    missing = runner.invoke(app, ["bench", "scenarios", "--replay", str(tmp_path), *out])
    assert missing.exit_code == 2 and "no transcripts" in missing.output
    assert not (tmp_path / "results").exists()  # nothing ran, nothing written


def test_the_command_writes_json_and_html(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "scenarios", "--only", "expense-audit", "--tool-latency", "0",
         "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "answered right: ptc 1/1, direct 1/1" in result.output
    (data,) = tmp_path.glob("scenarios-*.json")
    assert json.loads(data.read_text())["scenarios"][0]["name"] == "expense-audit"
    assert (tmp_path / "report-latest.html").read_text().startswith("<!doctype html>")
