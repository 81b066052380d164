"""Small server-side SVG charts for the auditor pages (no JavaScript needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, MARGIN = 640, 220, 40
COLOURS = ("#2f6db5", "#d9822b", "#a43a3a")


def readable_json(value: object) -> str:
    """Event details for people: Vietnamese stays Vietnamese (the template escapes HTML)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], unit: str = ""
) -> Markup:
    """Grouped bars: one group per label, one bar per series; values written on hover titles."""
    peak = max((value for _, values in series for value in values), default=0) or 1
    group = (WIDTH - 2 * MARGIN) / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" '
        'stroke="#555"/>',
        f'<text x="{MARGIN}" y="14" font-size="11">max {peak:g}{unit}</text>',
    ]
    for i, label in enumerate(labels):
        x0 = MARGIN + i * group + group * 0.1
        for s, (name, values) in enumerate(series):
            value = values[i] if i < len(values) else 0
            height = (HEIGHT - 2 * MARGIN) * value / peak
            x, y = x0 + s * bar, HEIGHT - MARGIN - height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{COLOURS[s % len(COLOURS)]}"><title>{escape(label)} {escape(name)}: '
                f"{value:g}{unit}</title></rect>"
            )
        parts.append(f'<text x="{x0:.1f}" y="{HEIGHT - MARGIN + 14}" font-size="10">{escape(label)}</text>')
    for s, (name, _) in enumerate(series):
        parts.append(
            f'<rect x="{WIDTH - 150}" y="{8 + 14 * s}" width="10" height="10" '
            f'fill="{COLOURS[s % len(COLOURS)]}"/><text x="{WIDTH - 135}" y="{17 + 14 * s}" '
            f'font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    # Every text that came from data was escaped above; the rest is markup built here.
    return Markup("".join(parts))  # noqa: S704
