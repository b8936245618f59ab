"""sandbox/runtime_versions.py: is the container runtime patched? (docs/security.md E6)"""

from __future__ import annotations

import pytest

from sandbox import runtime_versions
from sandbox.runtime_versions import runc_problem, runtime_problems, toolkit_problem


@pytest.mark.parametrize(("version", "patched"), [
    ("1.1.5+ds1", False), ("1.1.12", False), ("1.2.7", False), ("1.2.8", True),
    ("1.3.2", False), ("1.3.3", True), ("1.4.0-rc.3", True), ("1.4.1", True), ("2.0.0", True),
])
def test_runc_versions(version: str, patched: bool) -> None:
    problem = runc_problem(version)
    assert (problem is None) is patched, problem
    if not patched:
        assert problem == (f"runc {version} predates the fixes for CVE-2024-21626 and "
                           "CVE-2025-31133/-52565/-52881 (in 1.2.8, 1.3.3 and 1.4.0 and later)")


def test_an_unknown_runc_is_not_trusted() -> None:
    assert runc_problem(None) == "the Docker engine does not report its runc version"
    assert runc_problem("dev") == "runc's version 'dev' cannot be read"


@pytest.mark.parametrize(("text", "problem"), [
    ("NVIDIA Container Toolkit CLI version 1.17.8\ncommit: abc", None),
    ("NVIDIA Container Toolkit CLI version 1.18.0", None),
    ("NVIDIA Container Toolkit CLI version 1.17.7", "the NVIDIA Container Toolkit 1.17.7 "
     "predates the fixes for its container escapes (1.17.8 and later)"),
    (None, "the NVIDIA Container Toolkit's version cannot be found (nvidia-ctk is not on "
     "this host's PATH)"),
])
def test_toolkit_versions(text: str | None, problem: str | None) -> None:
    assert toolkit_problem(text) == problem


ENGINE = {"Version": "28.2.2", "Components": [
    {"Name": "Engine", "Version": "28.2.2"}, {"Name": "containerd", "Version": "1.7.24"},
    {"Name": "runc", "Version": "1.1.5+ds1"}]}


def test_runtime_problems_read_the_engines_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime_versions.engine_runc_version(ENGINE) == "1.1.5+ds1"
    assert runtime_problems(ENGINE, oci_runtime=None, nvidia_toolkit=False) == [
        runc_problem("1.1.5+ds1")]
    assert runtime_problems(ENGINE, oci_runtime="runsc", nvidia_toolkit=False) == []  # gVisor
    monkeypatch.setattr(runtime_versions, "toolkit_version_text",
                        lambda: "NVIDIA Container Toolkit CLI version 1.17.3")
    assert runtime_problems(ENGINE, oci_runtime="runsc", nvidia_toolkit=True) == [
        toolkit_problem("NVIDIA Container Toolkit CLI version 1.17.3")]
