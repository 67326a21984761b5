"""``ptc bench scenarios``: every scenario in ptc and direct mode, same model, tools and data.

For each run it keeps what a user pays and waits for: model calls, tokens the four ways they
are billed (fresh input, cache reads, cache writes, output), tool results that entered the
context, tool and sandbox time, a modelled end-to-end time, and a cost from a dated price
table. The checker decides first (and, for a scenario about which calls may be made, its rule
over the calls): a run whose answer is wrong is reported as failed, and a scenario counts a
saving only when both of its runs are right.

The model is the scenario's scripted brain by default (offline, labelled as such), a real
model with ``--model`` (each run's transcript recorded), or those transcripts with ``--replay``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openptc.bench.latency_model import LatencyModel
from openptc.bench.metering import billed_tokens, total
from openptc.bench.prices import PriceTable, load_prices
from openptc.bench.report import report_header
from openptc.bench.scenario_runs import ModelSource, RunRecord, run_mode
from openptc.events import ToolCallFinished
from openptc.prompts import Mode
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.base import Scenario, Verdict
from openptc.scenarios.leaks import leaked

MODES: tuple[Mode, ...] = ("ptc", "direct")
DEFAULT_TOOL_LATENCY_S = 0.05
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchSettings:
    source: ModelSource = field(default_factory=ModelSource)
    tool_latency_s: float = DEFAULT_TOOL_LATENCY_S
    latency: LatencyModel = field(default_factory=LatencyModel)
    prices: PriceTable = field(default_factory=load_prices)
    price_model: str | None = None
    """The price table's row to bill; default: the model's own row, else the table's default."""


def verdict(record: RunRecord) -> Verdict:
    """The checker on the answer, then the scenario's rule over the calls made."""
    if record.result is None:
        return Verdict.wrong(record.error or "the run failed")
    answer = record.scenario.check(record.result.answer)
    rule = record.scenario.calls_rule
    if answer.correct and rule is not None:
        return rule(record.tool_calls())
    return answer


def _price_note(settings: BenchSettings, model: str) -> tuple[str, str]:
    """The row that bills a run, and a note when it is not the model's own."""
    if settings.price_model is not None:
        return settings.price_model, ""
    if settings.source.scripted:  # billed as the table's default model, as the method says
        return settings.prices.default, ""
    own = settings.prices.row_of(model)
    if own is not None:
        return own, ""
    return settings.prices.default, f"no price row for {model}: billed as {settings.prices.default}"


def figures(record: RunRecord, settings: BenchSettings) -> dict[str, Any]:
    """Everything one run cost and whether it was right, as JSON-ready values."""
    calls = record.metered.calls if record.metered is not None else []
    model_name = record.metered.name if record.metered is not None else "?"
    row, price_note = _price_note(settings, model_name)
    price = settings.prices.models[row]
    per_call, cache_source = billed_tokens(calls, price)
    billed = total(per_call)
    outside = record.outside_model_s()
    modelled = outside + sum(
        settings.latency.call_seconds(t.fresh_input + t.cache_write, t.output) for t in per_call
    )
    judged = verdict(record)
    private = record.scenario.private()
    result = record.result
    requests = record.metered.requests if record.metered is not None else []
    return {
        "mode": record.mode,
        "correct": judged.correct,
        "reason": judged.reason,
        "answer": result.answer if result is not None else "",
        "stop": result.stop if result is not None else "error",
        "model_calls": len(calls),
        "tool_calls": len(record.tool_calls()),
        "programs": len(result.programs) if result is not None else 0,
        "input_tokens": sum(c.input_tokens for c in calls),
        "fresh_input_tokens": billed.fresh_input,
        "cache_read_tokens": billed.cache_read,
        "cache_write_tokens": billed.cache_write,
        "output_tokens": billed.output,
        "cache": cache_source,
        "tokens_counted": "provider" if cache_source == "reported" else "tiktoken cl100k_base",
        "context_per_call": [c.input_tokens for c in calls],
        # Every tool result the model read is in its last request (the context only grows).
        "tool_result_bytes": calls[-1].tool_result_bytes if calls else 0,
        "tool_s": sum(
            t.event.duration_s for t in record.events if isinstance(t.event, ToolCallFinished)
        ),
        "sandbox_s": sum(e.duration_ms for e in result.executions) / 1000 if result else 0.0,
        "outside_model_s": outside,
        "model_s": sum(c.duration_s for c in calls),
        "wall_s": record.wall_s,
        "modelled_s": modelled,
        "price_row": row,
        "price_note": price_note,
        "cost_usd": billed.cost(price),
        "cost_usd_without_cache": billed.uncached().cost(price),
        "private_leaked": len(leaked(requests, private)) if private else None,
        "private_total": len(private) if private else None,
    }


def _reduction(ptc: float, direct: float) -> float | None:
    """1 - ptc/direct: 0.9 is 90% less with PTC; negative when PTC costs more."""
    return None if direct == 0 else 1 - ptc / direct


REDUCED = ("input_tokens", "model_calls", "output_tokens", "cost_usd", "cost_usd_without_cache",
           "modelled_s", "tool_result_bytes")  # fmt: skip


def compare(scenario: Scenario, ptc: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """The scenario's row: both runs, the gate, and the reductions when the gate lets them."""
    gate = {
        (True, True): "both right",
        (True, False): "direct wrong",
        (False, True): "ptc wrong",
        (False, False): "both wrong",
    }[(ptc["correct"], direct["correct"])]
    counted = gate == "both right"
    return {
        "name": scenario.name,
        "title": scenario.title,
        "stresses": scenario.stresses,
        "question": scenario.question,
        "ptc_pays": scenario.ptc_pays,
        "direct_errs": scenario.direct_errs,
        "gate": gate,
        "counted": counted,
        "modes": {"ptc": ptc, "direct": direct},
        "reductions": {k: _reduction(ptc[k], direct[k]) for k in REDUCED} if counted else None,
    }


def summarize(rows: Sequence[dict[str, Any]], scripted: bool) -> dict[str, Any]:
    """Totals over the scenarios whose two runs were both right (the gate), and the verdicts.

    With scripted brains a wrong answer is written on purpose (``direct_errs``): the tally
    says how many of the direct answers were wrong by design, so none reads as a finding.
    """
    counted = [r for r in rows if r["counted"]]

    def summed(mode: str, key: str) -> float:
        return float(sum(r["modes"][mode][key] for r in counted))

    def median(key: str) -> float | None:
        values = [r["reductions"][key] for r in counted if r["reductions"][key] is not None]
        return statistics.median(values) if values else None

    def loses(row: dict[str, Any]) -> bool:
        cost = row["reductions"]["cost_usd"]
        return cost is not None and cost < 0

    return {
        "scenarios": len(rows),
        "counted": len(counted),
        "right": {m: sum(r["modes"][m]["correct"] for r in rows) for m in MODES},
        "wrong_by_design": [r["name"] for r in rows if scripted and r["direct_errs"]],
        "totals": {m: {k: summed(m, k) for k in REDUCED} for m in MODES},
        "reductions": {k: _reduction(summed("ptc", k), summed("direct", k)) for k in REDUCED},
        # The totals are dominated by the largest scenario; the median weighs each one the same.
        "median_reductions": {k: median(k) for k in REDUCED},
        "ptc_loses": [r["name"] for r in counted if loses(r)],
    }


async def _warm(sandbox: LocalSandbox) -> None:
    """One trivial program first, so no scenario's time includes the sandbox's own start."""
    session = await sandbox.open_session()
    try:
        await session.execute("pass", None)
    finally:
        await session.close()


async def run_scenario_bench(
    scenarios: Sequence[Scenario],
    settings: BenchSettings | None = None,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Run every scenario in both modes; the report as a JSON-ready dict."""
    settings = settings or BenchSettings()
    rows = []
    async with LocalSandbox(pool_size=1) as sandbox:
        await _warm(sandbox)
        for scenario in scenarios:
            runs = {}
            for mode in MODES:
                record = await run_mode(
                    scenario, mode, settings.source, settings.tool_latency_s, sandbox
                )
                runs[mode] = figures(record, settings)
                mark = "right" if runs[mode]["correct"] else f"WRONG ({runs[mode]['reason']})"
                progress(f"{scenario.name} {mode}: {runs[mode]['model_calls']} model calls, {mark}")
            rows.append(compare(scenario, runs["ptc"], runs["direct"]))
    return {
        **report_header("scenarios"),
        "model": settings.source.describe(),
        "scripted": settings.source.scripted,
        "settings": {
            "tool_latency_s": settings.tool_latency_s,
            "latency_model": settings.latency.describe(),
            "prices": {
                "as_of": settings.prices.as_of,
                "source": settings.prices.source,
                "currency": settings.prices.currency,
                "rows": {k: v.model_dump() for k, v in settings.prices.models.items()},
            },
            "tokens": "as the provider reports them; for a scripted run, counted with tiktoken's "
            "cl100k_base (a provider's own tokenizer counts differently: Claude's counts more)",
            "cache": "reported by the provider where every call reported usage; else simulated "
            "as a cache breakpoint on the last message of each request, with the price row's "
            "smallest cacheable prompt and lookback (Anthropic: 20 blocks)",
        },
        "scenarios": rows,
        "summary": summarize(rows, settings.source.scripted),
    }
