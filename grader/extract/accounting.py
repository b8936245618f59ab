"""Counting every decompressed byte against the caps (size, members, ratio)."""

from __future__ import annotations

from grader.extract.limits import (
    _RATIO_GRACE_BYTES,
    ARCHIVE_BOMB,
    CHUNK,
    ExtractionError,
    ExtractLimits,
    _Readable,
)
from grader.extract.messages import _too_big


class _Budget:
    """Counts decompressed bytes read and file bytes written against the limits."""

    def __init__(self, limits: ExtractLimits, archive_size: int) -> None:
        self._limits = limits
        self._archive_size = max(archive_size, 1)
        self.read_cap = limits.max_total_bytes
        self.read = 0
        self.written = 0

    def count_read(self, n: int) -> None:
        """Account for ``n`` decompressed bytes pulled out of the archive."""
        self.read += n
        if self.read > self.read_cap:
            raise _too_big(self._limits)
        ratio_cap = self._limits.max_ratio * self._archive_size
        if self.read > _RATIO_GRACE_BYTES and self.read > ratio_cap:
            raise ExtractionError(ARCHIVE_BOMB)

    def count_written(self, n: int) -> None:
        """Account for ``n`` bytes about to be written to a file."""
        self.written += n
        if self.written > self._limits.max_total_bytes:
            raise _too_big(self._limits)


class _CountingReader:
    """A read-only stream for tarfile that charges every byte to a budget."""

    def __init__(self, inner: _Readable, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        """Read at most ``size`` (and at most one chunk of) bytes."""
        size = CHUNK if size < 0 else min(size, CHUNK)
        data = self._inner.read(size)
        self._pos += len(data)
        self._budget.count_read(len(data))
        return data

    def write(self, b: bytes, /) -> object:
        """Not supported: the stream is read-only."""
        raise OSError("read-only stream")

    def tell(self) -> int:
        """Bytes read so far."""
        return self._pos

    def seek(self, pos: int, /) -> object:
        """Not supported: the stream is forward-only."""
        raise OSError("stream is not seekable")

    def close(self) -> object:
        """Nothing to do; the caller owns the underlying stream."""
        return None
