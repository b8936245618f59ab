"""Capped capture of a stream: keep the head and the tail, count what was dropped; and
:func:`neutralise`, which makes captured text safe to show on any terminal or page."""

from __future__ import annotations

import re

# Everything a terminal could act on, or that reorders or hides text (issue 12.9): the C0
# controls but tab and newline (ESC starts ANSI sequences; CR, BS and VT overwrite what
# was printed), DEL and the C1 controls (U+009B is a one-character CSI), and the Unicode
# bidirectional and line controls ("Trojan Source").
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                    "\u202a-\u202e\u2066-\u2069]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralise(text: str) -> str:
    """``text`` with every control character written out as an escape (``\\x1b``), so
    that it prints as itself: tabs and newlines stay, ``\\r\\n`` becomes a newline."""
    return UNSAFE.sub(_escape, text.replace("\r\n", "\n"))


class CappedText:
    """Collects bytes up to ``cap``: the first half verbatim, then a rolling tail.

    Memory stays bounded however much the student prints; ``take`` returns what
    arrived since the previous ``take`` as text with an elision marker.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._reset()

    def _reset(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.cap // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        excess = len(self.tail) - self.cap // 2
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def take(self) -> str:
        """What arrived since the last call, control characters neutralised."""
        text = neutralise(self.head.decode("utf-8", "replace"))
        if self.dropped:
            text += f"\n…[{self.dropped} bytes elided]…\n"
        text += neutralise(self.tail.decode("utf-8", "replace"))
        self._reset()
        return text
