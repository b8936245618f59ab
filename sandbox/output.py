"""Capped capture of a stream: keep the head and the tail, count what was dropped."""

from __future__ import annotations


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
        text = self.head.decode("utf-8", "replace")
        if self.dropped:
            text += f"\n…[{self.dropped} bytes elided]…\n"
        text += self.tail.decode("utf-8", "replace")
        self._reset()
        return text
