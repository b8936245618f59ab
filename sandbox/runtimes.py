"""Sandbox runtimes: the Python packages student code sees, apart from the worker's own.

A sandbox sees exactly three things of Python: the base interpreter's standard library,
the agent (``/agent``) and one **runtime**, a site folder holding NumPy (always), PyTorch
(only when the runtime names a version) and what they need, nothing else. Never the
worker's virtualenv or site-packages: with a non-editable install (``pip install .``,
the service image) those hold dlgrade itself, the reference solutions and the answer
keys (issue 12.1).

An assignment asks for a runtime with ``[runtime] numpy = "X.Y.Z"`` and optionally
``torch = "X.Y.Z"`` (no torch key: torch is not in that sandbox at all). Without a
``[runtime]`` table it gets the worker's own NumPy, and the worker's own PyTorch unless
its import policy forbids torch (:func:`worker_request`).

How a runtime is made (:class:`RuntimeStore`):

1. every distribution the request pins (``numpy==X``, ``torch==Y``) that the worker's own
   environment has at that version is **reused in place**: its files (as its RECORD
   lists them) are bound read-only into the sandbox's site folder, one bind per
   top-level entry, nothing copied (a PyTorch install is about 1.5 GB);
2. the pinned distributions the worker lacks are installed once with pip into the store
   (``<store>/<python tag>/<key>/``, built in a scratch folder and renamed into place
   under a lock, so concurrent workers build it once), with their dependencies;
3. the dependencies of the reused distributions come from the worker's environment
   (as its own PyTorch uses them), unless the store's build provides them.

Inside the sandbox the runtime is the folder :data:`SANDBOX_SITE`, last on ``sys.path``;
the interpreter runs with ``-I -S``, so no site-packages folder of the base interpreter
is on the path, and the backends mask those folders too (:func:`masked_locations`).
The production images (``sandbox/images/``) carry the same runtimes, installed with
``pip install --target /opt/dlgrade/runtimes/<key>`` from :meth:`RuntimeRequest.
requirements` (``python -m sandbox.runtimes requirements KEY`` prints them), and list
their keys in the label ``dlgrade.runtimes``.

A runtime that is missing and cannot be built (no index reachable, building switched
off) is a fault of the host: :class:`RuntimeUnavailable` says which runtime and how to
provide it, the backend turns it into a sandbox that could not start, and the grading
job retries instead of storing a verdict.
"""

from __future__ import annotations

import fcntl
import glob
import importlib.metadata as metadata
import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

SANDBOX_SITE = "/runtime"  # the runtime's site folder inside the sandbox
IMAGE_RUNTIMES = "/opt/dlgrade/runtimes"  # where the production images install them
# dlgrade's own top-level packages, and the built-in course folders (``assignments/``:
# solutions, specs, course checks) installed beside them: never part of a runtime,
# whatever a RECORD says, and masked in every sandbox.
DLGRADE_PACKAGES = ("grader", "sandbox", "reference", "store", "tasks", "web", "dlgrade",
                    "migrations", "assignments")
SKIPPED_ENTRIES = ("__pycache__", "bin")
SYSTEM_SITE_PATTERNS = ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages",
                        "/usr/lib64/python3*/*-packages", "/usr/local/lib64/python3*/*-packages")
VERSION = re.compile(r"^\d+(\.\d+){1,3}$")
BUILD_TIMEOUT_S = 1800.0


class RuntimeUnavailable(Exception):
    """A runtime cannot be provided on this host; the message says which and how to fix it."""


@dataclass(frozen=True)
class RuntimeRequest:
    """What an assignment's sandbox runs: a NumPy version and, optionally, a PyTorch one."""

    numpy: str
    torch: str | None = None

    def __post_init__(self) -> None:
        for name, version in (("numpy", self.numpy), ("torch", self.torch)):
            if version is not None and not VERSION.match(version):
                raise ValueError(f"{name} = {version!r}: give an exact release like '1.26.4'")

    @property
    def key(self) -> str:
        """A name for the runtime, safe in paths and image labels: numpy-1.26.4-torch-2.13.0."""
        return f"numpy-{self.numpy}" + (f"-torch-{self.torch}" if self.torch else "")

    def requirements(self) -> list[str]:
        """What pip installs for it (the production images install exactly these)."""
        return [f"numpy=={self.numpy}"] + ([f"torch=={self.torch}"] if self.torch else [])

    def describe(self) -> str:
        return f"NumPy {self.numpy}, " + (f"PyTorch {self.torch}" if self.torch else "no PyTorch")

    @classmethod
    def from_key(cls, key: str) -> RuntimeRequest:
        found = re.fullmatch(r"numpy-([0-9.]+)(?:-torch-([0-9.]+))?", key)
        if found is None:
            raise ValueError(f"{key!r} is not a runtime key like numpy-1.26.4-torch-2.13.0")
        return cls(found[1], found[2])


@dataclass(frozen=True)
class Entry:
    """One top-level name of the runtime's site folder and the host path it shows."""

    name: str
    source: str


@dataclass(frozen=True)
class Runtime:
    """A runtime made concrete on this host: the entries of its site folder."""

    request: RuntimeRequest
    entries: tuple[Entry, ...]
    # (distribution, version, "worker" | "built") for the staff log and the docs.
    distributions: tuple[tuple[str, str, str], ...] = ()

    def binds(self, site_dir: str = SANDBOX_SITE) -> list[tuple[str, str]]:
        """(host source, sandbox target) pairs that assemble the site folder."""
        return [(entry.source, f"{site_dir}/{entry.name}") for entry in self.entries]

    def describe(self) -> str:
        parts = [f"{name} {version} ({origin})" for name, version, origin in self.distributions]
        return f"{self.request.key}: " + ", ".join(parts)


def python_tag() -> str:
    """Which interpreter a built runtime is for: cp311-x86_64."""
    return f"cp{sys.version_info.major}{sys.version_info.minor}-{os.uname().machine}"


def worker_version(name: str) -> str | None:
    """The public version of a distribution in the worker's own environment."""
    try:
        return Version(metadata.version(name)).public
    except (metadata.PackageNotFoundError, InvalidVersion):
        return None


def worker_request(*, torch: bool) -> RuntimeRequest:
    """The runtime of an assignment without ``[runtime]``: the worker's own NumPy, and its
    own PyTorch when ``torch`` (the assignment's policy does not forbid it)."""
    numpy = worker_version("numpy")
    if numpy is None:
        raise RuntimeUnavailable("this worker has no NumPy installed, so an assignment "
                                 "without a [runtime] table cannot run")
    return RuntimeRequest(numpy, worker_version("torch") if torch else None)


def base_python() -> str:
    """The interpreter the sandbox runs: the base one, never a virtualenv's wrapper
    (whose pyvenv.cfg would add the worker's site-packages)."""
    executable = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(executable)


def masked_locations() -> tuple[str, ...]:
    """Host folders a sandbox must never read even where a bind of the system shows them:
    every site-packages folder of the base interpreter and of this worker, the user site,
    dlgrade's own packages and its distribution metadata (existing ones, resolved)."""
    found: set[str] = set()
    prefixes = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix}
    candidates: list[str] = list(site.getsitepackages(sorted(prefixes)))
    candidates += [sysconfig.get_path("purelib"), sysconfig.get_path("platlib"),
                   site.getusersitepackages(), *sys.path[1:]]
    # Any Python's package folders the system's binds show (a distribution's python3-torch
    # in /usr/lib/python3/dist-packages would undo a NumPy-only runtime).
    for pattern in SYSTEM_SITE_PATTERNS:
        candidates += glob.glob(pattern)
    for path in candidates:
        if path and os.path.isdir(path) and _is_site_dir(path):
            found.add(os.path.realpath(path))
    found.update(dlgrade_locations())
    return tuple(sorted(found))


def _is_site_dir(path: str) -> bool:
    name = os.path.basename(os.path.normpath(path))
    return name in ("site-packages", "dist-packages")


def dlgrade_locations() -> tuple[str, ...]:
    """Where this worker's dlgrade packages and distribution metadata live."""
    found: set[str] = set()
    for package in DLGRADE_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            if os.path.isdir(location):
                found.add(os.path.realpath(location))
    try:
        dist = metadata.distribution("dlgrade")
    except metadata.PackageNotFoundError:
        return tuple(sorted(found))
    info = getattr(dist, "_path", None)
    if info is not None and os.path.isdir(str(info)):
        found.add(os.path.realpath(str(info)))
    return tuple(sorted(found))


# -- distributions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    name: str  # canonical
    version: str
    requires: tuple[str, ...]
    entries: tuple[Entry, ...]


_DISTS: dict[str, Dist | None] = {}  # by dist-info folder: a RECORD is read once a process


def _cached_dist(distribution: metadata.Distribution) -> Dist | None:
    where = str(getattr(distribution, "_path", "")) or None
    if where is None:
        return _dist(distribution)
    if where not in _DISTS:
        _DISTS[where] = _dist(distribution)
    return _DISTS[where]


def _dist(distribution: metadata.Distribution) -> Dist | None:
    """A distribution with its top-level entries, or None when it cannot be bound safely
    (no RECORD, or an entry that is a dlgrade package)."""
    name = canonicalize_name(distribution.metadata["Name"] or "")
    files = distribution.files
    if not name or files is None:
        return None
    tops: set[str] = set()
    for path in files:
        parts = path.parts
        if not parts or parts[0] in ("..", "") or parts[0] in SKIPPED_ENTRIES:
            continue
        if len(parts) == 1 and parts[0].endswith(".pth"):
            continue
        tops.add(parts[0])
    if tops & set(DLGRADE_PACKAGES):
        return None
    root = Path(str(distribution.locate_file("")))
    entries = []
    for top in sorted(tops):
        source = root / top
        if source.exists():
            entries.append(Entry(top, os.path.realpath(source)))
    return Dist(name, distribution.version, tuple(distribution.requires or ()), tuple(entries))


class Environment:
    """The distributions on some paths (default: the worker's ``sys.path``; the first of a
    name wins, as for imports). Their files are read only when a runtime needs them."""

    def __init__(self, paths: Sequence[str] | None = None) -> None:
        found = metadata.distributions() if paths is None else metadata.distributions(
            path=list(paths))
        self._found: dict[str, metadata.Distribution] = {}
        for distribution in found:
            try:
                name = canonicalize_name(distribution.metadata["Name"] or "")
            except (KeyError, TypeError):
                continue
            if name:
                self._found.setdefault(name, distribution)
        self._dists: dict[str, Dist | None] = {}

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def get(self, name: str) -> Dist | None:
        name = canonicalize_name(name)
        if name not in self._dists:
            distribution = self._found.get(name)
            self._dists[name] = None if distribution is None else _cached_dist(distribution)
        return self._dists[name]

    def names(self) -> list[str]:
        return sorted(self._found)


_WORKER: dict[tuple[str, ...], Environment] = {}


def worker_environment() -> Environment:
    """The worker's own distributions (read once per import path of the process)."""
    key = tuple(sys.path)
    if key not in _WORKER:
        _WORKER[key] = Environment()
    return _WORKER[key]


def _needed(requirement: str) -> Requirement | None:
    """A requirement that applies here without extras, or None."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return None
    if parsed.marker is not None and not parsed.marker.evaluate({"extra": ""}):
        return None
    return parsed


def _satisfies(dist: Dist | None, requirement: Requirement) -> bool:
    if dist is None:
        return False
    try:
        return requirement.specifier.contains(Version(dist.version), prereleases=True)
    except InvalidVersion:
        return False


def plan(request: RuntimeRequest, worker: Environment,
         built: Environment | None = None) -> tuple[list[str], list[tuple[Dist, str]]]:
    """(pinned requirements the worker lacks, chosen distributions with their origin).

    The chosen list is the closure of the pinned distributions: from ``built`` first (the
    store's build of what was lacking), else from the worker's environment."""
    built = built or Environment([])
    pinned = [Requirement(text) for text in request.requirements()]
    lacking = [str(r) for r in pinned
               if not _satisfies(built.get(canonicalize_name(r.name)), r)
               and not _satisfies(worker.get(canonicalize_name(r.name)), r)]
    if lacking:
        return lacking, []
    chosen: dict[str, tuple[Dist, str]] = {}
    queue: list[Requirement] = list(pinned)
    while queue:
        requirement = queue.pop(0)
        name = canonicalize_name(requirement.name)
        if name in chosen:
            continue
        dist, origin = built.get(name), "built"  # one consistent pip resolution: it wins
        if dist is None:
            dist, origin = worker.get(name), "worker"
        if dist is None:
            raise RuntimeUnavailable(
                f"the runtime {request.key} needs {requirement}, which neither this worker "
                "nor the runtime store has")
        chosen[name] = (dist, origin)
        queue += [r for r in map(_needed, dist.requires) if r is not None]
    return [], list(chosen.values())


# -- the store -----------------------------------------------------------------------------


@dataclass
class RuntimeStore:
    """Resolves runtime requests on this host, building what the worker lacks into ``root``.

    ``build=False`` (production workers that should only use prepared runtimes) refuses
    instead; ``pip_args`` are passed to every ``pip install`` (an index, find-links)."""

    root: Path
    build: bool = True
    pip_args: tuple[str, ...] = ()
    _cache: dict[RuntimeRequest, Runtime] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def resolve(self, request: RuntimeRequest) -> Runtime:
        with self._lock:
            if request not in self._cache:
                self._cache[request] = self._resolve(request)
            return self._cache[request]

    def _resolve(self, request: RuntimeRequest) -> Runtime:
        worker = worker_environment()
        lacking, _ = plan(request, worker)
        built = Environment([])
        if lacking:
            built = Environment([str(self._built(lacking))])
        lacking, chosen = plan(request, worker, built)
        if lacking:
            raise RuntimeUnavailable(f"the runtime store's build for {request.key} does not "
                                     f"provide {', '.join(lacking)}")
        entries: dict[str, Entry] = {}
        for dist, _ in chosen:
            for entry in dist.entries:
                entries.setdefault(entry.name, entry)
        forbidden = set(dlgrade_locations())
        for entry in entries.values():
            if any(entry.source == p or p.startswith(entry.source.rstrip("/") + "/")
                   for p in forbidden):
                raise RuntimeUnavailable(f"refusing runtime {request.key}: its entry "
                                         f"{entry.name} would show dlgrade's own files")
        versions = tuple((d.name, d.version, origin) for d, origin in chosen)
        return Runtime(request, tuple(entries[name] for name in sorted(entries)), versions)

    def folder_for(self, lacking: Sequence[str]) -> Path:
        key = "_".join(sorted(re.sub(r"[^A-Za-z0-9.]+", "-", r) for r in lacking))
        return self.root / python_tag() / key

    def _built(self, lacking: Sequence[str]) -> Path:
        folder = self.folder_for(lacking)
        if (folder / ".complete").is_file():
            return folder
        if not self.build:
            raise RuntimeUnavailable(
                f"this worker has no runtime with {', '.join(lacking)} and building runtimes "
                "is switched off (DLGRADE_RUNTIME_BUILD=never): prepare it with "
                f"'dlgrade runtimes build' or install {', '.join(lacking)} in the worker")
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f"{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it
            if not (folder / ".complete").is_file():
                self._pip_install(lacking, folder)
        return folder

    def _pip_install(self, requirements: Sequence[str], folder: Path) -> None:
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-input",
                   "--disable-pip-version-check", "--no-compile", "--only-binary=:all:",
                   "--target", str(scratch), *self.pip_args, *requirements]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=BUILD_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise RuntimeUnavailable(f"building a runtime with {', '.join(requirements)} "
                                     f"failed: {exc}") from None
        if done.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            tail = (done.stderr or done.stdout).strip()[-600:]
            raise RuntimeUnavailable(f"pip could not install {', '.join(requirements)} for a "
                                     f"sandbox runtime: {tail}")
        for path in (scratch, *scratch.rglob("*")):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644 | (path.stat().st_mode & 0o111))
        (scratch / ".complete").write_text("\n".join(requirements) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)

    def view(self, runtime: Runtime) -> Path:
        """A host folder of symbolic links to the runtime's entries: its site folder for
        the unisolated backend, which cannot bind."""
        folder = self.root / python_tag() / "views" / _digest(runtime)
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".view-", dir=folder.parent))
            for entry in runtime.entries:
                os.symlink(entry.source, scratch / entry.name)
            try:
                scratch.rename(folder)
            except OSError:  # made meanwhile by another process
                shutil.rmtree(scratch, ignore_errors=True)
        return folder


def _digest(runtime: Runtime) -> str:
    import hashlib

    text = "\n".join(f"{e.name}={e.source}" for e in runtime.entries)
    return f"{runtime.request.key}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def default_store_root() -> Path:
    """Where runtimes are built when the caller names no folder (``dlgrade check``)."""
    return Path.home() / ".cache" / "dlgrade" / "runtimes"


_DEFAULT: RuntimeStore | None = None


def default_store() -> RuntimeStore:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = RuntimeStore(default_store_root())
    return _DEFAULT


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m sandbox.runtimes requirements KEY``: the pip requirements of a runtime
    (what the production images install)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "requirements":
        print("\n".join(RuntimeRequest.from_key(args[1]).requirements()))
        return 0
    print("usage: python -m sandbox.runtimes requirements KEY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
