"""The benchmark report as one self-contained HTML page: inline style and SVG, no script, no
external asset, so it can be mailed, attached to CI, or opened offline as is."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from openptc.bench.svg_charts import context_chart, legend

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1180px;color:#212529;
padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #dee2e6}
.sub{color:#495057}.scripted{background:#fff3bf;border:1px solid #f59f00;padding:.5rem .8rem;
border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:1rem}.card{border:1px solid #dee2e6;border-radius:6px;
padding:.7rem 1rem;min-width:200px}.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;margin:.6rem 0;width:100%}th,td{border-bottom:1px solid #e9ecef;
padding:.3rem .5rem;text-align:right;vertical-align:top}th{background:#f8f9fa}
td.l,th.l{text-align:left}.ok{color:#2b8a3e;font-weight:600}.bad{color:#c92a2a;font-weight:600}
.loss{color:#c92a2a}.gain{color:#2b8a3e}.charts{display:flex;flex-wrap:wrap;gap:1.2rem}
figure{margin:0}figcaption{font-weight:600}.tick,.axis{font-size:11px;fill:#495057}
.key{margin-right:1rem}.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;
vertical-align:middle}small{color:#868e96}.wide{overflow-x:auto}
table.runs{width:auto;flex:1 1 560px}#peers-figures td{min-width:7rem}
"""


def _int(value: float) -> str:
    return f"{value:,.0f}"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    word = "less" if value >= 0 else "more"
    cls = "gain" if value >= 0 else "loss"
    return f'<span class="{cls}">{abs(value):.1%} {word}</span>'


def _verdict(run: dict[str, Any]) -> str:
    if run["correct"]:
        return '<span class="ok">right</span>'
    return f'<span class="bad">wrong</span> <small>{escape(run["reason"])}</small>'


def _cards(report: dict[str, Any]) -> str:
    summary = report["summary"]
    expense = next((r for r in report["scenarios"] if r["name"] == "expense-audit"), None)
    label = "answered right (scripted)" if report.get("scripted") else "answered right"
    cards = [
        (label, f"{summary['right']['ptc']}/{summary['scenarios']} ptc · "
         f"{summary['right']['direct']}/{summary['scenarios']} direct"),
    ]  # fmt: skip
    reductions, median = summary["reductions"], summary["median_reductions"]
    for key, label in (("input_tokens", "input tokens"), ("cost_usd", "cost"),
                       ("modelled_s", "end-to-end time (modelled)")):  # fmt: skip
        cards.append(
            (f"{label}: all counted · median scenario",
             f"{_pct(reductions[key])}<br>{_pct(median[key])}")
        )  # fmt: skip
    if expense is not None:
        ptc, direct = expense["modes"]["ptc"], expense["modes"]["direct"]
        cards.append(
            ("expense audit", f"{ptc['model_calls']} model calls vs {direct['model_calls']}")
        )
    return (
        '<div class="cards" id="summary">'
        + "".join(f'<div class="card"><small>{escape(k)}</small><b>{v}</b></div>' for k, v in cards)
        + "</div>"
    )


Cell = Callable[[dict[str, Any]], str]
ROWS: tuple[tuple[str, Cell], ...] = (
    ("answer", _verdict),
    ("model calls", lambda r: _int(r["model_calls"])),
    ("tool calls", lambda r: _int(r["tool_calls"])),
    ("input tokens (all calls)", lambda r: _int(r["input_tokens"])),
    ("· fresh", lambda r: _int(r["fresh_input_tokens"])),
    ("· cache read", lambda r: _int(r["cache_read_tokens"])),
    ("· cache write", lambda r: _int(r["cache_write_tokens"])),
    ("output tokens", lambda r: _int(r["output_tokens"])),
    ("tool results in context", lambda r: f"{r['tool_result_bytes'] / 1024:,.1f} KiB"),
    ("tool time (sum over calls)", lambda r: f"{r['tool_s']:.2f} s"),
    ("sandbox time", lambda r: f"{r['sandbox_s']:.2f} s"),
    ("end-to-end (modelled)", lambda r: f"{r['modelled_s']:.1f} s"),
    ("wall time (measured)", lambda r: f"{r['wall_s']:.1f} s"),
    ("cost", lambda r: f"${r['cost_usd']:.4f}"),
    ("cost without caching", lambda r: f"${r['cost_usd_without_cache']:.4f}"),
)
REDUCTION_OF = {"model calls": "model_calls", "input tokens (all calls)": "input_tokens",
                "output tokens": "output_tokens", "tool results in context": "tool_result_bytes",
                "end-to-end (modelled)": "modelled_s", "cost": "cost_usd",
                "cost without caching": "cost_usd_without_cache"}  # fmt: skip


def _scenario_section(row: dict[str, Any]) -> str:
    ptc, direct = row["modes"]["ptc"], row["modes"]["direct"]
    reductions = row["reductions"] or {}
    gate = (
        "both answers right: savings counted"
        if row["counted"]
        else f"{row['gate']}: savings not counted"
    )
    notes = []
    if not row["ptc_pays"]:
        notes.append("built to show where PTC does not pay")
    if row["direct_errs"]:
        notes.append(f"the direct-mode brain errs on purpose: {row['direct_errs']}")
    notes.extend({r["price_note"] for r in (ptc, direct) if r["price_note"]})
    if ptc["private_total"]:
        notes.append(
            f"personal strings that reached the model: ptc {ptc['private_leaked']} of "
            f"{ptc['private_total']}, direct {direct['private_leaked']} of "
            f"{direct['private_total']}"
        )
    body = "".join(
        f'<tr><td class="l">{escape(label)}</td><td>{cell(ptc)}</td><td>{cell(direct)}</td>'
        f"<td>{_pct(reductions.get(REDUCTION_OF.get(label, ''))) if row['counted'] else '-'}"
        "</td></tr>"
        for label, cell in ROWS
    )
    chart = context_chart(
        {"ptc": ptc["context_per_call"], "direct": direct["context_per_call"]},
        f"{row['title']}: input tokens per model call",
    )
    return (
        f'<section class="scenario" id="scenario-{escape(row["name"])}">'
        f"<h3>{escape(row['title'])} <small>{escape(row['name'])}</small></h3>"
        f'<p class="sub">{escape(row["question"])}<br><small>stresses: '
        f"{escape(row['stresses'])}</small></p>"
        f'<p class="gate">{escape(gate)}'
        + "".join(f"<br><small>{escape(n)}</small>" for n in notes)
        + "</p>"
        '<div class="charts"><table class="runs"><tr><th class="l"></th><th>ptc</th>'
        f"<th>direct</th><th>PTC vs direct</th></tr>{body}</table>"
        f"<figure>{chart}<figcaption>input tokens per model call</figcaption>"
        f"{legend(['ptc', 'direct'])}</figure></div></section>"
    )


def _overview(report: dict[str, Any]) -> str:
    head = (
        '<table id="overview"><tr><th class="l">scenario</th><th>right (ptc / direct)</th>'
        "<th>model calls</th><th>input tokens</th><th>cost</th><th>end-to-end (modelled)</th></tr>"
    )
    rows = []
    for row in report["scenarios"]:
        ptc, direct = row["modes"]["ptc"], row["modes"]["direct"]
        red = row["reductions"] or {}
        right = f"{'yes' if ptc['correct'] else 'NO'} / {'yes' if direct['correct'] else 'NO'}"
        rows.append(
            f'<tr data-scenario="{escape(row["name"])}"><td class="l">'
            f'<a href="#scenario-{escape(row["name"])}">'
            f"{escape(row['title'])}</a></td><td>{right}</td>"
            f"<td>{ptc['model_calls']} vs {direct['model_calls']}</td>"
            f"<td>{_pct(red.get('input_tokens'))}</td><td>{_pct(red.get('cost_usd'))}</td>"
            f"<td>{_pct(red.get('modelled_s'))}</td></tr>"
        )
    return head + "".join(rows) + "</table>"


def _peers(peers: dict[str, Any] | None) -> str:
    if peers is None:
        return "<p>Not run (<code>ptc bench peers</code>).</p>"
    from openptc.bench.peers_html import peers_section

    return peers_section(peers)


def _method(report: dict[str, Any]) -> str:
    settings = report["settings"]
    prices = settings["prices"]
    return (
        '<ul id="method">'
        f"<li>model: {escape(report['model'])}</li>"
        f"<li>tools: {settings['tool_latency_s'] * 1000:.0f} ms simulated latency per call</li>"
        f"<li>end-to-end time: {escape(settings['latency_model'])}; tools, sandbox and agent "
        "time measured</li>"
        f"<li>prices: {escape(prices['currency'])}, as of {escape(prices['as_of'])} "
        f"({escape(prices['source'])})</li>"
        f"<li>tokens: {escape(settings.get('tokens', ''))}; input tokens count every call's "
        "whole context, as sent (before caching)</li>"
        f"<li>prompt cache: {escape(settings['cache'])}</li>"
        "<li>gate: a scenario's savings count only when both of its answers are right</li></ul>"
    )


def _banner(report: dict[str, Any]) -> str:
    if report.get("scripted"):
        by_design = report["summary"].get("wrong_by_design") or []
        wrong = (
            f" The direct answer of {escape(', '.join(by_design))} is wrong by design, as models "
            "adding hundreds of numbers in context get it wrong."
            if by_design
            else ""
        )
        return (
            '<p class="scripted">Scripted brains, not a real model. Calls, tokens, tool results, '
            "tool and sandbox time are measured runs of openptc; the answers, right or wrong, "
            "are written in code, and every program works the first time: PTC's best case."
            f"{wrong} Run <code>ptc bench scenarios --model ...</code> for a real model.</p>"
        )
    if "replay" in report["model"]:
        return (
            '<p class="scripted">Replayed transcripts of a real model\'s runs: its answers, '
            "recorded; tools, sandbox and tokens measured again now.</p>"
        )
    return ""


def render_html(report: dict[str, Any], peers: dict[str, Any] | None = None) -> str:
    """The whole page for a ``ptc bench scenarios`` report (and a ``peers`` one, if run)."""
    machine = report["machine"]
    banner = _banner(report)
    sections = "".join(_scenario_section(r) for r in report["scenarios"])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>openptc benchmark report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>openptc benchmark report</h1>"
        f'<p class="sub">{escape(report["when"])} · {machine["cpus"]} CPUs · Python '
        f"{escape(machine['python'])} · {escape(report['model'])}</p>{banner}"
        f"<h2>Summary</h2>{_cards(report)}{_overview(report)}"
        f"<h2>Scenarios: PTC and direct side by side</h2>{sections}"
        f'<h2 id="peers">Sandboxes: openptc and its peers</h2>{_peers(peers)}'
        f"<h2>Method</h2>{_method(report)}</body></html>"
    )
