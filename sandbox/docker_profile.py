"""The container profile: everything ``containers.create`` is asked for.

The hardening of docs/security.md §2.2 (no network, read-only root and mounts, no
capabilities, no new privileges, seccomp, memory/pids/cpu/ulimits, a private IPC
namespace, an unprivileged user) in one pure function, :func:`container_kwargs`,
unit-tested without an engine.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.types import LogConfig, Mount, Ulimit

from sandbox.backend import (
    PYTHON_FLAGS,
    SandboxConfig,
    agent_dir,
    agent_options,
    masks,
    sandbox_env,
)
from sandbox.docker_channel import DOCKER_BOOTSTRAP, SOCKET
from sandbox.docker_gpu import GpuMode, add_gpu
from sandbox.docker_images import LOCAL_IMAGE, Interpreter
from sandbox.runtimes import IMAGE_RUNTIMES, SANDBOX_SITE, Runtime
from sandbox.seccomp import security_opt
from sandbox.session import SessionDied, SessionLimits

LABEL_SESSION, LABEL_WORKER, LABEL_CREATED = "dlgrade.session", "dlgrade.worker", "dlgrade.created"


@dataclass(frozen=True)
class DockerSettings:
    """How this worker runs containers (the per-job limits come from SandboxConfig)."""

    image: str = LOCAL_IMAGE
    user: str = "10001:10001"
    init: bool = True  # tini as pid 1 (needs the engine's docker-init binary)
    pids_per_process: int = 4  # pids_limit counts threads: allow for OMP/BLAS pools
    runtime: str | None = None  # e.g. "runsc" (gVisor) for defence in depth
    seccomp: bool = True  # sandbox.seccomp's profile; False keeps the engine's default
    gpu_mode: GpuMode = "nvidia"
    driver_mounts: tuple[str, ...] = ()  # devices mode: host driver dirs, mounted read-only
    gpu_wait_s: float = 600.0
    run_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "dlgrade-docker")
    log_max_size: str = "1m"
    api_timeout_s: float = 30.0
    max_age_s: float = 24 * 3600.0  # the reaper removes anything older


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def container_kwargs(
    config: SandboxConfig, limits: SessionLimits, settings: DockerSettings,
    interpreter: Interpreter, *, token: str, channel: Path, gpu: str | None = None,
    runtime: Runtime | None = None,
) -> dict[str, Any]:
    """Everything ``containers.create`` gets (docs/security.md §2.2). Pure: unit-tested.

    ``runtime`` is the session's runtime for the host interpreter (bound at /runtime);
    an image's own runtimes are chosen by the config's runtime key."""
    binds = [*interpreter.mounts, (str(agent_dir()), "/agent"), (str(channel), "/channel"),
             (str(Path(config.submission_dir).resolve()), "/submission")]
    if config.data_dir is not None:
        binds.append((str(Path(config.data_dir).resolve()), "/data"))
    site_dir, runtime_binds = image_site(config, interpreter, runtime)
    mb = 1 << 20
    env = sandbox_env(config, "/tmp")
    covers = [*hidden_mounts(config.masked(), binds),
              *hidden_mounts(config.hidden_paths, runtime_binds),
              *(Mount(path, None, type="tmpfs", read_only=True, tmpfs_size=4096,
                      tmpfs_mode=0o555) for path in interpreter.masked)]
    kwargs: dict[str, Any] = dict(
        image=settings.image, name=f"dlgrade-{token}", hostname="sandbox",
        command=[interpreter.python, *PYTHON_FLAGS, "-c", DOCKER_BOOTSTRAP,
                 f"/channel/{SOCKET}", "/agent", site_dir, *agent_options(config, limits)],
        user=settings.user, working_dir="/submission", environment=env,
        network_mode="none", ipc_mode="private", read_only=True, init=settings.init,
        mounts=[*(Mount(target, source, type="bind", read_only=True)
                  for source, target in [*binds, *runtime_binds]), *covers],
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={config.tmp_mb}m,mode=1777"},
        shm_size=f"{config.shm_mb}m",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true", *([security_opt()] if settings.seccomp else [])],
        mem_limit=f"{config.memory_mb}m", memswap_limit=f"{config.memory_mb}m",
        oom_score_adj=500, pids_limit=config.max_processes * settings.pids_per_process,
        nano_cpus=config.threads * 1_000_000_000,
        ulimits=[Ulimit(name="nofile", soft=config.open_files, hard=config.open_files),
                 Ulimit(name="fsize", soft=config.file_size_mb * mb, hard=config.file_size_mb * mb),
                 Ulimit(name="cpu", soft=config.cpu_seconds, hard=config.cpu_seconds),
                 Ulimit(name="core", soft=0, hard=0)],
        labels={LABEL_SESSION: token, LABEL_WORKER: worker_label(),
                LABEL_CREATED: str(int(time.time()))},
        log_config=LogConfig(type="local", config={"max-size": settings.log_max_size,
                                                   "max-file": "1", "compress": "false"}),
        auto_remove=False,
    )
    if settings.runtime:
        kwargs["runtime"] = settings.runtime
    if gpu is not None:
        add_gpu(kwargs, gpu, settings.gpu_mode, settings.driver_mounts)
    return kwargs


def image_site(config: SandboxConfig, interpreter: Interpreter,
               runtime: Runtime | None) -> tuple[str, list[tuple[str, str]]]:
    """The runtime's site folder in the container, and the binds that make it."""
    if interpreter.runtimes is None:
        if runtime is None:
            raise ValueError("the host interpreter needs the session's runtime")
        return SANDBOX_SITE, runtime.binds()
    key = config.runtime_request().key
    if key not in interpreter.runtimes:
        carried = ", ".join(interpreter.runtimes) or "none"
        raise SessionDied("start", f"the sandbox image does not carry the runtime {key} "
                                   f"(it has: {carried}); rebuild it with that runtime "
                                   "(sandbox/images/README.md)")
    return f"{IMAGE_RUNTIMES}/{key}", []


def hidden_mounts(hidden: tuple[str, ...], binds: list[tuple[str, str]]) -> list[Mount]:
    """Empty read-only covers over hidden host paths wherever a bind shows them (the
    engine mounts deeper targets after their parents)."""
    return [
        Mount(mask.target, None, type="tmpfs", read_only=True, tmpfs_size=4096,
              tmpfs_mode=0o555) if mask.folder else
        Mount(mask.target, "/dev/null", type="bind", read_only=True)
        for mask in masks(hidden, binds)
    ]
