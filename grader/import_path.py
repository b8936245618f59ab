"""``[submission] python_path``: the handin folders on the sandbox's ``sys.path``.

The shared contract (spec.toml): ``python_path = ["", "mytorch"]`` puts those folders,
relative to the handin root, at the front of ``sys.path`` inside the sandbox, in that
order; ``""`` is the handin root, and the default is ``[""]``. The working directory is the
handin root. The agent already starts with the handin root first; other paths are set
here, on the trusted side, before any student import, with one ``setattr`` of the
sandbox's ``sys.path`` (idempotent: an agent that applies the contract itself ends with
the same list).
"""

from __future__ import annotations

import posixpath

from sandbox.session import Session

DEFAULT = ("",)


def apply_python_path(session: Session, python_path: tuple[str, ...]) -> None:
    """Put ``python_path`` first on the sandbox's sys.path (no student code runs)."""
    if tuple(python_path) == DEFAULT:
        return
    os_module = session.import_module("os")
    root = os_module.method("getcwd")
    sys_module = session.import_module("sys")
    current = sys_module.attr("path")
    if not isinstance(root, str) or not isinstance(current, list):
        return
    wanted = [posixpath.normpath(posixpath.join(root, entry)) for entry in python_path]
    rest = [entry for entry in current
            if isinstance(entry, str) and entry not in wanted and entry not in ("", root)]
    sys_module.set("path", [*wanted, *rest])
