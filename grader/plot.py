"""Tiny renderings of training curves: a text sparkline and table for test output, and a
self-contained SVG string for the web. No plotting library, no state."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

BLOCKS = "▁▂▃▄▅▆▇█"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def sparkline(values: Sequence[float | None], low: float | None = None,
              high: float | None = None) -> str:
    """One block character per value, scaled to [low, high] (default: the data's range);
    a missing or non-finite value is shown as a space."""
    finite = _finite(values)
    if not finite:
        return " " * len(values)
    low = min(finite) if low is None else low
    high = max(finite) if high is None else high
    span = high - low
    chars = []
    for value in values:
        if value is None or not math.isfinite(value):
            chars.append(" ")
            continue
        level = 0.0 if span <= 0 else (min(max(value, low), high) - low) / span
        chars.append(BLOCKS[min(int(level * len(BLOCKS)), len(BLOCKS) - 1)])
    return "".join(chars)


def epoch_table(losses: Sequence[float | None], accuracies: Sequence[float],
                seconds: Sequence[float] = ()) -> str:
    """Per-epoch training loss and held-out accuracy, with a sparkline of each."""
    lines = [f"{'epoch':>5}  {'train loss':>10}  {'held-out acc':>12}" +
             ("  seconds" if seconds else "")]
    for i, (loss, acc) in enumerate(zip(losses, accuracies, strict=True)):
        loss_text = "n/a" if loss is None or not math.isfinite(loss) else f"{loss:.4f}"
        line = f"{i + 1:>5}  {loss_text:>10}  {acc:>11.1%}"
        if seconds:
            line += f"  {seconds[i]:7.1f}"
        lines.append(line)
    lines.append(f"loss {sparkline(losses)}   accuracy {sparkline(accuracies, 0.0, 1.0)}")
    return "\n".join(lines)


def svg_curves(series: Mapping[str, Sequence[float | None]], *, width: int = 320,
               height: int = 160, title: str = "") -> str:
    """An SVG line chart of named series over epochs (1..N), each scaled to its own range
    and labelled with its last value. Safe to inline: every text is escaped."""
    pad = 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f"<title>{escape(title or ', '.join(series))}</title>",
             f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" '
             f'fill="none" stroke="#ccc"/>']
    for index, (name, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = _points(values, width, height, pad)
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                         f'points="{" ".join(points)}"/>')
        last = _finite(values)[-1:] or [float("nan")]
        parts.append(f'<text x="{pad + 4 + index * 110}" y="{pad - 6}" font-size="11" '
                     f'fill="{colour}">{escape(name)}: {last[0]:.4g}</text>')
    epochs = max((len(values) for values in series.values()), default=0)
    if epochs:
        parts.append(f'<text x="{pad}" y="{height - 6}" font-size="10" fill="#666">epoch 1</text>'
                     f'<text x="{width - pad}" y="{height - 6}" font-size="10" fill="#666" '
                     f'text-anchor="end">epoch {epochs}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _points(values: Sequence[float | None], width: int, height: int, pad: int) -> list[str]:
    finite = _finite(values)
    if not finite:
        return []
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = []
    for i, value in enumerate(values):
        if value is None or not math.isfinite(value):
            continue
        y = height - pad - (value - low) / span * (height - 2 * pad)
        points.append(f"{pad + i * step:.1f},{y:.1f}")
    return points
