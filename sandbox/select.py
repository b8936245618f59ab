"""Choosing a backend by name: ``process``, ``none`` or ``auto``."""

from __future__ import annotations

from sandbox.backend import Backend, LocalBackend
from sandbox.process_backend import ProcessBackend, unavailable_reason

BACKENDS = ("auto", "process", "none")


class BackendUnavailable(Exception):
    """The requested sandbox cannot run on this machine; the message says why."""


def choose_backend(name: str) -> Backend:
    """The backend called ``name``; ``auto`` is the best this machine offers."""
    if name == "none":
        return LocalBackend()
    if name in ("process", "auto"):
        reason = unavailable_reason()
        if reason is None:
            return ProcessBackend()
        raise BackendUnavailable(
            f"The process sandbox cannot run on this machine ({reason}). "
            "Use --sandbox none to grade your own code without isolation."
        )
    raise BackendUnavailable(f"Unknown sandbox {name!r}; choose one of {', '.join(BACKENDS)}.")
