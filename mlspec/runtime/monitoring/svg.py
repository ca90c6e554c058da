"""The report's charts as inline SVG strings: paired bars (reference vs current), a heatmap, plain bars.

No JavaScript and no external resource: every chart is markup with <title> tooltips. Every label goes through
html.escape. Each bar and cell carries data-key/data-value with the number it draws, so a test can compare
the picture with report.json.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

REFERENCE = "#7b8fc4"
CURRENT = "#f08a4b"
GRID = "#e3e6ec"
TEXT = "#3b4252"


def _key(path: list[Any], *more: Any) -> str:
    """The data-key attribute: the value's path in report.json as a JSON list, HTML-escaped."""
    return escape(json.dumps([*path, *more]))


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def paired_bars(
    labels: list[str],
    reference: list[float],
    current: list[float],
    *,
    key: list[Any],
    width: int = 460,
    height: int = 180,
    rotate_labels: bool = False,
    axis: tuple[float, float] | None = None,
) -> str:
    """Reference and current shares side by side per bin or category; y in percent."""
    left, right, top = 40, 8, 10
    bottom = 58 if rotate_labels else 26
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([*reference, *current, 1e-9])
    n = len(labels)
    slot = plot_w / max(n, 1)
    bar = max(slot * 0.4, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" class="chart">'
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{_num(y + 3)}" text-anchor="end" font-size="9" fill="{TEXT}">'
            f"{peak * frac * 100:.0f}%</text>"
        )
    for i, (label, ref, cur) in enumerate(zip(labels, reference, current, strict=True)):
        x0 = left + i * slot + (slot - 2 * bar) / 2
        tip = escape(f"{label}: reference {ref * 100:.2f}%, current {cur * 100:.2f}%")
        for j, (value, color, series) in enumerate(
            ((ref, REFERENCE, "reference"), (cur, CURRENT, "current"))
        ):
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{_num(x0 + j * bar)}" y="{_num(top + plot_h - h)}" width="{_num(bar)}" '
                f'height="{_num(h)}" fill="{color}" data-key="{_key(key, series, i)}" '
                f'data-value="{value!r}"><title>{tip}</title></rect>'
            )
        if not axis:
            cx = left + (i + 0.5) * slot
            text = escape(label if len(label) <= 14 else label[:13] + "…")
            if rotate_labels:
                parts.append(
                    f'<text transform="translate({_num(cx)},{top + plot_h + 8}) rotate(40)" font-size="9" '
                    f'fill="{TEXT}">{text}</text>'
                )
            else:
                parts.append(
                    f'<text x="{_num(cx)}" y="{top + plot_h + 12}" text-anchor="middle" font-size="9" '
                    f'fill="{TEXT}">{text}</text>'
                )
    if axis:
        for x, value, anchor in ((left, axis[0], "start"), (width - right, axis[1], "end")):
            parts.append(
                f'<text x="{x}" y="{top + plot_h + 12}" text-anchor="{anchor}" font-size="9" fill="{TEXT}">'
                f"{escape(_tick(value))}</text>"
            )
        mid = (axis[0] + axis[1]) / 2
        parts.append(
            f'<text x="{_num(left + plot_w / 2)}" y="{top + plot_h + 12}" text-anchor="middle" font-size="9" '
            f'fill="{TEXT}">{escape(_tick(mid))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _diverging(value: float) -> str:
    """White at 0 to red at 1 (and beyond)."""
    t = max(0.0, min(1.0, value))
    r, g, b = 255, round(255 - 175 * t), round(255 - 190 * t)
    return f"rgb({r},{g},{b})"


def heatmap(
    labels: list[str], values: list[list[float]], tips: list[list[str]], *, key: list[Any], scale: float = 0.5
) -> str:
    """A square matrix of values in [0, ...]; full colour at `scale`."""
    n = len(labels)
    cell = 34 if n <= 10 else 22
    left, top = 110, 10
    size_w, size_h = left + n * cell + 90, top + n * cell + 90  # room for the slanted labels
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size_w} {size_h}" width="{size_w}" '
        f'height="{size_h}" role="img" class="chart">'
    ]
    for i, row in enumerate(values):
        y = top + i * cell
        short = labels[i] if len(labels[i]) <= 16 else labels[i][:15] + "…"
        parts.append(
            f'<text x="{left - 4}" y="{y + cell / 2 + 3}" text-anchor="end" font-size="10" fill="{TEXT}">'
            f"{escape(short)}</text>"
        )
        for j, value in enumerate(row):
            x = left + j * cell
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_diverging(value / scale)}" '
                f'stroke="#fff" data-key="{_key(key, i, j)}" data-value="{value!r}">'
                f"<title>{escape(tips[i][j])}</title></rect>"
            )
            if cell >= 30:
                parts.append(
                    f'<text x="{x + cell / 2}" y="{y + cell / 2 + 3}" text-anchor="middle" font-size="9" '
                    f'fill="{TEXT}">{value:.2f}</text>'
                )
    for j, label in enumerate(labels):
        cx = left + j * cell + cell / 2
        short = label if len(label) <= 16 else label[:15] + "…"
        parts.append(
            f'<text transform="translate({cx},{top + n * cell + 8}) rotate(50)" font-size="10" fill="{TEXT}">'
            f"{escape(short)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bars(
    labels: list[str], values: list[float], *, key: list[Any], width: int = 720, height: int = 120
) -> str:
    """One series of bars (e.g. rows per hour), labelled at the ends."""
    left, right, top, bottom = 50, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([*values, 1e-9])
    slot = plot_w / max(len(values), 1)
    parts: list[Any] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" class="chart">',
        f'<text x="{left - 4}" y="{top + 3}" text-anchor="end" font-size="9" fill="{TEXT}">{peak:,.0f}</text>',
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{GRID}"/>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / peak
        parts.append(
            f'<rect x="{_num(left + i * slot + slot * 0.1)}" y="{_num(top + plot_h - h)}" '
            f'width="{_num(slot * 0.8)}" height="{_num(h)}" fill="{REFERENCE}" data-key="{_key(key, i)}" '
            f'data-value="{value!r}"><title>{escape(label)}: {value:,.0f}</title></rect>'
        )
    if labels:
        parts.append(
            f'<text x="{left}" y="{height - 6}" font-size="9" fill="{TEXT}">{escape(labels[0])}</text>'
            f'<text x="{width - right}" y="{height - 6}" text-anchor="end" font-size="9" fill="{TEXT}">'
            f"{escape(labels[-1])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
