"""The Docker backend's start-up against a fake engine (no Docker needed): every way a
start can fail undoes what it did (the container, the channel folder, the GPU), and says
why in a ``start`` death. The real engine's side is in test_docker_backend.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from sandbox.backend import SandboxConfig
from sandbox.docker_backend import DockerBackend
from sandbox.docker_images import LABEL_RUNTIME, LABEL_RUNTIMES
from sandbox.docker_profile import DockerSettings
from sandbox.gpus import GpuPool
from sandbox.runtimes import RuntimeStore
from sandbox.session import SessionDied, SessionLimits

QUICK = SessionLimits(start_timeout_s=0.5)


class FakeContainer:
    """A created container that exits at start (``exits``) or runs and never connects."""

    def __init__(self, exits: bool) -> None:
        self.name, self.exits, self.removed = "dlgrade-fake", exits, False
        self.attrs: dict[str, Any] = {"State": {"Status": "created", "Pid": 0}}

    def start(self) -> None:
        status = {"Status": "exited", "ExitCode": 127} if self.exits else {"Status": "running"}
        self.attrs["State"] = {**status, "Pid": 4242}

    def reload(self) -> None:
        if self.removed:
            raise docker.errors.NotFound("no such container")

    def logs(self, tail: int) -> bytes:
        return b"exec /py: no such file or directory\n"

    def kill(self) -> None:
        self.attrs["State"] = {"Status": "exited", "ExitCode": 137}

    def remove(self, force: bool) -> None:
        self.removed = True


class FakeImage:
    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels


class FakeClient:
    """The part of docker-py's client the backend uses: one image, containers made on
    request (or an engine error)."""

    def __init__(self, key: str, *, fail_create: bool = False, exits: bool = False) -> None:
        self.key, self.fail_create, self.exits = key, fail_create, exits
        self.made: list[FakeContainer] = []
        self.images = self
        self.containers = self

    def get(self, image: str) -> FakeImage:
        return FakeImage({LABEL_RUNTIME: "image", LABEL_RUNTIMES: self.key})

    def create(self, **kwargs: Any) -> FakeContainer:
        if self.fail_create:
            raise docker.errors.APIError("the engine refused the container")
        self.made.append(FakeContainer(self.exits))
        return self.made[-1]


@pytest.fixture
def config(tmp_path: Path) -> SandboxConfig:
    (tmp_path / "handin").mkdir()
    return SandboxConfig(submission_dir=tmp_path / "handin")


def backend(tmp_path: Path, client: FakeClient, gpus: GpuPool | None = None) -> DockerBackend:
    settings = DockerSettings(run_dir=tmp_path / "run", gpu_mode="devices", gpu_wait_s=0)
    return DockerBackend(settings, client=client, gpus=gpus, reap=False,
                         store=RuntimeStore(tmp_path / "runtimes"))


@pytest.mark.parametrize(("case", "reason"), [
    ("engine error", "the sandbox could not start: the engine refused the container"),
    ("exits", "the container exited with status 127 before its agent connected: "
              "exec /py: no such file or directory"),
    ("never connects", "the agent did not connect within 0.5 s"),
])
def test_a_failed_start_says_why_and_leaves_nothing_behind(
    tmp_path: Path, config: SandboxConfig, case: str, reason: str
) -> None:
    client = FakeClient(config.runtime_request().key, fail_create=case == "engine error",
                        exits=case == "exits")
    gpus = GpuPool(["0"], tmp_path / "gpus")
    with pytest.raises(SessionDied) as death:
        backend(tmp_path, client, gpus).start(config, QUICK)
    assert (death.value.reason, death.value.detail) == ("start", reason)
    assert all(container.removed for container in client.made)
    assert len(client.made) == (0 if case == "engine error" else 1)
    assert list((tmp_path / "run").iterdir()) == [], "a channel folder outlived the start"
    with gpus.acquire(timeout=0) as device:  # the GPU was given back
        assert device == "0"
