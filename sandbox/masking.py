"""Which host paths a sandbox must not read: every copy of some package files on this host.

The sandbox mounts the host runtime read-only, packages and all, so student code could
otherwise read files the grader keeps from it (held-out labels, docs/security.md C1, G1).
The grader names the files (``grader.data.HIDDEN_IN_PACKAGES``); this module finds each
copy of them on the import path and in the system's package folders. The backends then
mask each path in the sandbox with an empty file or folder (``sandbox.backend.masks``);
the trusted side reads them as usual.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

# Where other copies of a package may live, visible with the runtime the sandbox mounts.
PACKAGE_ROOTS = ("/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
                 "/usr/local/lib/python3*/*-packages")


def hidden_paths(package_files: Iterable[tuple[str, str]], extra: Iterable[Path] = ()
                 ) -> tuple[str, ...]:
    """Every copy on this host of each (package, path inside it) in ``package_files``, and
    each path of ``extra`` that exists: resolved and sorted."""
    found = set(package_copies(tuple(package_files)))
    for path in extra:
        if path.exists():
            found.add(os.path.realpath(path))
    return tuple(sorted(found))


@cache
def package_copies(package_files: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The resolved paths of every copy of each (package, path inside it) that exists: where
    the import system finds the package, on sys.path, and under :data:`PACKAGE_ROOTS`."""
    found: set[str] = set()
    roots = [entry for entry in sys.path if entry and os.path.isdir(entry)]
    roots += [match for pattern in PACKAGE_ROOTS for match in glob.glob(pattern)]
    for package, inside in package_files:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        locations += [os.path.join(root, package) for root in roots]
        for location in locations:
            candidate = os.path.join(location, inside)
            if os.path.isfile(candidate):
                found.add(os.path.realpath(candidate))
    return tuple(sorted(found))
