"""Text and SVG renderings of training curves (grader/plot.py)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from grader.plot import epoch_table, sparkline, svg_curves


def test_sparkline_scales_and_marks_missing_values() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"
    assert sparkline([0.5, None, math.nan, 2.0], 0.0, 1.0) == "▅  █"
    assert sparkline([3.0, 3.0]) == "▁▁" and sparkline([None]) == " "


def test_epoch_table() -> None:
    text = epoch_table([1.25, None], [0.5, 0.875], [1.0, 2.5])
    lines = text.splitlines()
    assert lines[0].split() == ["epoch", "train", "loss", "held-out", "acc", "seconds"]
    assert lines[1].split() == ["1", "1.2500", "50.0%", "1.0"]
    assert lines[2].split() == ["2", "n/a", "87.5%", "2.5"]
    assert lines[3] == "loss ▁    accuracy ▅█"


def test_svg_is_well_formed_and_escapes_names() -> None:
    svg = svg_curves({"loss <train>": [2.0, 1.0, 0.5], "acc": [0.1, None, 0.9]}, title="a&b")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 2
    assert "loss &lt;train&gt;: 0.5" in svg and "<title>a&amp;b</title>" in svg
