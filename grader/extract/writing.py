"""Writing files and folders under the destination without following links."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from grader.extract.accounting import _Budget
from grader.extract.limits import _DIR_FLAGS, _FILE_FLAGS


def _open_dir(root: Path, parts: tuple[str, ...]) -> int:
    """Open (creating as needed, 0o755) ``root/parts``, never following symlinks."""
    fd = os.open(root, _DIR_FLAGS)
    for part in parts:
        try:
            created = _mkdir_at(fd, part)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
        if created:
            os.fchmod(fd, 0o755)
    return fd


def _mkdir_at(dir_fd: int, name: str) -> bool:
    """Create directory ``name`` under ``dir_fd``; return whether it was new."""
    try:
        os.mkdir(name, 0o755, dir_fd=dir_fd)
    except FileExistsError:
        return False
    return True


def _write_file(
    root: Path, parts: tuple[str, ...], chunks: Iterator[bytes], budget: _Budget
) -> None:
    """Create ``root/parts`` exclusively (0o644) and stream ``chunks`` into it."""
    dir_fd = _open_dir(root, parts[:-1])
    try:
        fd = os.open(parts[-1], _FILE_FLAGS, 0o644, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    with open(fd, "wb") as out:
        os.fchmod(fd, 0o644)
        for chunk in chunks:
            budget.count_written(len(chunk))
            out.write(chunk)


def _unwrap(dest: Path, wrapper: str) -> None:
    """Move the contents of ``dest/wrapper`` up into ``dest`` and remove the wrapper."""
    children = os.listdir(dest / wrapper)
    temp = ".unwrap"
    while temp in children:
        temp += "_"
    os.rename(dest / wrapper, dest / temp)
    for child in children:
        os.rename(dest / temp / child, dest / child)
    os.rmdir(dest / temp)
