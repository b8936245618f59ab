"""docker-compose.yml and the Dockerfile, checked statically (no registry here, so the
images are never built): every service's command parses with the real ``dlgrade``
parser, its environment is made of known Settings and builds valid Settings, web and
workers share the database, broker, data dir and secret, workers see the Docker socket
and their host paths at the same paths, the GPU worker reserves GPUs, and the
Dockerfile copies only what exists. With ``docker-compose`` installed (marker
``docker``), its own ``config`` validates the file too."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from dlgrade.cli import build_parser
from tasks.settings import Settings
from tests.conftest import ROOT, require

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
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


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split()[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def test_the_dockerfile_copies_files_that_exist_and_installs_the_package() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    copies = [args.split() for op, args in instructions if op == "COPY"]
    assert copies
    copied = set()
    for parts in copies:
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            copied.add(source.rstrip("/").removeprefix("./"))
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "pip install ." in runs
    # pip install . needs every package that pyproject.toml lists, and pyproject itself
    assert {"pyproject.toml", "grader", "sandbox", "reference", "store", "tasks", "web",
            "dlgrade", "migrations"} <= copied
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and ".git" in ignored


@pytest.mark.docker
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    require(binary is not None, "docker-compose (apt-get install docker-compose)")
    assert binary is not None
    env = {**os.environ, **TEST_VALUES}
    done = subprocess.run([binary, "-f", str(COMPOSE), "--profile", "images", "config"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) >= {"postgres", "redis", *DLGRADE_SERVICES}
    gpu = resolved["services"]["worker-gpu"]
    assert gpu["environment"]["DLGRADE_GPUS"] and gpu["deploy"]["resources"]["reservations"]
