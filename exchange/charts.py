"""Small server-side SVG charts for the auditor pages (no JavaScript needed).

Each chart has a y axis with a round scale and gridlines, labelled x positions, a legend
under the plot, and says plainly when there is nothing to show. The SVG scales to its
container (viewBox, width 100%), and is drawn narrow enough that its text stays readable
on a 390 px phone screen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 420, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 12, 58
COLOURS = ("#2f6db5", "#d9822b", "#a43a3a")
FONT = 12


def readable_json(value: object) -> str:
    """Event details for people: Vietnamese stays Vietnamese (the template escapes HTML)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def nice_ticks(peak: float, count: int = 4) -> list[float]:
    """Round tick values from 0 covering ``peak``: 0, 5, 10, 15 or 0, 0.25, 0.5..."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < peak:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _number(value: float) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", "\u202f")  # a thin space between thousands, as Vietnamese writes them


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    unit: str = "",
    empty: str = "Chưa có dữ liệu trong khoảng thời gian này.",
) -> Markup:
    """Grouped bars: one group per label, one bar per series."""
    values = [v for _, vs in series for v in vs]
    if not labels or not any(values):
        return _empty(title, empty)
    ticks = nice_ticks(max(values))
    top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / len(labels)
    bar = group * 0.8 / len(series)
    parts = [_open(title)]
    for tick in ticks:  # the y axis: a scale with gridlines
        y = TOP + plot_h - plot_h * tick / top
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="{FONT}" text-anchor="end">'
            f"{escape(_number(tick))}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#555"/>'
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#555"/>'
    )
    if unit:
        parts.append(f'<text x="2" y="{TOP - 2}" font-size="{FONT - 1}">{escape(unit.strip())}</text>')
    # Labels every few groups so that they never overlap (about 7 px per character at this size).
    widest = max(len(label) for label in labels) * 7 + 6
    every = max(1, math.ceil(widest / group))
    for i, label in enumerate(labels):
        x0 = LEFT + i * group + group * 0.1
        for s, (name, vs) in enumerate(series):
            value = vs[i] if i < len(vs) else 0
            height = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{TOP + plot_h - height:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{height:.1f}" fill="{COLOURS[s % len(COLOURS)]}"><title>{escape(label)} '
                f"{escape(name)}: {escape(_number(value))}{escape(unit)}</title></rect>"
            )
        if i % every == 0:
            centre = LEFT + (i + 0.5) * group
            parts.append(
                f'<text x="{centre:.1f}" y="{TOP + plot_h + 15}" font-size="{FONT}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.extend(_legend([name for name, _ in series]))
    parts.append("</svg>")
    # Every text that came from data was escaped above; the rest is markup built here.
    return Markup("".join(parts))  # noqa: S704


def _open(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" style="max-width:{WIDTH * 1.5:.0f}px" '
        f'font-family="system-ui, sans-serif"><title>{escape(title)}</title>'
    )


def _legend(names: Sequence[str]) -> list[str]:
    parts, x = [], float(LEFT)
    for s, name in enumerate(names):
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - 20}" width="11" height="11" fill="{COLOURS[s % len(COLOURS)]}"/>'
            f'<text x="{x + 15:.1f}" y="{HEIGHT - 10}" font-size="{FONT}">{escape(name)}</text>'
        )
        x += 15 + len(name) * 7 + 14
    return parts


def _empty(title: str, message: str) -> Markup:
    """No bars and no invented scale: the frame and a sentence saying there is nothing to show."""
    return Markup(  # noqa: S704 (escaped)
        f"{_open(title)}<rect x='1' y='1' width='{WIDTH - 2}' height='{HEIGHT - 2}' fill='none' "
        f"stroke='#ccc' stroke-dasharray='4 3'/><text x='{WIDTH / 2}' y='{HEIGHT / 2}' "
        f"font-size='{FONT + 1}' text-anchor='middle' class='empty'>{escape(message)}</text></svg>"
    )
