"""Sandbox runtimes (sandbox/runtimes.py): what a runtime is made of, where each part comes
from, and what a sandbox of each backend then sees."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from grader.grade import grade_directory, sandbox_config
from grader.outcomes import Outcome
from grader.spec import AssignmentSpec, RuntimeSpec, resolve_assignment
from sandbox.backend import LocalBackend, SandboxConfig, masks
from sandbox.process_backend import ProcessBackend
from sandbox.runtimes import (
    Environment,
    RuntimeRequest,
    RuntimeStore,
    RuntimeUnavailable,
    default_store,
    masked_locations,
    plan,
    worker_request,
)
from sandbox.session import Session, SessionDied, SessionLimits, StudentException
from tests.conftest import MYTORCH_SOLUTION


def fake_dist(site: Path, name: str, version: str, files: list[str],
              requires: tuple[str, ...] = ()) -> None:
    """A distribution as pip leaves it: METADATA, a RECORD and the files it lists."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = [f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("Metadata-Version: 2.1\n" + "\n".join(lines) + "\n")
    for file in files:
        if not file.startswith(".."):
            (site / file).parent.mkdir(parents=True, exist_ok=True)
            (site / file).write_text("x")
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in record))


def test_keys_and_requirements() -> None:
    both = RuntimeRequest("1.26.4", "2.13.0")
    assert both.key == "numpy-1.26.4-torch-2.13.0"
    assert both.requirements() == ["numpy==1.26.4", "torch==2.13.0"]
    assert RuntimeRequest.from_key("numpy-2.4.6") == RuntimeRequest("2.4.6")
    assert RuntimeRequest("2.4.6").describe() == "NumPy 2.4.6, no PyTorch"
    with pytest.raises(ValueError, match="exact release"):
        RuntimeRequest(">=1.26")


def test_matching_distributions_are_reused_with_what_they_need(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    fake_dist(site, "numpy", "1.26.4", ["numpy/__init__.py", "numpy.libs/blas.so",
                                        "../../../bin/f2py", "__pycache__/x.pyc"])
    fake_dist(site, "torch", "2.13.0+cpu", ["torch/__init__.py", "functorch/__init__.py",
                                            "torch-extra.pth"],
              requires=("filelock", "sympy>=1.13", 'triton; platform_system == "Nowhere"',
                        'opt-einsum; extra == "opt"'))
    fake_dist(site, "filelock", "3.0", ["filelock/__init__.py"])
    fake_dist(site, "sympy", "1.14", ["sympy/__init__.py", "isympy.py"])
    worker = Environment([str(site)])
    lacking, chosen = plan(RuntimeRequest("1.26.4", "2.13.0"), worker)
    assert lacking == []
    assert sorted((d.name, o) for d, o in chosen) == [
        ("filelock", "worker"), ("numpy", "worker"), ("sympy", "worker"), ("torch", "worker")]
    names = sorted(e.name for d, _ in chosen for e in d.entries)
    assert names == ["filelock", "filelock-3.0.dist-info", "functorch", "isympy.py", "numpy",
                     "numpy-1.26.4.dist-info", "numpy.libs", "sympy", "sympy-1.14.dist-info",
                     "torch", "torch-2.13.0+cpu.dist-info"]  # no bin, __pycache__ or .pth
    assert plan(RuntimeRequest("2.0.0"), worker)[0] == ["numpy==2.0.0"]
    assert plan(RuntimeRequest("1.26.4", "2.5.0"), worker)[0] == ["torch==2.5.0"]


def test_a_distribution_that_would_show_dlgrade_is_never_used(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    fake_dist(site, "numpy", "1.26.4", ["numpy/__init__.py", "grader/grade.py"])
    assert Environment([str(site)]).get("numpy") is None
    assert plan(RuntimeRequest("1.26.4"), Environment([str(site)]))[0] == ["numpy==1.26.4"]


def test_a_store_that_may_not_build_refuses_with_a_sentence(tmp_path: Path) -> None:
    store = RuntimeStore(tmp_path, build=False)
    with pytest.raises(RuntimeUnavailable, match="DLGRADE_RUNTIME_BUILD=never"):
        store.resolve(RuntimeRequest("1.0.0"))


def test_a_missing_runtime_is_a_fault_of_the_host_not_a_verdict(
        mytorch_spec: AssignmentSpec, tmp_path: Path) -> None:
    spec = mytorch_spec.model_copy(update={"runtime": RuntimeSpec(numpy="1.0.0")})
    backend = LocalBackend(RuntimeStore(tmp_path, build=False))
    result = grade_directory(spec, MYTORCH_SOLUTION, backend)
    assert result.infrastructure_error is not None
    assert "numpy==1.0.0" in result.infrastructure_error
    assert all(t.outcome is Outcome.ERROR and t.score == 0 for t in result.tests)


def test_the_default_runtime_is_the_workers_and_drops_a_forbidden_torch(tmp_path: Path) -> None:
    assert worker_request(torch=False) == RuntimeRequest(numpy.__version__)
    numpy_only = resolve_assignment("rnn-gru-cells")  # forbids torch, no [runtime]
    config = sandbox_config(numpy_only, tmp_path)
    assert config.runtime is None and config.runtime_request().torch is None
    assert config.python_path == ("", "mytorch", "hw3")
    assert str(numpy_only.folder) in config.hidden_paths


def test_a_declared_runtime_and_import_path_reach_the_sandbox(
        mytorch_spec: AssignmentSpec, tmp_path: Path) -> None:
    config = sandbox_config(mytorch_spec, tmp_path)  # [runtime] numpy 1.26.4, torch 2.13.0
    assert config.runtime == RuntimeRequest(numpy="1.26.4", torch="2.13.0")
    assert config.python_path == ("mytorch", "hw2", "")
    assert config.allow_imports_in == ("hw2/hw2.py",)


def test_site_packages_and_dlgrade_are_masked_and_nested_masks_dropped(tmp_path: Path) -> None:
    located = masked_locations()
    assert any(path.endswith("site-packages") for path in located)
    assert str(Path(__file__).resolve().parents[2] / "grader") in located
    outer = tmp_path / "site-packages"
    (outer / "grader").mkdir(parents=True)
    found = masks([str(outer), str(outer / "grader")], [(str(tmp_path), "/x")])
    assert [m.target for m in found] == ["/x/site-packages"]


PROBE = """
import importlib, sys

def versions():
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ImportBlocker"]
    found = {}
    for name in ("numpy", "torch", "grader", "pydantic"):
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "?")
        except ImportError as exc:
            found[name] = type(exc).__name__
    return found
"""


def start(backend: LocalBackend | ProcessBackend, folder: Path,
          runtime: RuntimeRequest | None) -> Session:
    folder.mkdir()
    (folder / "probe.py").write_text(PROBE)
    folder.chmod(0o755)
    config = SandboxConfig(folder, runtime=runtime, deny_imports=("torch",))
    return backend.start(config, SessionLimits(call_timeout_s=120))


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_pinned_numpy_is_built_once_and_torch_is_absent(
        process_backend: ProcessBackend, tmp_path: Path) -> None:
    """numpy = "1.26.4" without torch: the sandbox runs NumPy 1.26.4 (built into the store,
    or reused where the worker has it) and has no torch even with the blocker removed."""
    backend = ProcessBackend(default_store())
    with start(backend, tmp_path / "a", RuntimeRequest("1.26.4")) as session:
        seen = session.import_module("probe").method("versions", timeout=120)
    assert seen == {"numpy": "1.26.4", "torch": "ModuleNotFoundError",
                    "grader": "ModuleNotFoundError", "pydantic": "ModuleNotFoundError"}
    with start(LocalBackend(default_store()), tmp_path / "b", RuntimeRequest("1.26.4")) as s:
        assert s.import_module("probe").method("versions", timeout=120)["numpy"] == "1.26.4"


@pytest.mark.sandbox
def test_the_import_path_puts_handin_folders_first_in_order(
        process_backend: ProcessBackend, tmp_path: Path) -> None:
    handin = tmp_path / "handin"
    (handin / "mytorch").mkdir(parents=True)
    (handin / "hw2").mkdir()
    (handin / "mytorch" / "loss.py").write_text("WHERE = 'mytorch'\n")
    (handin / "loss.py").write_text("WHERE = 'root'\n")
    scan_source = "from loss import *\nimport os\nCWD = os.getcwd()\n"
    (handin / "hw2" / "mlp_scan.py").write_text(scan_source)
    for path in (handin, *handin.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    config = SandboxConfig(handin, python_path=("mytorch", ""))
    with process_backend.start(config, SessionLimits(call_timeout_s=60)) as session:
        scan = session.import_module("hw2.mlp_scan")
        assert (scan.attr("WHERE"), scan.attr("CWD")) == ("mytorch", "/submission")


@pytest.mark.sandbox
def test_an_import_path_outside_the_handin_never_starts(
        process_backend: ProcessBackend, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with pytest.raises(SessionDied) as died:
        process_backend.start(SandboxConfig(tmp_path, python_path=("../x",)), SessionLimits())
    assert died.value.reason == "start" and "not a folder of the handin" in died.value.detail


@pytest.mark.sandbox
def test_student_exceptions_reach_the_grader_neutralised(
        process_backend: ProcessBackend, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "loud.py").write_text("raise ValueError('\\x1b[2Jall passed\\r100/100')\n")
    (tmp_path / "loud.py").chmod(0o644)
    with process_backend.start(SandboxConfig(tmp_path), SessionLimits()) as session:
        with pytest.raises(StudentException) as raised:
            session.import_module("loud")
    assert raised.value.message == "\\x1b[2Jall passed\\x0d100/100"


def test_student_code_can_ask_who_it_is_without_a_passwd_entry(tmp_path: Path) -> None:
    """The sandbox's uid has no passwd entry in the images; getpass.getuser() (PyTorch's
    torch.export and inductor caches call it) must still answer, or every verified-model
    test fails in torch_capture (seen on the GPU proof's machine)."""
    from sandbox.backend import SandboxConfig, sandbox_env

    env = sandbox_env(SandboxConfig(submission_dir=tmp_path), "/tmp")
    assert env["LOGNAME"] and env["USER"]
