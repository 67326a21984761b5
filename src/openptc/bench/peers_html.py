"""The peers part of the HTML report: who isolates what, then how fast, then what runs at all."""

from __future__ import annotations

from html import escape
from typing import Any

from openptc.bench.markdown import figure_number


def _cell(result: dict[str, Any], unit: str) -> str:
    if "value" in result:
        ratio = result.get("ratio")
        extra = f"<br><small>{figure_number(ratio)}x baseline</small>" if ratio is not None else ""
        return f"{figure_number(result['value'])} {escape(unit)}{extra}"
    why = result.get("unsupported") or result.get("skipped") or "not run"
    word = "cannot run" if "unsupported" in result else "skipped"
    return f'<span class="bad">{word}</span><br><small>{escape(str(why))}</small>'


def _skipped(engine: dict[str, Any]) -> str | None:
    status = str(engine.get("status", ""))
    return status if status.startswith("skipped") else None


def _engines(peers: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-engine="{escape(e["name"])}"><td class="l"><b>{escape(e["name"])}</b></td>'
        f"<td>{escape(str(e.get('version') or '-'))}</td>"
        f'<td class="l">{escape(e["isolation"])}</td>'
        f'<td class="l">{escape(_skipped(e) or "measured")}</td></tr>'
        for e in peers["engines"]
    )
    return (
        '<table id="peers-table"><tr><th class="l">engine</th><th>version</th>'
        f'<th class="l">isolation it gives</th><th class="l">this run</th></tr>{rows}</table>'
    )


def _figures(peers: dict[str, Any]) -> str:
    workloads: list[dict[str, Any]] = peers["workloads"]
    head = "".join(
        f"<th>{escape(w['name'])}<br><small>baseline: {escape(str(w['baseline'].get('label')))}"
        "</small></th>"
        for w in workloads
    )
    rows = []
    for engine in peers["engines"]:
        name, skipped = engine["name"], _skipped(engine)
        if skipped:
            cells = (
                f'<td colspan="{len(workloads)}" class="l"><small>{escape(skipped)}</small></td>'
            )
        else:
            cells = "".join(
                f"<td>{_cell(w['results'].get(name, {}), w['unit'])}</td>" for w in workloads
            )
        rows.append(
            f'<tr data-engine="{escape(name)}"><td class="l"><b>{escape(name)}</b></td>{cells}</tr>'
        )
    return (
        '<div class="wide"><table id="peers-figures"><tr><th class="l">engine</th>'
        f"{head}</tr>{''.join(rows)}</table></div>"
    )


def _coverage(peers: dict[str, Any]) -> str:
    coverage: dict[str, dict[str, Any]] = peers.get("coverage", {})
    skipped = {e["name"] for e in peers["engines"] if _skipped(e)}
    probes = sorted({p for results in coverage.values() for p in results})
    head = "".join(f"<th>{escape(p)}</th>" for p in probes)
    rows = []
    for engine, results in coverage.items():
        if engine in skipped:
            rows.append(
                f'<tr data-engine="{escape(engine)}"><td class="l">{escape(engine)}</td><td>-</td>'
                f'<td colspan="{len(probes)}" class="l"><small>skipped</small></td></tr>'
            )
            continue
        cells = []
        for probe in probes:
            value = results.get(probe)
            if value is True:
                cells.append('<td class="ok">yes</td>')
            else:
                title = "" if value in (False, None) else f' title="{escape(str(value))}"'
                cells.append(f'<td class="bad"{title}>no</td>')
        runs = sum(v is True for v in results.values())
        rows.append(
            f'<tr data-engine="{escape(engine)}"><td class="l">{escape(engine)}</td>'
            f"<td>{runs}/{len(probes)}</td>" + "".join(cells) + "</tr>"
        )
    return (
        '<div class="wide"><table id="coverage"><tr><th class="l">engine</th><th>runs</th>'
        f"{head}</tr>{''.join(rows)}</table></div>"
    )


def peers_section(peers: dict[str, Any]) -> str:
    method = peers.get("method", {})
    notes = "".join(
        f"<li><b>{escape(str(k))}</b>: {escape(str(v))}</li>" for k, v in method.items()
    )
    return (
        f"{_engines(peers)}<h3>Speed, each figure beside its baseline from the same run</h3>"
        f"{_figures(peers)}<h3>Which programs each engine can run at all</h3>"
        f"{_coverage(peers)}<ul>{notes}</ul>"
    )
