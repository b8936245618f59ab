"""Charts drawn on the server as inline SVG: no CDN, no JavaScript library.

Pure functions: numbers in, an SVG string out. Every label goes through
:func:`xml.sax.saxutils.escape` (attribute values through ``quoteattr``), every chart
has a ``<title>`` and ``<desc>`` for screen readers, and every bar its own ``<title>``
(a tooltip with the exact figure). Sizes are in user units; the ``viewBox`` lets CSS
scale the chart to its container.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

WIDTH = 640
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 44, 12, 12, 46


@dataclass(frozen=True)
class Bar:
    """One bar: ``label`` on the axis, ``value`` its height, ``tip`` its tooltip."""

    label: str
    value: float
    tip: str = ""
    css: str = "bar"


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int


def bins(values: Sequence[float], high: float, number: int = 10) -> list[Bin]:
    """``number`` equal bins over ``0..high``; the last one includes ``high``. Values
    below 0 count in the first bin and values above ``high`` in the last (a late
    penalty floors at 0; a stored total cannot exceed the maximum, but if it did it
    should still be counted, not dropped)."""
    if number < 1:
        raise ValueError("a histogram needs at least one bin")
    high = high if high > 0 else 1.0
    width = high / number
    counts = [0] * number
    for value in values:
        index = min(number - 1, max(0, math.floor(value / width)))
        counts[index] += 1
    return [Bin(round(i * width, 6), round((i + 1) * width, 6), c) for i, c in enumerate(counts)]


def _num(value: float) -> str:
    return f"{round(value, 2):g}"


def _open(title: str, desc: str, height: int, css: str, width: int = WIDTH) -> tuple[str, str]:
    # Deterministic ids (same input, same SVG); distinct charts have distinct titles.
    ident = "chart-" + hashlib.sha1(f"{title}\0{desc}".encode()).hexdigest()[:10]
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class={quoteattr(css)} role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" '
        f'aria-labelledby="{ident}-t {ident}-d">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>'
    )
    return head, "</svg>"


def _rect(x: float, y: float, w: float, h: float, css: str, tip: str) -> str:
    return (f'<rect class={quoteattr(css)} x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}"><title>{escape(tip)}</title></rect>')


def _text(x: float, y: float, text: str, anchor: str = "middle", css: str = "label") -> str:
    return (f'<text class={quoteattr(css)} x="{x:.1f}" y="{y:.1f}" '
            f'text-anchor="{anchor}">{escape(text)}</text>')


def _nice_top(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above ``value`` (the y-axis top)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(step * power) for step in (1, 2, 5, 10) if step * power >= value)


def bar_chart(bars: Sequence[Bar], *, title: str, desc: str, y_label: str = "",
              marker: float | None = None, marker_label: str = "", label_every: int = 1,
              height: int = 240, width: int = WIDTH, slanted: bool = False) -> str:
    """Vertical bars. ``marker`` (a fractional bar index) draws a dashed vertical line,
    e.g. the due date on a time axis; ``label_every`` thins crowded x labels (a time
    axis); ``slanted`` turns the x labels 40° so that every one fits. A smaller
    ``width`` gives larger text when the chart is drawn in a narrow column."""
    # Slanted labels need room below the plot: the picture grows, the plot keeps its size.
    head, tail = _open(title, desc, height + (22 if slanted else 0), "chart bars", width)
    plot_w = width - PLOT_LEFT - PLOT_RIGHT
    plot_h = height - PLOT_TOP - PLOT_BOTTOM
    top = _nice_top(max((b.value for b in bars), default=0.0))
    parts = [head, _axes(top, plot_h, y_label, width)]
    slot = plot_w / max(1, len(bars))
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top
        x = PLOT_LEFT + i * slot
        parts.append(_rect(x + slot * 0.1, PLOT_TOP + plot_h - h, slot * 0.8, h, bar.css,
                           bar.tip or f"{bar.label}: {_num(bar.value)}"))
        if i % max(1, label_every) == 0:
            if slanted:
                parts.append(_slanted(x + slot / 2 + 3, PLOT_TOP + plot_h + 12, bar.label))
            else:
                parts.append(_text(x + slot / 2, PLOT_TOP + plot_h + 16, bar.label))
    if marker is not None:
        x = PLOT_LEFT + marker * slot
        parts.append(f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{PLOT_TOP}" '
                     f'y2="{PLOT_TOP + plot_h}"><title>{escape(marker_label)}</title></line>')
        parts.append(_text(x + 4, PLOT_TOP + 12, marker_label, "start", "marker-label"))
    parts.append(tail)
    return "".join(parts)


def _slanted(x: float, y: float, text: str) -> str:
    return (f'<text class="label" x="{x:.1f}" y="{y:.1f}" text-anchor="end" '
            f'transform="rotate(-40 {x:.1f} {y:.1f})">{escape(text)}</text>')


def _axes(top: float, plot_h: float, y_label: str, width: int) -> str:
    """The x axis, and y ticks at 0, the middle and the top (the middle only when it is
    a whole number: the bars count things)."""
    bottom = PLOT_TOP + plot_h
    lines = [f'<line class="axis" x1="{PLOT_LEFT}" x2="{width - PLOT_RIGHT}" '
             f'y1="{bottom:.1f}" y2="{bottom:.1f}"/>']
    for fraction in (0.0, 0.5, 1.0):
        if fraction == 0.5 and top % 2:
            continue
        y = bottom - plot_h * fraction
        lines.append(_text(PLOT_LEFT - 6, y + 4, _num(top * fraction), "end", "tick"))
        if fraction:
            lines.append(f'<line class="grid" x1="{PLOT_LEFT}" x2="{width - PLOT_RIGHT}" '
                         f'y1="{y:.1f}" y2="{y:.1f}"/>')
    if y_label:
        middle = PLOT_TOP + plot_h / 2
        lines.append(f'<text class="axis-label" transform="translate(12 {middle:.1f}) '
                     f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    return "".join(lines)


def histogram(counts: Sequence[Bin], *, title: str, desc: str, unit: str = "students",
              width: int = WIDTH) -> str:
    bars = [Bar(f"{_num(b.low)}–{_num(b.high)}", b.count,
                f"{_num(b.low)} to {_num(b.high)} points: {b.count} {unit}")
            for b in counts]
    return bar_chart(bars, title=title, desc=desc, y_label=unit, width=width,
                     slanted=len(counts) * 64 > width)  # every bin labelled


@dataclass(frozen=True)
class Rate:
    label: str
    passed: int
    total: int

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


def rate_chart(rates: Sequence[Rate], *, title: str, desc: str) -> str:
    """Horizontal bars, one per row, 0..100 %; the order is the caller's."""
    row, label_w = 24, 230
    height = PLOT_TOP + row * max(1, len(rates)) + 24
    head, tail = _open(title, desc, height, "chart rates")
    span = WIDTH - label_w - 60
    parts = [head]
    for i, rate in enumerate(rates):
        y = PLOT_TOP + i * row
        percent = 100 * rate.fraction
        tip = f"{rate.label}: {rate.passed} of {rate.total} passed ({percent:.0f} %)"
        label = rate.label if len(rate.label) <= 34 else rate.label[:33] + "…"
        parts.append(_text(label_w - 8, y + row * 0.65, label, "end"))
        parts.append(f'<rect class="track" x="{label_w}" y="{y + 3}" width="{span}" '
                     f'height="{row - 6}"/>')
        css = "bar low" if rate.fraction < 0.5 else "bar"
        parts.append(_rect(label_w, y + 3, span * rate.fraction, row - 6, css, tip))
        parts.append(_text(label_w + span + 6, y + row * 0.65, f"{percent:.0f} %", "start"))
    parts.append(tail)
    return "".join(parts)
