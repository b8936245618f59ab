"""Is the container runtime under the Docker sandbox patched? (docs/security.md E6)

A container escape in runc or the NVIDIA Container Toolkit undoes every other layer of
the sandbox, so a worker checks their versions when it starts:

* runc fixed CVE-2024-21626 (leaked /proc/self/fd) in 1.1.12, and the November 2025
  escapes (CVE-2025-31133, CVE-2025-52565, CVE-2025-52881) in 1.2.8, 1.3.3 and 1.4.0;
* the NVIDIA Container Toolkit fixed its escapes (CVE-2025-23266 and earlier) in 1.17.8;
  it is only used in the ``nvidia`` GPU mode (device requests).

Distributions sometimes backport fixes without changing the upstream version number, so
a worker refuses by default but can be told to start with a warning instead
(``DLGRADE_RUNTIME_CHECK=warn``, see tasks.settings). Only the standard library here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

Version = tuple[int, int, int]

RUNC_FIXED: dict[tuple[int, int], Version] = {(1, 2): (1, 2, 8), (1, 3): (1, 3, 3)}
RUNC_ALL_FIXED_FROM: Version = (1, 4, 0)
TOOLKIT_FIXED: Version = (1, 17, 8)
RUNC_CVES = "CVE-2024-21626 and CVE-2025-31133/-52565/-52881"
NUMBERS = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse(text: str) -> Version | None:
    """The first x.y.z in ``text`` ("1.1.5+ds1" -> (1, 1, 5)); None without one."""
    found = NUMBERS.search(text)
    return None if found is None else (int(found[1]), int(found[2]), int(found[3]))


def runc_problem(version: str | None) -> str | None:
    """Why this runc version is not known to be patched; None when it is."""
    if not version:
        return "the Docker engine does not report its runc version"
    parsed = parse(version)
    if parsed is None:
        return f"runc's version {version!r} cannot be read"
    if parsed >= RUNC_ALL_FIXED_FROM or parsed >= RUNC_FIXED.get(parsed[:2], RUNC_ALL_FIXED_FROM):
        return None
    return (f"runc {version} predates the fixes for {RUNC_CVES} (in 1.2.8, 1.3.3 and 1.4.0 "
            "and later)")


def toolkit_problem(version_text: str | None) -> str | None:
    """Why this NVIDIA Container Toolkit (``nvidia-ctk --version`` output) is not known
    to be patched; None when it is."""
    if not version_text:
        return ("the NVIDIA Container Toolkit's version cannot be found (nvidia-ctk is not "
                "on this host's PATH)")
    parsed = parse(version_text)
    if parsed is None:
        return f"the NVIDIA Container Toolkit's version cannot be read from {version_text!r}"
    if parsed >= TOOLKIT_FIXED:
        return None
    shown = ".".join(map(str, parsed))
    return (f"the NVIDIA Container Toolkit {shown} predates the fixes for its container "
            "escapes (1.17.8 and later)")


def engine_runc_version(engine_version: dict[str, Any]) -> str | None:
    """runc's version from the engine's ``/version`` answer (its Components list)."""
    for component in engine_version.get("Components") or []:
        if isinstance(component, dict) and str(component.get("Name", "")).lower() == "runc":
            return str(component.get("Version") or "") or None
    return None


def toolkit_version_text() -> str | None:
    """``nvidia-ctk --version`` on this host (None when it is not installed)."""
    program = shutil.which("nvidia-ctk")
    if program is None:
        return None
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def runtime_problems(engine_version: dict[str, Any], *, oci_runtime: str | None,
                     nvidia_toolkit: bool) -> list[str]:
    """Everything not known to be patched: runc (unless another OCI runtime such as
    gVisor's runsc runs the containers) and, for device requests, the NVIDIA toolkit."""
    problems = []
    if oci_runtime in (None, "", "runc"):
        problems.append(runc_problem(engine_runc_version(engine_version)))
    if nvidia_toolkit:
        problems.append(toolkit_problem(toolkit_version_text()))
    return [p for p in problems if p]
