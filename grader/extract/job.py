"""One extraction: the common policy applied to every member, and the result."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from grader.extract.accounting import _Budget
from grader.extract.limits import EMPTY_ARCHIVE, Extracted, ExtractionError, ExtractLimits, _Member
from grader.extract.messages import _show
from grader.extract.names import _is_junk, _Registry, _split_name
from grader.extract.writing import _open_dir, _unwrap, _write_file


@dataclass
class _Job:
    """State shared by the format readers: limits, budget, claimed paths, output."""

    dest: Path
    limits: ExtractLimits
    archive_size: int
    budget: _Budget = field(init=False)
    registry: _Registry = field(default_factory=_Registry)
    files: list[str] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        self.budget = _Budget(self.limits, self.archive_size)

    def count_member(self) -> None:
        """Charge one entry (skipped ones included) against ``max_members``."""
        self.count += 1
        if self.count > self.limits.max_members:
            raise self.too_many()

    def too_many(self) -> ExtractionError:
        """The 'too many entries' error."""
        return ExtractionError(f"The archive has more than {self.limits.max_members} entries.")

    def add(self, member: _Member) -> None:
        """Apply the common policy to one entry and write it."""
        self.count_member()
        parts = _split_name(member.name, member.is_dir, self.limits)
        if parts is None or _is_junk(parts, member.is_dir):
            return
        shown = _show(member.name)
        if member.problem is not None:
            raise ExtractionError(f"{shown} {member.problem}")
        self.registry.claim(parts, member.is_dir, shown)
        if member.is_dir:
            os.close(_open_dir(self.dest, parts))
        else:
            _write_file(self.dest, parts, member.chunks(), self.budget)
            self.files.append("/".join(parts))

    def finish(self, expected_top: Collection[str]) -> Extracted:
        """Check for emptiness, strip a wrapping folder and describe the result."""
        if not self.files:
            raise ExtractionError(EMPTY_ARCHIVE)
        wrapper = self._wrapper(expected_top)
        files = self.files
        if wrapper is not None:
            _unwrap(self.dest, wrapper)
            files = [path[len(wrapper) + 1 :] for path in files]
        return Extracted(self.dest, tuple(sorted(files)), self.budget.written, wrapper)

    def _wrapper(self, expected_top: Collection[str]) -> str | None:
        """The single top-level folder to strip, if there is one."""
        top = self.registry.top_level()
        if len(top) != 1:
            return None
        name, is_dir = top[0]
        return name if is_dir and name not in expected_top else None
