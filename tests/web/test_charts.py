"""web/charts.py: bins, and SVG that parses, has its bars, and escapes labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from web.charts import Bar, Bin, Rate, bar_chart, bins, histogram, rate_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on malformed XML or an unescaped label
    assert root.tag == f"{SVG}svg"
    return root


def bars_of(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]


def test_bins_cover_zero_to_max_and_count_every_value() -> None:
    found = bins([0, 9.99, 10, 55, 99, 100, 100], 100, 10)
    assert [b.count for b in found] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 3]  # 100 is in the last bin
    assert (found[0].low, found[0].high, found[-1].high) == (0, 10, 100)
    assert sum(b.count for b in found) == 7


def test_bins_clamp_values_outside_the_range() -> None:
    found = bins([-3, 120], 10, 5)
    assert [b.count for b in found] == [1, 0, 0, 0, 1]


def test_bins_of_a_zero_maximum_still_make_a_chart() -> None:
    assert [b.count for b in bins([0, 0], 0, 2)] == [2, 0]
    with pytest.raises(ValueError, match="at least one bin"):
        bins([1], 10, 0)


def test_histogram_has_one_bar_per_bin_with_heights_in_proportion() -> None:
    root = parse(histogram([Bin(0, 5, 1), Bin(5, 10, 4), Bin(10, 15, 0)],
                           title="Best", desc="d"))
    heights = [float(r.get("height", "0")) for r in bars_of(root)]
    assert len(heights) == 3
    assert heights[1] == pytest.approx(4 * heights[0]) and heights[2] == 0
    tips = [r.findtext(f"{SVG}title") for r in bars_of(root)]
    assert tips[1] == "5 to 10 points: 4 students"


def test_chart_is_accessible() -> None:
    root = parse(bar_chart([Bar("a", 1)], title="Uploads", desc="per hour"))
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "Uploads"
    assert desc is not None and desc.text == "per hour"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_labels_are_escaped() -> None:
    nasty = '<script>alert("x")</script> & "q"'
    svg = rate_chart([Rate(nasty, 1, 2)], title=nasty, desc=nasty)
    assert "<script>" not in svg
    root = parse(svg)
    assert root.findtext(f"{SVG}title") == nasty
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert any(t and t.startswith('<script>alert("x")') for t in texts)
    parse(bar_chart([Bar(nasty, 3, tip=nasty, css='bar" onload="x')], title="t", desc="d",
                    marker=0.5, marker_label=nasty))


def test_rate_chart_widths_follow_the_pass_rate_in_the_given_order() -> None:
    root = parse(rate_chart([Rate("1 hard", 1, 4), Rate("2 easy", 4, 4), Rate("3 none", 0, 0)],
                            title="Pass", desc="d"))
    widths = [float(r.get("width", "0")) for r in bars_of(root)]
    assert widths[1] == pytest.approx(4 * widths[0]) and widths[2] == 0
    assert [r.get("class") for r in bars_of(root)] == ["bar low", "bar", "bar low"]
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels[:2] == ["1 hard", "25 %"]


def test_marker_is_drawn_where_asked() -> None:
    root = parse(bar_chart([Bar(str(i), i) for i in range(4)], title="t", desc="d",
                           marker=2, marker_label="due"))
    [line] = [x for x in root.iter(f"{SVG}line") if x.get("class") == "marker"]
    second, third = bars_of(root)[1], bars_of(root)[2]
    at = float(line.get("x1", "0"))
    assert float(second.get("x", "0")) + float(second.get("width", "0")) < at
    assert at < float(third.get("x", "0"))  # between the bars of hours 1 and 2
    assert line.findtext(f"{SVG}title") == "due"


def test_same_input_same_svg() -> None:
    assert bar_chart([Bar("a", 1)], title="t", desc="d") == bar_chart([Bar("a", 1)], title="t",
                                                                       desc="d")
