"""The benchmark tables as the README and benchmarks/README.md show them.

A test keeps the committed copies equal to these tables of the newest committed results, so the
figures in the docs are always those of a run anyone can find and reproduce.
"""

from __future__ import annotations

from typing import Any


def figure_number(value: float) -> str:
    """Three significant digits for small figures (0.0025 MB), thousands separators otherwise."""
    return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


def _pct(value: float | None) -> str:
    if value is None:
        return "not counted"
    return f"{value:.1%} less" if value >= 0 else f"{-value:.1%} more"


def scenarios_table(report: dict[str, Any]) -> str:
    """One row per scenario: verdicts, model calls, input tokens and PTC's reductions."""
    lines = [
        "| scenario | right (ptc / direct) | model calls | input tokens | input | cost | "
        "end-to-end |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["scenarios"]:
        ptc, direct = row["modes"]["ptc"], row["modes"]["direct"]
        red = row["reductions"] or {}
        right = " / ".join("yes" if r["correct"] else "**no**" for r in (ptc, direct))
        lines.append(
            f"| {row['title']} | {right} | {ptc['model_calls']} / {direct['model_calls']} | "
            f"{ptc['input_tokens']:,} / {direct['input_tokens']:,} | "
            f"{_pct(red.get('input_tokens'))} | {_pct(red.get('cost_usd'))} | "
            f"{_pct(red.get('modelled_s'))} |"
        )
    return "\n".join(lines)


def _figure(result: dict[str, Any]) -> str:
    if "value" in result:
        value = result["value"]
        shown = figure_number(value)
        ratio = result.get("ratio")
        return shown + (f" ({ratio:.3g}x)" if ratio is not None else "")
    return "cannot run" if "unsupported" in result else "skipped"


def peers_table(report: dict[str, Any]) -> str:
    """Engines as rows, workloads as columns (value and ratio to the same run's baseline),
    and how many coverage probes each engine ran."""
    workloads: list[dict[str, Any]] = report["workloads"]
    head = " | ".join(f"{w['name']} ({w['unit']})" for w in workloads)
    lines = [f"| engine | {head} | programs run |", "|---" * (len(workloads) + 2) + "|"]
    baselines = " | ".join(f"{w['baseline']['value']:.3g}" for w in workloads)
    lines.append(f"| *baseline* | {baselines} | |")
    for engine in report["engines"]:
        name = engine["name"]
        cells = " | ".join(_figure(w["results"].get(name, {})) for w in workloads)
        coverage = report["coverage"].get(name, {})
        runs = f"{sum(v is True for v in coverage.values())}/{len(coverage)}"
        lines.append(f"| {name} {engine.get('version') or ''} | {cells} | {runs} |")
    return "\n".join(lines)


def stresses_table(report: dict[str, Any]) -> str:
    """Each scenario's title and what it tests that the others do not."""
    rows = [f"| {r['title']} (`{r['name']}`) | {r['stresses']} |" for r in report["scenarios"]]
    return "| scenario | what it stresses |\n|---|---|\n" + "\n".join(rows)


def isolation_table(report: dict[str, Any]) -> str:
    """Each peer engine's isolation, in the words of the run that measured it."""
    rows = [f"| {e['name']} | {e['isolation']} |" for e in report["engines"]]
    return "| engine | isolation it gives |\n|---|---|\n" + "\n".join(rows)
