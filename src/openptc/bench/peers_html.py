"""The peers table of the HTML report: each engine's isolation written beside its speed."""

from __future__ import annotations

from html import escape
from typing import Any


def _cell(result: dict[str, Any], unit: str) -> str:
    if "value" in result:
        ratio = result.get("ratio")
        extra = f"<br><small>{ratio:,.2f}x baseline</small>" if ratio is not None else ""
        return f"{result['value']:,.2f} {escape(unit)}{extra}"
    why = result.get("unsupported") or result.get("skipped") or "not run"
    word = "cannot run" if "unsupported" in result else "skipped"
    return f'<span class="bad">{word}</span><br><small>{escape(str(why))}</small>'


def _coverage(peers: dict[str, Any]) -> str:
    coverage: dict[str, dict[str, Any]] = peers.get("coverage", {})
    probes = sorted({p for results in coverage.values() for p in results})
    head = "".join(f"<th>{escape(p)}</th>" for p in probes)
    rows = []
    for engine, results in coverage.items():
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
            f'<tr><td class="l">{escape(engine)}</td><td>{runs}/{len(probes)}</td>'
            + "".join(cells)
            + "</tr>"
        )
    return (
        '<table id="coverage"><tr><th class="l">engine</th><th>runs</th>'
        f"{head}</tr>{''.join(rows)}</table>"
    )


def peers_section(peers: dict[str, Any]) -> str:
    workloads: list[dict[str, Any]] = peers["workloads"]
    head = "".join(f"<th>{escape(w['name'])}</th>" for w in workloads)
    rows = []
    for engine in peers["engines"]:
        name = engine["name"]
        cells = "".join(
            f"<td>{_cell(w['results'].get(name, {}), w['unit'])}</td>" for w in workloads
        )
        version = f" {escape(str(engine['version']))}" if engine.get("version") else ""
        rows.append(
            f'<tr><td class="l"><b>{escape(name)}</b>{version}<br>'
            f"<small>{escape(engine['isolation'])}</small></td>{cells}</tr>"
        )
    method = peers.get("method", {})
    notes = "".join(
        f"<li><b>{escape(str(k))}</b>: {escape(str(v))}</li>" for k, v in method.items()
    )
    return (
        '<table id="peers-table"><tr><th class="l">engine and its isolation</th>'
        f"{head}</tr>{''.join(rows)}</table>"
        f"<h3>Which programs each engine can run at all</h3>{_coverage(peers)}"
        f"<ul>{notes}</ul>"
    )
