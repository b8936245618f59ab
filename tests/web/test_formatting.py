"""Jinja filters of web/formatting.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from web.formatting import points, relative, size, utc

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("delta, text", [
    (timedelta(days=3, hours=2), "in 3 days"),
    (timedelta(days=6, hours=23), "in 7 days"),
    (timedelta(days=1), "in 1 day"),
    (timedelta(hours=5), "in 5 hours"),
    (timedelta(minutes=-2), "2 minutes ago"),
    (timedelta(seconds=20), "in under a minute"),
    (timedelta(seconds=-20), "just now"),
    (-timedelta(days=2), "2 days ago"),
])
def test_relative(delta: timedelta, text: str) -> None:
    assert relative(NOW + delta, NOW) == text


def test_utc_renders_any_zone_in_utc() -> None:
    moment = datetime(2026, 3, 1, 23, 59, tzinfo=UTC).astimezone()
    assert utc(moment) == "Sun 01 Mar 2026, 23:59 UTC"
    assert utc(None) == "—"


def test_points_and_size() -> None:
    assert (points(100.0), points(12.3456), points(None)) == ("100", "12.35", "—")
    assert (size(512), size(4500), size(3 << 20)) == ("512 B", "4.4 KB", "3.0 MB")
