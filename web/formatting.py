"""Jinja filters: dates in the course's time zone (``when``; UTC in messages),
relative times ("in 3 days"), points and sizes.

``when`` writes a ``<time datetime=...>`` element in the time zone the view chose
(:func:`use_timezone`, the course's; else UTC); ``static/times.js`` rewrites these to
the browser's own zone when the user asked for that on the settings page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, g, has_app_context
from markupsafe import Markup, escape

from grader.plot import svg_curves

UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(utc=when, when=when, relative=relative, points=points,
                                 size=size, curves_svg=curves_svg, local_input=local_input,
                                 curves_alt=curves_alt, curves_table=curves_table)
    app.jinja_env.globals["timezone_name"] = timezone_name


def zone(name: str | None) -> ZoneInfo:
    """The time zone ``name``, or UTC when it is empty or unknown."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def use_timezone(name: str | None) -> None:
    """Show this request's times in ``name`` (a course's IANA zone)."""
    g.timezone = name or "UTC"


def timezone_name() -> str:
    return str(g.get("timezone") or "UTC") if has_app_context() else "UTC"


def shown(moment: datetime, name: str | None = None) -> str:
    """``Thu 03 Dec 2026, 14:00 CET`` in the zone ``name`` (default: the request's)."""
    local = moment.astimezone(zone(name or timezone_name()))
    return local.strftime("%a %d %b %Y, %H:%M ") + (local.tzname() or "UTC")


def when(moment: datetime | None, name: str | None = None) -> Markup:
    if moment is None:
        return Markup("—")
    text = shown(moment, name)
    return Markup('<time datetime="{}">{}</time>').format(moment.astimezone(UTC).isoformat(),
                                                          escape(text))


def local_input(moment: datetime | None, name: str | None = None) -> str:
    """A ``datetime-local`` input's value in the zone ``name`` (default: the request's)."""
    if moment is None:
        return ""
    return moment.astimezone(zone(name or timezone_name())).strftime("%Y-%m-%dT%H:%M")


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


def curves_alt(curves: dict[str, list[float | None]] | None) -> str:
    from web.curves import describe

    return describe(curves or {})


def curves_table(curves: dict[str, list[float | None]] | None) -> Markup:
    """The curves' numbers as a table (what the chart shows, for screen readers too)."""
    if not curves:
        return Markup("")
    names = list(curves)
    epochs = max(len(values) for values in curves.values())
    head = "".join(f"<th scope=\"col\" class=\"num\">{escape(n.replace('_', ' '))}</th>"
                   for n in names)
    rows = []
    for i in range(epochs):
        cells = "".join(f"<td class=\"num\">{_figure(curves[n], i)}</td>" for n in names)
        rows.append(f"<tr><th scope=\"row\">{i + 1}</th>{cells}</tr>")
    return Markup(f"<table class=\"list small\"><thead><tr><th scope=\"col\">epoch</th>{head}"
                  f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _figure(values: list[float | None], index: int) -> str:
    value = values[index] if index < len(values) else None
    return "—" if value is None else f"{value:.4g}"


def curves_svg(curves: dict[str, list[float | None]] | None) -> Markup:
    """A test's training curves as an inline SVG (every label escaped by svg_curves)."""
    if not curves:
        return Markup("")
    title = "Training curves: " + ", ".join(name.replace("_", " ") for name in curves)
    named = {name.replace("_", " "): values for name, values in curves.items()}
    return Markup(svg_curves(named, width=360, height=170, title=title))
