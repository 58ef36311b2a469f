"""The report's two kinds of chart, drawn as plain SVG text.

A chart here is a few dozen rectangles and labels. Drawing them directly costs microseconds,
where a plotting library took about two seconds per run (import, font scan, layout) for the
same pictures. The output depends on its arguments only, so the same run gives the same page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

_FONT = 11  # px; labels are sized from this, at about 0.6 em per character
_CHAR = _FONT * 0.6
_ROW = 22  # px per bar in a horizontal bar chart
_WIDTH = 700
_AXIS_COLOR = "#444444"
_GRID_COLOR = "#dddddd"


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    axis_label: str,
    legend: bool = True,
) -> str:
    """Horizontal bars, one row per label, the series stacked left to right.

    `series` is (name, one value per label, colour). Rows keep the order given, top first.
    """
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(labels))]
    label_width = min(_WIDTH * 0.55, 12 + max((len(s) for s in labels), default=1) * _CHAR)
    left, right, top = label_width + 8, _WIDTH - 16, 8 + (_ROW if legend else 0)
    height = top + _ROW * max(len(labels), 1) + 40
    ticks = _ticks(max(totals, default=0))
    scale = (right - left) / ticks[-1]
    bottom = top + _ROW * len(labels)
    parts = _grid_x(ticks, left, scale, top, bottom)
    for row, label in enumerate(labels):
        y = top + row * _ROW
        parts.append(_text(label_width, y + _ROW / 2 + _FONT / 3, label, anchor="end", title=label))
        x = left
        for name, values, colour in series:
            width = values[row] * scale
            if width > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{_ROW - 6}" '
                    f'fill="{colour}"><title>{_e(f"{label}: {_number(values[row])} {name}")}'
                    "</title></rect>"
                )
            x += width
    parts.append(_line(left, top, left, bottom))
    parts.append(_text((left + right) / 2, bottom + 34, axis_label, anchor="middle"))
    if legend:
        x = right
        for name, _, colour in reversed(series):
            x -= len(name) * _CHAR + 4
            parts.append(_text(x, 8 + _FONT, name))
            x -= 14
            parts.append(f'<rect x="{x:.1f}" y="10" width="10" height="10" fill="{colour}"/>')
            x -= 12
    return _svg(_WIDTH, height, parts)


def log_histogram(
    bin_labels: Sequence[str], counts: Sequence[int], colour: str, x_label: str, y_label: str
) -> str:
    """Vertical bars of equal width, one per bin, on a log-scaled count axis.

    Empty bins are kept as gaps, so the shape of the distribution stays readable.
    """
    left, right, top, bottom = 70, _WIDTH - 16, 12, 230
    rotate = len(bin_labels) > 10
    height = bottom + (90 if rotate else 50)
    decades = max(1, math.ceil(math.log10(max(max(counts, default=1), 1) * 1.5)))
    # log axis from 1 (drawn a little above the baseline so that a count of 1 shows) up
    # to 10**decades
    floor = math.log10(0.7)

    def y_of(count: float) -> float:
        return bottom - (math.log10(count) - floor) / (decades - floor) * (bottom - top)

    parts = []
    for power in range(decades + 1):
        y = y_of(10**power)
        parts.append(_line(left, y, right, y, _GRID_COLOR))
        parts.append(_text(left - 6, y + _FONT / 3, f"{10**power:,}", anchor="end"))
    slot = (right - left) / max(len(bin_labels), 1)
    for i, (label, count) in enumerate(zip(bin_labels, counts, strict=True)):
        x = left + i * slot
        if count > 0:
            y = y_of(count)
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
                f'height="{bottom - y:.1f}" fill="{colour}"><title>'
                f"{_e(f'{label}: {count:,}')}</title></rect>"
            )
        cx, ly = x + slot / 2, bottom + 14
        if rotate:
            parts.append(
                f'<text x="{cx:.1f}" y="{ly:.1f}" font-size="{_FONT - 1}" text-anchor="end" '
                f'transform="rotate(-45 {cx:.1f} {ly:.1f})">{_e(label)}</text>'
            )
        else:
            parts.append(_text(cx, ly, label, anchor="middle", size=_FONT - 1))
    parts.append(_line(left, bottom, right, bottom))
    parts.append(_line(left, top, left, bottom))
    parts.append(_text((left + right) / 2, height - 8, x_label, anchor="middle"))
    mid = (top + bottom) / 2
    parts.append(
        f'<text x="16" y="{mid:.1f}" font-size="{_FONT}" text-anchor="middle" '
        f'transform="rotate(-90 16 {mid:.1f})">{_e(y_label)}</text>'
    )
    return _svg(_WIDTH, height, parts)


def _ticks(largest: float) -> list[float]:
    """0 and round steps (1, 2 or 5 x 10^k) up to at least `largest`, about five of them."""
    if largest <= 0:
        return [0, 1]
    raw = largest / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = math.ceil(largest / step)
    return [step * i for i in range(count + 1)]


def _grid_x(ticks: list[float], left: float, scale: float, top: float, bottom: float) -> list[str]:
    parts = []
    for tick in ticks:
        x = left + tick * scale
        parts.append(_line(x, top, x, bottom, _GRID_COLOR))
        parts.append(_text(x, bottom + 14, _number(tick), anchor="middle", size=_FONT - 1))
    parts.append(_line(left, bottom, left + ticks[-1] * scale, bottom))
    return parts


def _svg(width: float, height: float, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" '
        f'font-size="{_FONT}" fill="#222222">' + "".join(parts) + "</svg>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str = _AXIS_COLOR) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
        'stroke-width="1"/>'
    )


def _text(
    x: float,
    y: float,
    content: str,
    anchor: str = "start",
    size: int = _FONT,
    title: str | None = None,
) -> str:
    tip = f"<title>{_e(title)}</title>" if title else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
        f"{tip}{_e(content)}</text>"
    )


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3g}"
    return f"{int(value):,}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
