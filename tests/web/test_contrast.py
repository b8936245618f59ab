"""WCAG AA contrast of the stylesheet's colour pairs (text on its background): 4.5:1 for
body text, as https://www.w3.org/TR/WCAG21/#contrast-minimum defines the ratio."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "web/static/style.css"
PAIRS = [("ink", "bg"), ("ink", "card"), ("muted", "bg"), ("muted", "card"),
         ("accent", "card"), ("accent", "bg"), ("ok", "ok-bg"), ("bad", "bad-bg"),
         ("wait", "wait-bg"), ("ok", "card"), ("bad", "card")]


def colours() -> dict[str, str]:
    root = re.search(r":root \{(.*?)\}", CSS.read_text(), re.S)
    assert root is not None
    found = dict(re.findall(r"--([\w-]+): (#[0-9a-fA-F]{3,6})\b", root.group(1)))
    return {name: "#" + "".join(c * 2 for c in v[1:]) if len(v) == 4 else v
            for name, v in found.items()}


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(first: str, second: str) -> float:
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("text, background", PAIRS)
def test_text_colours_meet_wcag_aa(text: str, background: str) -> None:
    found = colours()
    assert ratio(found[text], found[background]) >= 4.5, (text, background)


def test_white_on_the_accent_button() -> None:
    assert ratio("#ffffff", colours()["accent"]) >= 4.5


def test_the_check_would_notice_a_pale_colour() -> None:
    assert ratio("#9aa0a6", "#ffffff") < 4.5
