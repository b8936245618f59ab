"""docker-compose.yml, the Dockerfiles and the documentation, checked statically: every
service's command parses with the real ``dlgrade`` parser, its environment is made of
known Settings and builds valid Settings, web and workers share the database, broker,
data dir and secret, workers see the Docker socket and their host paths at the same
paths, the GPU worker reserves GPUs, the Dockerfiles copy only what
``scripts/build_images.py`` stages (nothing of dlgrade into the sandbox image), the web
role has no torch, every setting is documented and no page links outside the
repository. With ``docker-compose`` installed (marker ``docker``), its own ``config``
validates the file too. The images are built and run by ``tests/fullstack``."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from dlgrade.cli import build_parser
from tasks.settings import Settings
from tests.conftest import ROOT, require

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SANDBOX_DOCKERFILE = ROOT / "sandbox/images/Dockerfile"
BUILD_SCRIPT = ROOT / "scripts/build_images.py"
CONFIGURATION = ROOT / "docs/configuration.md"
SHARED = ("DLGRADE_DATABASE_URL", "DLGRADE_BROKER_URL", "DLGRADE_DATA_DIR", "DLGRADE_SECRET_KEY")
SETTINGS_KEYS = {f"DLGRADE_{f.name.upper()}" for f in fields(Settings)}
DLGRADE_SERVICES = ("migrate", "web", "worker-cpu", "worker-gpu")
TEST_VALUES = {"POSTGRES_PASSWORD": "pw", "DLGRADE_SECRET_KEY": "s" * 64}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with test values."""
    def value(match: re.Match[str]) -> str:
        name, kind, default = match.groups()
        if name in TEST_VALUES:
            return TEST_VALUES[name]
        assert kind == "-", f"${{{name}}} has no default and no test value"
        return default
    return INTERPOLATION.sub(value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8")))
    assert isinstance(loaded, dict)
    return loaded


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found = compose["services"][name]
    assert isinstance(found, dict)
    return found


def environment(compose: dict[str, Any], name: str) -> dict[str, str]:
    env = service(compose, name).get("environment", {})
    assert isinstance(env, dict), f"{name}: environment must be a mapping"
    return {key: str(value) for key, value in env.items()}


def command(compose: dict[str, Any], name: str) -> list[str]:
    raw = service(compose, name)["command"]
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def test_the_services_are_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"postgres", "redis", *DLGRADE_SERVICES}
    assert service(compose, "migrate")["restart"] == "no"
    for name in ("web", "worker-cpu", "worker-gpu"):
        depends = service(compose, name)["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", DLGRADE_SERVICES)
def test_each_command_parses_with_the_real_cli(compose: dict[str, Any], name: str) -> None:
    argv = command(compose, name)
    assert argv[0] == "dlgrade"
    args = build_parser().parse_args(argv[1:])  # SystemExit (a failure) when it does not
    assert callable(args.run)


@pytest.mark.parametrize("name", DLGRADE_SERVICES)
def test_the_environment_is_known_and_valid_settings(compose: dict[str, Any], name: str) -> None:
    env = environment(compose, name)
    unknown = sorted(key for key in env if key.startswith("DLGRADE_") and key not in SETTINGS_KEYS)
    assert unknown == [], f"{name} sets settings that do not exist: {unknown}"
    assert all(key.startswith("DLGRADE_") for key in env), f"{name}: stray variables"
    settings = Settings.from_mapping(env)  # validates, e.g. visibility > time limit
    assert settings.visibility_timeout > settings.task_time_limit + 60
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.broker_url is not None and settings.broker_url.startswith("redis://")


def test_web_and_workers_share_database_broker_data_and_secret(compose: dict[str, Any]) -> None:
    envs = {name: environment(compose, name) for name in DLGRADE_SERVICES}
    for key in SHARED:
        values = {name: env.get(key) for name, env in envs.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), (key, values)


@pytest.mark.parametrize("name", ["worker-cpu", "worker-gpu"])
def test_workers_use_the_host_engine_with_host_paths(compose: dict[str, Any], name: str) -> None:
    worker = service(compose, name)
    env = environment(compose, name)
    mounts = {}
    for volume in worker["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    assert mounts.get("/var/run/docker.sock") == "/var/run/docker.sock"
    assert env["DLGRADE_SANDBOX"] == "docker"
    for key in ("DLGRADE_DATA_DIR", "DLGRADE_WORK_DIR"):
        path = env[key]
        assert mounts.get(path) == path, f"{name}: {key} {path} must be mounted at the same path"
    assert worker["group_add"], "the socket's group, so the unprivileged user can use it"
    settings = Settings.from_mapping(env)
    assert str(settings.sandbox_work_dir) == env["DLGRADE_WORK_DIR"]


def test_the_gpu_worker_reserves_gpus_and_hands_them_out(compose: dict[str, Any]) -> None:
    gpu = service(compose, "worker-gpu")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)
    assert command(compose, "worker-gpu")[-2:] == ["--queues", "gpu"]
    settings = Settings.from_mapping(environment(compose, "worker-gpu"))
    assert settings.gpu_ids and settings.gpu_image != settings.docker_image
    cpu = Settings.from_mapping(environment(compose, "worker-cpu"))
    assert cpu.gpu_ids == () and "--queues" in command(compose, "worker-cpu")


def build_images() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_images", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return sys.modules[spec.name]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split()[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def copied_sources(instructions: list[tuple[str, str]]) -> set[str]:
    """What COPY takes from the build context (not ``--from`` another stage)."""
    sources = set()
    for op, args in instructions:
        parts = args.split()
        if op == "COPY" and not parts[0].startswith("--from="):
            sources.update(parts[:-1])
    return sources


def stages(instructions: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for op, args in instructions:
        if op == "FROM":
            current = []
            found[args.split()[-1] if " AS " in args.upper() else f"#{len(found)}"] = current
        current.append((op, args))
    return found


def test_the_service_dockerfile_builds_from_the_staged_context_only() -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    assert all(args.startswith("${BASE}") for op, args in instructions if op == "FROM"
               and args.split()[0] not in ("web-deps", "service")), "FROM the local Debian base"
    assert copied_sources(instructions) == set(build_images().SERVICE_CONTEXT)
    found = stages(instructions)
    for target in ("web", "worker"):
        users = [args for op, args in found[target] if op == "USER"]
        assert users and users[-1] not in ("root", "0"), f"{target} runs unprivileged"
    web_runs = " ".join(args for op, args in found["web"] + found["web-deps"] if op == "RUN")
    assert "worker" not in web_runs and "! /opt/venv/bin/python -c 'import torch'" in web_runs
    assert "--no-index" in web_runs, "nothing is downloaded while building"


def test_the_sandbox_image_holds_no_dlgrade_code() -> None:
    instructions = dockerfile_instructions(SANDBOX_DOCKERFILE)
    assert copied_sources(instructions) == set(build_images().SANDBOX_CONTEXT)
    labels = " ".join(args for op, args in instructions if op == "LABEL")
    assert 'dlgrade.runtime="image"' in labels and "dlgrade.runtimes=" in labels
    assert [args for op, args in instructions if op == "USER"][-1] == "10001:10001"
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "--no-index" in runs
    for package in ("grader", "reference", "sandbox", "tasks", "web", "assignments",
                    "solution"):
        assert f"COPY {package}" not in SANDBOX_DOCKERFILE.read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_wheel_carries_every_built_in_assignment(tmp_path: Path) -> None:
    """The service images install dlgrade's wheel (``pip wheel .``, scripts/build_images.py):
    it must carry every file of ``assignments/`` at ``assignments/``, beside ``grader/``,
    where grader.spec.BUILTIN_ROOT looks, and nothing at the old ``reference/assignments``."""
    from grader.spec import BUILTIN_ROOT
    from sandbox.runtimes import DLGRADE_PACKAGES

    source = tmp_path / "source"
    for name in (*DLGRADE_PACKAGES, "pyproject.toml", "README.md"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("dlgrade-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if n.startswith("assignments/")}
    expected = {f"assignments/{p.relative_to(source / 'assignments').as_posix()}"
                for p in (source / "assignments").rglob("*") if p.is_file()}
    assert BUILTIN_ROOT == ROOT / "assignments" and "grader/spec.py" in names
    assert "assignments/mytorch-cnn/solution/mytorch/conv.py" in expected
    assert sorted(expected - shipped) == []
    assert not [n for n in names if n.startswith("reference/assignments")]


def test_the_web_role_installs_no_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0].lower()
             for dep in project["dependencies"]]
    assert not {"torch", "scikit-learn", "docker"} & set(names)
    extras = project["optional-dependencies"]
    assert extras["torch-cpu"] == ["torch==2.13.0+cpu"], "the CPU build, by its local version"
    assert extras["torch-cuda"] == ["torch==2.13.0,!=2.13.0+cpu"], "PyPI's build, not +cpu"
    assert not any(dep.startswith("torch") for dep in extras["worker"] + extras["dev"])


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `(DLGRADE_\w+)` \|", CONFIGURATION.read_text(
        encoding="utf-8"), re.M))
    missing = sorted(SETTINGS_KEYS - documented)
    assert missing == [], f"add these settings to docs/configuration.md's table: {missing}"
    assert documented <= SETTINGS_KEYS, sorted(documented - SETTINGS_KEYS)


MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", ["README.md", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_links_stay_inside_the_repository(page: str) -> None:
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{page} names a file outside the repository"
    for target in MARKDOWN_LINK.findall(text):
        assert "://" not in target, f"{page} links outside the repository: {target}"
        file = (path.parent / target.split("#")[0]).resolve()
        assert file.is_file() and ROOT in file.parents, f"{page}: {target} does not exist"


def test_the_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[0] for line in first_block.splitlines()] == [
        "./scripts/run.sh", "./scripts/test.sh"]
    for page in ("deployment", "configuration", "security", "gpu", "writing-assignments"):
        assert f"(docs/{page}.md)" in text, f"the README links docs/{page}.md"


@pytest.mark.docker
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    require(binary is not None, "docker-compose (apt-get install docker-compose)")
    assert binary is not None
    env = {**os.environ, **TEST_VALUES}
    done = subprocess.run([binary, "-f", str(COMPOSE), "--profile", "gpu", "config"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) >= {"postgres", "redis", *DLGRADE_SERVICES}
    gpu = resolved["services"]["worker-gpu"]
    assert gpu["environment"]["DLGRADE_GPUS"] and gpu["deploy"]["resources"]["reservations"]


def test_the_security_page_carries_every_case_of_the_checklist() -> None:
    text = (ROOT / "docs/security.md").read_text(encoding="utf-8")
    cases = set(re.findall(r"^\| ([A-H]\d+) \|", text, re.M))
    listed = set(re.findall(r"^\| ([A-H]\d+) \|", (ROOT / "docs/security-checklist.md")
                            .read_text(encoding="utf-8"), re.M))
    assert len(cases) == 67 and cases == listed
    for section in ("### 2.2", "### 2.3", "### 2.4", "### 4.2", "### 5.3", "## 6."):
        assert f"\n{section}" in text, f"docs/security.md lost section {section} (cited in code)"


def test_no_test_module_shadows_the_standard_library() -> None:
    """pytest puts test folders on sys.path, and spawned child processes inherit it: a
    ``tests/lti/platform.py`` once replaced the standard ``platform`` for every later
    ``multiprocessing`` child of the run (``uuid`` imports it)."""
    shadowing = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py")
                       if path.stem in sys.stdlib_module_names)
    assert shadowing == [], f"rename these test modules: {shadowing}"


def test_the_sandbox_image_carries_every_runtime_a_built_in_assignment_asks_for(
        tmp_path: Path) -> None:
    """Each built-in assignment's sandbox, and the torch-free one of the tests that the
    import policy covers (grader.grade.strict_config), asks for a runtime that
    build_images.py puts in the sandbox image: a missing one fails every test of every
    handin with "the sandbox image does not carry the runtime" (it did for mytorch-cnn)."""
    from grader.grade import sandbox_config, strict_config
    from grader.spec import BUILTIN_ROOT, resolve_assignment
    from sandbox.runtimes import worker_version

    script = build_images()
    worker = {"numpy": worker_version("numpy") or "", "torch": worker_version("torch") or ""}
    carried = set(script.default_runtimes(worker)) | set(script.assignment_runtimes())
    asked: dict[str, str] = {}
    for folder in sorted(p.parent for p in BUILTIN_ROOT.glob("*/spec.toml")):
        spec = resolve_assignment(str(folder))
        config = sandbox_config(spec, tmp_path)
        asked[config.runtime_request().key] = folder.name
        strict = strict_config(spec, config)
        if strict is not None:
            asked[strict.runtime_request().key] = f"{folder.name} (policy-covered tests)"
    missing = {key: who for key, who in asked.items() if key not in carried}
    assert missing == {}, f"the sandbox image would not carry: {missing}"


@pytest.mark.parametrize("build", ["cpu", "cuda"])
def test_each_torch_build_asks_pip_for_that_build_only(build: str) -> None:
    """PEP 440 lets ``torch==2.13.0`` match ``2.13.0+cpu``, and pip prefers the CPU wheel
    wherever it sees both: ``--torch cuda`` once built images tagged ``cuda`` holding the
    CPU build. The image script and the pyproject extra exclude the other build."""
    from packaging.requirements import Requirement

    script = build_images()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"][f"torch-{build}"]
    runtime = script.runtime_requirements(f"numpy-1.26.4-torch-{script.TORCH_VERSION}", build)
    wanted = {"cpu": {"2.13.0+cpu"}, "cuda": {"2.13.0", "2.13.0+cu126"}}[build]
    for text in (script.torch_requirement(build), *extras,
                 *(r for r in runtime if r.startswith("torch"))):
        specifier = Requirement(text).specifier
        admitted = {v for v in ("2.13.0", "2.13.0+cpu", "2.13.0+cu126")
                    if specifier.contains(v)}
        assert admitted == wanted, text


def test_an_image_build_stops_when_pip_resolved_the_other_torch_build() -> None:
    script = build_images()
    script.check_torch_build({"torch": "2.13.0+cpu"}, "cpu", "the worker role")
    script.check_torch_build({"torch": "2.13.0"}, "cuda", "the worker role")
    script.check_torch_build({"numpy": "1.26.4"}, "cuda", "the sandbox runtime numpy-1.26.4")
    with pytest.raises(SystemExit, match=r"the worker role resolved torch 2\.13\.0\+cpu, "
                                         r"which is not the cuda build of PyTorch 2\.13\.0"):
        script.check_torch_build({"torch": "2.13.0+cpu"}, "cuda", "the worker role")
    with pytest.raises(SystemExit, match="not the cpu build"):
        script.check_torch_build({"torch": "2.13.0"}, "cpu", "the sandbox runtime x")
