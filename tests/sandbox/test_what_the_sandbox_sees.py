"""The sandbox sees the agent, its runtime and the handin: never dlgrade, a solution, a spec
or a key (issue 12.1), even when dlgrade is installed non-editable next to NumPy.

A worker is built the way ``pip install .`` builds it (the service image): dlgrade's
packages, the reference solutions and every ``spec.toml`` in the same site-packages
folder as NumPy. From that worker (a separate interpreter that imports dlgrade from that
folder, not from this checkout), a handin's code walks the whole filesystem it can see
inside a sandbox of each backend: it hashes every file whose size matches a file of a
solution, a spec or a dlgrade module, looks for spec.toml, dist-info and dlgrade package
folders by name, and tries to import them. Controls show the walk works: it finds the
handin's own file by hash and the runtime's NumPy, and walks thousands of files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy
import pytest

from sandbox.backend import AGENT_FILES
from sandbox.runtimes import DLGRADE_PACKAGES
from tests.conftest import ROOT, require
from tests.services import docker_with_local_image

PROBE = '''
import hashlib, importlib, os, stat

SKIP = {"/proc", "/sys", "/dev"}
NAMES = {"spec.toml", "expect.toml", "bug_variants.py"}
# A folder is one of dlgrade's packages when it holds that package's own module.
MARKERS = {"grader": "grade.py", "sandbox": "session.py", "reference": "numpy_layers.py",
           "store": "leases.py", "tasks": "jobs.py", "web": "uploads.py", "dlgrade": "cli.py",
           "migrations": "env.py", "assignments": "mytorch-cnn"}


def scan(targets, packages):
    """targets: {size: {sha256: label}}; packages: dlgrade's top-level package names."""
    sizes = {int(size): hashes for size, hashes in targets.items()}
    found, named, walked = [], [], 0
    for top, dirs, files in os.walk("/", followlinks=False):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SKIP]
        for name in dirs:
            path = os.path.join(top, name)
            if name.startswith("dlgrade") and name.endswith((".dist-info", ".egg-info")):
                named.append(path)
            if name in packages and os.path.exists(os.path.join(path, MARKERS.get(name, "-"))):
                named.append(path)
        for name in files:
            path = os.path.join(top, name)
            walked += 1
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if name in NAMES or name.startswith("__editable__"):
                named.append(path)
            hashes = sizes.get(info.st_size)
            if not hashes:
                continue
            try:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            except OSError:
                continue
            if digest in hashes:
                found.append([path, hashes[digest]])
    imported = []
    for module in [*(p for p in packages if p != "sandbox"), "sandbox.session",
                   "grader.spec"]:  # "sandbox" is the agent itself
        try:
            importlib.import_module(module)
            imported.append(module)
        except Exception:
            pass
    return {"found": found, "named": sorted(set(named)), "walked": walked,
            "imported": imported}
'''

WORKER = '''
import json, sys
from pathlib import Path

import grader
from grader.grade import grade_path, sandbox_config
from grader.spec import resolve_assignment
from sandbox.session import SessionLimits

backend_name, handin, targets = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
if backend_name == "docker":
    from sandbox.docker_backend import DockerBackend
    backend = DockerBackend()
else:
    from sandbox.process_backend import ProcessBackend
    backend = ProcessBackend()
spec = resolve_assignment("mytorch-cnn")
with backend.start(sandbox_config(spec, handin), SessionLimits(call_timeout_s=600)) as session:
    report = session.import_module("probe").method(
        "scan", targets, sys.argv[4].split(","), timeout=600)
solution = spec.folder / "solution"
graded = spec.model_copy(update={"tests": spec.tests[:2]})
result = grade_path(graded, solution, backend)
report["grader_file"] = grader.__file__
report["score"] = [result.score, result.max_score]
print("REPORT " + json.dumps(report))
'''


def build_worker(folder: Path) -> Path:
    """A worker interpreter whose site-packages holds dlgrade (non-editable) and NumPy;
    the rest of what the trusted side needs comes from this virtualenv through a .pth
    path line (which, unlike a site folder, runs no editable-install hook)."""
    source = folder / "source"
    source.mkdir()
    for name in (*DLGRADE_PACKAGES, "pyproject.toml", "README.md"):
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, source / name)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-compile", "--target", str(site),
                    str(source)], check=True, cwd=folder)
    numpy_site = Path(numpy.__file__).resolve().parent.parent
    for entry in numpy_site.iterdir():
        if entry.name.startswith("numpy"):
            shutil.copytree(entry, site / entry.name, copy_function=_link_or_copy)
    (site / "trusted-side.pth").write_text(f"{numpy_site}\n")
    assert (site / "assignments" / "mytorch-cnn" / "spec.toml").is_file()
    return venv / "bin" / "python"


def _link_or_copy(source: str, target: str) -> None:
    try:
        Path(target).hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)


def targets(site: Path, control: Path) -> dict[int, dict[str, str]]:
    """{size: {sha256: label}} of every file of the installed reference assignments and
    dlgrade modules (the agent's own files excepted), plus the handin's control file."""
    table: dict[int, dict[str, str]] = {}

    def add(path: Path, label: str) -> None:
        data = path.read_bytes()
        if data.strip():  # an empty __init__.py matches every empty file
            table.setdefault(len(data), {})[hashlib.sha256(data).hexdigest()] = label

    agent = {(ROOT / "sandbox" / name).read_bytes() for name in AGENT_FILES}
    for package in DLGRADE_PACKAGES:
        for path in (site / package).rglob("*"):
            if path.is_file() and path.read_bytes() not in agent:
                add(path, f"dlgrade:{path.relative_to(site)}")
    add(control, "control")
    return table


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_worker(tmp_path_factory.mktemp("non-editable"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", [
    pytest.param("process", marks=pytest.mark.sandbox),
    pytest.param("docker", marks=pytest.mark.docker),
])
def test_a_non_editable_worker_shows_the_sandbox_nothing_of_dlgrade(
    backend: str, worker: Path, tmp_path: Path
) -> None:
    if backend == "docker":
        docker_with_local_image()
    else:
        from sandbox.process_backend import unavailable_reason

        reason = unavailable_reason()
        require(reason is None, f"the process sandbox ({reason})")
    handin = tmp_path / "handin"
    handin.mkdir()
    (handin / "probe.py").write_text(PROBE)
    handin.chmod(0o755)
    site = worker.parent.parent / "lib" / \
        f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    table = targets(site, handin / "probe.py")
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    done = subprocess.run(
        [str(worker), "-I", str(script), backend, str(handin), json.dumps(table),
         ",".join(DLGRADE_PACKAGES)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("REPORT "))
    assert report["grader_file"].startswith(str(site)), "the worker imported this checkout"
    scored, out_of = report["score"]  # the first two tests, in the handout version detected
    assert out_of > 0 and scored == out_of, report["score"]  # full marks, graded from the install
    # Controls: the walk reads files and finds what it should.
    assert report["walked"] > 1000
    assert ["/submission/probe.py", "control"] in report["found"]
    leaks = [hit for hit in report["found"] if hit[1] != "control"]
    assert leaks == [], f"the sandbox can read dlgrade's files: {leaks[:10]}"
    assert report["named"] == [], f"the sandbox can see: {report['named'][:10]}"
    assert report["imported"] == [], f"the sandbox can import: {report['imported']}"
