"""Jinja filters: UTC dates, relative times ("in 3 days"), points and sizes."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from markupsafe import Markup

from grader.plot import svg_curves

UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(utc=utc, relative=relative, points=points, size=size,
                                 curves_svg=curves_svg)


def utc(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")


def relative(moment: datetime | None, now: datetime | None = None) -> str:
    """``in 3 days`` / ``2 hours ago``: the largest unit that fits, rounded (6 days
    23 hours reads "in 7 days")."""
    if moment is None:
        return ""
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    for unit, length in UNITS:
        if abs(seconds) >= length:
            count = round(abs(seconds) / length)
            phrase = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {phrase}" if seconds > 0 else f"{phrase} ago"
    return "in under a minute" if seconds > 0 else "just now"


def points(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{round(value, 2):g}"


def size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1 << 20:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1 << 20):.1f} MB"


def curves_svg(curves: dict[str, list[float | None]] | None) -> Markup:
    """A test's training curves as an inline SVG (every label escaped by svg_curves)."""
    if not curves:
        return Markup("")
    title = "Training curves: " + ", ".join(name.replace("_", " ") for name in curves)
    named = {name.replace("_", " "): values for name, values in curves.items()}
    return Markup(svg_curves(named, width=360, height=170, title=title))
