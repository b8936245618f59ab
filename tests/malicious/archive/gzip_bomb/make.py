"""A8: a .tar.gz whose one extra member expands to 256 MB of zeros (about 250 KB compressed)"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from tests.malicious.archive_members import solution_members

SIZE = 256 << 20


def make(solution: Path, out: Path) -> None:
    """Streamed: neither the tar nor the zeros are ever held in memory."""
    with gzip.open(out, "wb", 6) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for info, data in solution_members(solution):
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("hw2/weights.bin")
        info.size = SIZE
        tar.addfile(info, _Zeros(SIZE))


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left, 1 << 20)
        self.left -= n
        return bytes(n)
