"""Feedback on code that does not even load: a SyntaxError is reported once, from the
trusted side, with the student's file, line and caret; tracebacks from the sandbox lose
importlib's frames and every sandbox path.

The trusted side only parses the student's source (``ast.parse``, as the import policy
already does); nothing is executed.
"""

from __future__ import annotations

import ast
import re
import traceback
from collections.abc import Sequence
from pathlib import Path

MAX_SOURCE_BYTES = 2 << 20
FRAME = re.compile(r'^  File "(?P<path>[^"]*)", line (?P<line>\d+)(?P<rest>.*)$')


def syntax_errors(handin: Path, files: Sequence[str]) -> dict[str, str]:
    """``relative path -> message`` (file, line, the line itself and a caret, then the
    error) for every ``.py`` file of the handin that does not parse."""
    found: dict[str, str] = {}
    for relative in files:
        path = handin / relative
        if not relative.endswith(".py") or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > MAX_SOURCE_BYTES:
            continue
        source = path.read_bytes()
        try:
            ast.parse(source, filename=relative)
        except SyntaxError as exc:
            exc.filename = relative
            found[relative] = "".join(traceback.format_exception_only(exc)).rstrip()
        except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, deep nesting
            found[relative] = f'  File "{relative}"\n{type(exc).__name__}: {exc}'
    return found


def summary(errors: dict[str, str]) -> str:
    """The top-of-results section: each file that does not compile, once."""
    files = ", ".join(errors)
    lines = [f"These files do not compile, so nothing that imports them can run: {files}."]
    lines += [f"\n{message}" for message in errors.values()]
    return "\n".join(lines)


def clean_traceback(text: str, files: Sequence[str]) -> str:
    """``text`` (a traceback from the sandbox) with importlib's own frames dropped, paths
    of the handin made relative to it and any other path cut to its last three parts."""
    relative = sorted(files, key=len, reverse=True)
    lines = text.splitlines()
    kept: list[str] = []
    skip_source = False
    for line in lines:
        frame = FRAME.match(line)
        if frame is None:
            if not (skip_source and line.startswith("    ")):
                kept.append(line)
            skip_source = False
            continue
        path = frame["path"]
        skip_source = path.startswith("<frozen ") or "importlib" in path
        if skip_source:
            continue
        kept.append(f'  File "{shorten(path, relative)}", line {frame["line"]}{frame["rest"]}')
    return "\n".join(kept)


def shorten(path: str, relative: Sequence[str]) -> str:
    for candidate in relative:
        if path == candidate or path.endswith("/" + candidate):
            return candidate
    if path.startswith("/"):
        parts = [part for part in path.split("/") if part]
        return "…/" + "/".join(parts[-3:])
    return path
