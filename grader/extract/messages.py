"""The sentences a student sees, and turning library errors into them."""

from __future__ import annotations

import lzma
import unicodedata
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from grader.extract.limits import _DATA_ERRORS, _MIB, NOT_AN_ARCHIVE, ExtractionError, ExtractLimits


def _too_big(limits: ExtractLimits) -> ExtractionError:
    mb = f"{limits.max_total_bytes / _MIB:g}"
    return ExtractionError(f"The archive expands beyond {mb} MB; the limit is {mb} MB.")


def _corrupt(reason: str) -> ExtractionError:
    return ExtractionError(f"The archive is corrupt or truncated: {reason}.")


def _reason(exc: BaseException) -> str:
    """A short, student-readable reason for a low-level read or decode error."""
    if isinstance(exc, EOFError):
        return "unexpected end of data"
    if isinstance(exc, zlib.error | lzma.LZMAError):
        return "bad compressed data"
    if isinstance(exc, RecursionError):
        return "too many nested headers"
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def _show(name: str) -> str:
    """Render an entry name for a message: printable, valid text, not too long."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    if not text:
        return "(empty name)"
    return text if len(text) <= 120 else text[:117] + "..."


@contextmanager
def _reading() -> Iterator[None]:
    """Turn errors from reading or decoding archive bytes into a 'corrupt' message."""
    try:
        yield
    except _DATA_ERRORS as exc:
        raise _corrupt(_reason(exc)) from exc


@contextmanager
def _opening() -> Iterator[None]:
    """Turn errors while opening an archive into the 'not an archive' message."""
    try:
        yield
    except _DATA_ERRORS as exc:
        raise ExtractionError(NOT_AN_ARCHIVE) from exc
