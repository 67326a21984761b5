"""``ptc bench scenarios``: every scenario in ptc and direct mode, same model, tools and data.

For each run it keeps what a user pays and waits for: model calls, tokens the four ways they
are billed (fresh input, cache reads, cache writes, output), tool results that entered the
context, tool and sandbox time, a modelled end-to-end time, and a cost from a dated price
table. The checker decides first: a run whose answer is wrong is reported as failed, and a
scenario counts a saving only when both of its runs are right.

The model is the scenario's scripted brain by default (offline, labelled as such), a real
model with ``--model`` (each run's transcript recorded), or those transcripts with ``--replay``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openptc.agent import Agent
from openptc.bench.latency_model import LatencyModel
from openptc.bench.metering import MeteredModel, billed_tokens, total
from openptc.bench.prices import PriceTable, load_prices
from openptc.bench.report import report_header
from openptc.events import Event, ToolCallFinished
from openptc.models.base import Model, ToolResultBlock
from openptc.models.scripted import ScriptedModel
from openptc.prompts import Mode
from openptc.recording import RecordingModel, replay_model
from openptc.runs import RunResult
from openptc.sandbox.base import Sandbox
from openptc.sandbox.local import LocalSandbox
from openptc.scenarios.base import Scenario
from openptc.scenarios.leaks import leaked
from openptc.tools import Toolbox

MODES: tuple[Mode, ...] = ("ptc", "direct")
DEFAULT_TOOL_LATENCY_S = 0.05
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelSource:
    """Where each run's model comes from: the scripted brains, a real model, or replays."""

    model: str | None = None
    """A model string ("anthropic:claude-sonnet-4-5"); None for the scripted brains."""
    record_to: Path | None = None
    """With a real model: the directory its transcripts are written to."""
    replay_from: Path | None = None
    """Replay the transcripts in this directory instead of calling any model."""

    def transcript(self, directory: Path, scenario: Scenario, mode: Mode) -> Path:
        return directory / f"{scenario.name}-{mode}.jsonl"

    def make(self, scenario: Scenario, mode: Mode) -> Model:
        if self.replay_from is not None:
            path = self.transcript(self.replay_from, scenario, mode)
            if not path.exists():
                raise ValueError(f"no transcript {path}: record it with --model first")
            return replay_model(path)
        if self.model is None:
            return ScriptedModel(scenario.brain, name=f"scripted:{scenario.name}")
        from openptc.models.resolve import model_from_string

        real = model_from_string(self.model)
        if self.record_to is None:
            return real
        self.record_to.mkdir(parents=True, exist_ok=True)
        path = self.transcript(self.record_to, scenario, mode)
        return RecordingModel(real, path, mode=mode, prompt=scenario.question)

    def describe(self) -> str:
        if self.replay_from is not None:
            return f"replays of the transcripts in {self.replay_from}"
        return self.model or "the scenarios' scripted brains (offline, no real model)"


@dataclass(frozen=True)
class BenchSettings:
    source: ModelSource = field(default_factory=ModelSource)
    tool_latency_s: float = DEFAULT_TOOL_LATENCY_S
    latency: LatencyModel = field(default_factory=LatencyModel)
    prices: PriceTable = field(default_factory=load_prices)
    price_model: str | None = None
    """The price table's row to bill; default: the model's own row, else the table's default."""


def _tool_seconds(events: Sequence[Event]) -> float:
    return sum(e.duration_s for e in events if isinstance(e, ToolCallFinished))


def _result_bytes(result: RunResult) -> int:
    """Bytes of tool results that entered the model's context (each result once)."""
    return sum(
        len(b.content.encode())
        for m in result.transcript
        for b in m.content
        if isinstance(b, ToolResultBlock)
    )


async def run_mode(
    scenario: Scenario, mode: Mode, settings: BenchSettings, sandbox: Sandbox | None
) -> dict[str, Any]:
    """One scenario in one mode: the answer, its verdict and every figure of the run."""
    metered = MeteredModel(settings.source.make(scenario, mode))
    events: list[Event] = []
    toolbox = Toolbox(scenario.make_tools(settings.tool_latency_s))
    started = time.perf_counter()
    error: str | None = None
    result: RunResult | None = None
    try:
        async with Agent(
            metered,
            toolbox,
            sandbox if mode != "direct" else None,
            mode=mode,
            max_turns=scenario.direct_max_turns,
        ) as agent:
            result = await agent.run(scenario.question, on_event=events.append)
    except Exception as exc:  # a failed run is a result: reported, never counted as a saving
        error = f"{type(exc).__name__}: {exc}"
    finally:
        await metered.aclose()
    wall = time.perf_counter() - started
    return _mode_figures(scenario, mode, settings, metered, events, result, error, wall)


def _mode_figures(
    scenario: Scenario,
    mode: Mode,
    settings: BenchSettings,
    metered: MeteredModel,
    events: Sequence[Event],
    result: RunResult | None,
    error: str | None,
    wall_s: float,
) -> dict[str, Any]:
    per_call, cache_source = billed_tokens(metered.calls)
    billed = total(per_call)
    row, price = settings.prices.price_for(settings.price_model or metered.name)
    model_s = sum(c.duration_s for c in metered.calls)
    modelled_calls = sum(
        settings.latency.call_seconds(t.fresh_input + t.cache_write, t.output) for t in per_call
    )
    verdict = scenario.check(result.answer) if result is not None else None
    private = scenario.private()
    return {
        "mode": mode,
        "correct": bool(verdict and verdict.correct) and result is not None,
        "reason": error or (verdict.reason if verdict else ""),
        "answer": result.answer if result is not None else "",
        "stop": result.stop if result is not None else "error",
        "model_calls": len(metered.calls),
        "tool_calls": result.usage.tool_calls if result is not None else 0,
        "programs": len(result.programs) if result is not None else 0,
        "input_tokens": sum(c.input_tokens for c in metered.calls),
        "fresh_input_tokens": billed.fresh_input,
        "cache_read_tokens": billed.cache_read,
        "cache_write_tokens": billed.cache_write,
        "output_tokens": billed.output,
        "cache": cache_source,
        "tokens_counted": "provider" if cache_source == "reported" else "tiktoken cl100k_base",
        "context_per_call": [c.input_tokens for c in metered.calls],
        "tool_result_bytes": _result_bytes(result) if result is not None else 0,
        "tool_s": _tool_seconds(events),
        "sandbox_s": sum(e.duration_ms for e in result.executions) / 1000 if result else 0.0,
        "wall_s": wall_s,
        "modelled_s": modelled_calls + max(0.0, wall_s - model_s),
        "price_row": row,
        "cost_usd": billed.cost(price),
        "cost_usd_without_cache": billed.uncached().cost(price),
        "private_leaked": len(leaked(metered.requests, private)) if private else None,
        "private_total": len(private) if private else None,
    }


def _reduction(ptc: float, direct: float) -> float | None:
    """1 - ptc/direct: 0.9 is 90% less with PTC; negative when PTC costs more."""
    return None if direct == 0 else 1 - ptc / direct


REDUCED = ("input_tokens", "model_calls", "output_tokens", "cost_usd", "cost_usd_without_cache",
           "modelled_s", "tool_result_bytes")  # fmt: skip


def compare(scenario: Scenario, ptc: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """The scenario's row: both runs, the gate, and the reductions when the gate lets them."""
    if ptc["correct"] and direct["correct"]:
        gate = "both right"
    elif ptc["correct"]:
        gate = "direct wrong"
    elif direct["correct"]:
        gate = "ptc wrong"
    else:
        gate = "both wrong"
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


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the scenarios whose two runs were both right (the gate), and the verdicts."""
    counted = [r for r in rows if r["counted"]]

    def summed(mode: str, key: str) -> float:
        return float(sum(r["modes"][mode][key] for r in counted))

    def median(key: str) -> float | None:
        values = [r["reductions"][key] for r in counted if r["reductions"][key] is not None]
        return statistics.median(values) if values else None

    return {
        "scenarios": len(rows),
        "counted": len(counted),
        "right": {m: sum(r["modes"][m]["correct"] for r in rows) for m in MODES},
        "totals": {m: {k: summed(m, k) for k in REDUCED} for m in MODES},
        "reductions": {k: _reduction(summed("ptc", k), summed("direct", k)) for k in REDUCED},
        # The totals are dominated by the largest scenario; the median weighs each one the same.
        "median_reductions": {k: median(k) for k in REDUCED},
        "ptc_loses": [r["name"] for r in counted if (r["reductions"] or {})["cost_usd"] < 0],
    }


async def run_scenario_bench(
    scenarios: Sequence[Scenario],
    settings: BenchSettings | None = None,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Run every scenario in both modes; the report as a JSON-ready dict."""
    settings = settings or BenchSettings()
    rows = []
    async with LocalSandbox(pool_size=1) as sandbox:
        for scenario in scenarios:
            runs = {}
            for mode in MODES:
                runs[mode] = await run_mode(scenario, mode, settings, sandbox)
                mark = "right" if runs[mode]["correct"] else f"WRONG ({runs[mode]['reason']})"
                progress(f"{scenario.name} {mode}: {runs[mode]['model_calls']} model calls, {mark}")
            rows.append(compare(scenario, runs["ptc"], runs["direct"]))
    return {
        **report_header("scenarios"),
        "model": settings.source.describe(),
        "settings": {
            "tool_latency_s": settings.tool_latency_s,
            "latency_model": settings.latency.describe(),
            "prices": {
                "as_of": settings.prices.as_of,
                "source": settings.prices.source,
                "currency": settings.prices.currency,
                "rows": {k: v.model_dump() for k, v in settings.prices.models.items()},
            },
            "cache": "reported by the provider where every call reported usage; else simulated "
            "as a cache breakpoint on the last message of each request (min 1,024 tokens)",
        },
        "scenarios": rows,
        "summary": summarize(rows),
    }
