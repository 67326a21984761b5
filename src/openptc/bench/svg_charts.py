"""Small inline SVG charts for the HTML report: no script, no external asset, readable printed."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 460, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40
COLOURS = {"ptc": "#d9480f", "direct": "#1c7ed6"}


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def context_chart(series: dict[str, Sequence[int]], title: str) -> str:
    """Input tokens of each model call, one line per mode, calls numbered from 1."""
    calls = max((len(v) for v in series.values()), default=1)
    top = _nice_max(max((max(v) for v in series.values() if v), default=1))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * (i - 1) / (calls - 1) if calls > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):
        v = top * k / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#dee2e6"/>'
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
            f'class="tick">{v:,.0f}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">'
        f"model call (1 to {calls})</text>"
    )
    for mode, values in series.items():
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values, start=1))
        colour = COLOURS.get(mode, "#495057")
        parts.append(
            f'<polyline data-mode="{escape(mode)}" data-points="{len(values)}" fill="none" '
            f'stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        parts.extend(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>'
            for i, v in enumerate(values, start=1)
            if len(values) <= 12
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(modes: Sequence[str]) -> str:
    return "".join(
        f'<span class="key"><span class="swatch" style="background:{COLOURS.get(m, "#495057")}">'
        f"</span>{escape(m)}</span>"
        for m in modes
    )
