"""Member names: splitting, character and length rules, junk, unique ignoring case."""

from __future__ import annotations

import unicodedata

from grader.extract.limits import _JUNK_DIRS, ExtractionError, ExtractLimits
from grader.extract.messages import _show


def _split_name(name: str, is_dir: bool, limits: ExtractLimits) -> tuple[str, ...] | None:
    """Validate an entry name; return its components, or None for the archive root."""
    shown = _show(name)
    _check_characters(name, shown)
    if name.startswith("/"):
        raise ExtractionError(f"{shown}: absolute paths are not allowed")
    rel = name
    while rel.startswith("./"):
        rel = rel[2:]
    if is_dir and rel.endswith("/"):
        rel = rel[:-1]
    if rel in ("", ".") and is_dir:
        return None
    parts = tuple(rel.split("/"))
    if ".." in parts:
        raise ExtractionError(f"{shown}: paths may not contain '..'")
    if "" in parts or "." in parts:
        raise ExtractionError(f"{shown}: paths may not contain empty or '.' components")
    _check_lengths(rel, parts, shown, limits)
    return parts


def _check_characters(name: str, shown: str) -> None:
    """Reject undecodable names, control characters and backslashes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ExtractionError(f"{shown}: file names must be valid UTF-8") from None
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ExtractionError(f"{shown}: file names may not contain control characters")
    if "\\" in name:
        raise ExtractionError(f"{shown}: paths may not contain backslashes")


def _check_lengths(rel: str, parts: tuple[str, ...], shown: str, limits: ExtractLimits) -> None:
    """Enforce the component length, path length and depth limits."""
    if any(len(part.encode("utf-8")) > limits.max_name_bytes for part in parts):
        raise ExtractionError(
            f"{shown}: a file or folder name is longer than {limits.max_name_bytes} bytes"
        )
    if len(rel.encode("utf-8")) > limits.max_path_bytes:
        raise ExtractionError(f"{shown}: the path is longer than {limits.max_path_bytes} bytes")
    if len(parts) > limits.max_depth:
        raise ExtractionError(f"{shown}: folders are nested more than {limits.max_depth} deep")


def _is_junk(parts: tuple[str, ...], is_dir: bool) -> bool:
    """macOS metadata and Python bytecode, which are skipped silently."""
    if any(part in _JUNK_DIRS for part in parts):
        return True
    if is_dir:
        return False
    leaf = parts[-1]
    return leaf == ".DS_Store" or leaf.startswith("._") or leaf.endswith((".pyc", ".pyo"))


class _Registry:
    """Paths claimed so far, keyed case- and normalisation-insensitively."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, bool]] = {}

    def claim(self, parts: tuple[str, ...], is_dir: bool, shown: str) -> None:
        """Record an entry and its parent folders, rejecting any collision."""
        for i in range(1, len(parts)):
            self._add("/".join(parts[:i]), True, shown)
        self._add("/".join(parts), is_dir, shown)

    def _add(self, path: str, is_dir: bool, shown: str) -> None:
        key = unicodedata.normalize("NFC", path).casefold()
        previous = self._seen.get(key)
        if previous is None:
            self._seen[key] = (path, is_dir)
        elif not (is_dir and previous == (path, True)):
            raise ExtractionError(
                f"{shown}: duplicate path (names must be unique, ignoring upper/lower case)"
            )

    def top_level(self) -> list[tuple[str, bool]]:
        """The top-level entries as ``(name, is_dir)``."""
        return [entry for entry in self._seen.values() if "/" not in entry[0]]
