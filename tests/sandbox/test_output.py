"""Captured text (sandbox/output.py): capped, and neutralised for every surface (12.9)."""

from __future__ import annotations

from sandbox.output import UNSAFE, CappedText, neutralise


def test_control_characters_are_written_out_and_layout_kept() -> None:
    forged = "\x1b[2J\x1b[H100/100\r\n0/100\rok\tdone\b\x07\x9b2K\u202eevil\u2066\x00\x7f"
    shown = neutralise(forged)
    assert shown == ("\\x1b[2J\\x1b[H100/100\n0/100\\x0dok\tdone\\x08\\x07\\x9b2K\\u202eevil"
                     "\\u2066\\x00\\x7f")
    assert not UNSAFE.search(shown)
    assert neutralise("plain text, ümlauts and 中文\n") == "plain text, ümlauts and 中文\n"


def test_captured_output_is_neutralised_in_head_and_tail() -> None:
    capture = CappedText(64)
    capture.feed(b"\x1b[31m" + b"a" * 100 + b"\x1b[0m\r")
    text = capture.take()
    assert "\\x1b[31m" in text and "\\x1b[0m\\x0d" in text and "elided" in text
    assert not UNSAFE.search(text)
