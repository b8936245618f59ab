"""Telling an interface mismatch (no module X, no class Y, a constructor that takes other
arguments) apart from an exception raised inside the student's code.

The agent leaves its own frames out of a traceback, so an exception with no frame of a
student file was raised by the request itself: ``getattr`` found no such attribute, an
import found no such module, a call's arguments did not bind.
"""

from __future__ import annotations

import re

from sandbox.session import StudentException

_READING = re.compile(r"^reading (?P<owner>[\w.]+)\.(?P<name>\w+)$")
_IMPORT = re.compile(r"^import (?P<module>[\w.]+)$")


def student_frames(traceback: str) -> bool:
    """Whether ``traceback`` shows a frame of the student's files (not the import
    machinery's ``<frozen ...>`` ones)."""
    return any(line.lstrip().startswith("File ") and "<frozen " not in line
               for line in traceback.splitlines())


def mismatch(exc: StudentException) -> str | None:
    """The sentence for an interface mismatch, or None for the student's own exception."""
    if student_frames(exc.traceback):
        return None
    reading = _READING.match(exc.what)
    if exc.type_name == "AttributeError" and reading:
        return (f"Your {reading['owner']} has no {reading['name']} (the assignment's "
                f"interface asks for {reading['owner']}.{reading['name']}).")
    importing = _IMPORT.match(exc.what)
    if exc.type_name == "ModuleNotFoundError" and importing:
        module = importing["module"]
        return (f"Your handin has no module {module} ({module.replace('.', '/')}.py on the "
                f"import path): {exc.message}")
    if exc.type_name == "TypeError" and exc.what.endswith("()"):
        return (f"{exc.what} does not match the assignment's signature: {exc.message}")
    return None
