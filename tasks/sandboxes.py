"""Which sandbox grades a submission: one provider per worker process, built from Settings.

:class:`SandboxProvider` holds the CPU backend (optionally behind a warm pool), the
GPU backend and this worker's :class:`~sandbox.gpus.GpuPool`.
``with provider.reserve(spec) as choice:`` gives the job a :class:`Choice` (a backend
and notes for the staff log), before the job claims its submission:

* ``[sandbox] gpu = true`` and GPUs configured: one GPU is leased for the whole job
  (waiting at most ``DLGRADE_GPU_WAIT_SECONDS``, then :class:`GpuBusy`, which the job
  answers with a retry that uses no attempt) and the Docker backend passes exactly that
  GPU into each of the job's containers (device requests or device nodes, never
  ``CUDA_VISIBLE_DEVICES`` alone); the GPU is given back when the job ends.
* ``gpu = true`` on a worker with no GPUs: the CPU backend, and a note saying so (the
  accuracy checks train on ``cuda`` only when the sandbox sees one).
* anything else: the CPU backend; with ``DLGRADE_WARM_POOL=N`` and Docker, through a
  :class:`~sandbox.docker_warm_pool.WarmPool` of N started containers made for the most
  recent assignment's sandbox config. A job whose config differs gets a cold container
  (the pool checks) and its config becomes the template of a fresh pool.

Docker paths: the host's engine resolves bind mounts on the HOST, so everything the
backend mounts (channel sockets, extracted handins, the agent) lives under
``Settings.sandbox_work_dir``, which a containerised worker must see at the same path
as the host (see docker-compose.yml). docker-py is imported only when Docker is used.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from grader.grade import sandbox_config
from grader.spec import AssignmentSpec
from sandbox.backend import Backend, SandboxConfig
from sandbox.gpus import GpuLease, GpuPool, GpuUnavailable, HeldGpu
from sandbox.runtime_versions import runtime_problems
from sandbox.runtimes import RuntimeStore
from sandbox.select import BackendUnavailable, choose_backend, docker_unavailable_reason
from sandbox.session import Session, SessionLimits
from tasks.settings import Settings

log = logging.getLogger(__name__)

NO_GPU_NOTE = ("This assignment asks for a GPU but this worker has none configured "
               "(DLGRADE_GPUS): it was graded on the CPU.")
PRELOAD = ("numpy", "torch")  # warm containers import these first (unless denied)


class GpuBusy(Exception):
    """Every GPU of this worker stayed busy for the whole wait: grade this job later."""


class GpuBackend(Protocol):
    """A backend that takes its GPU from ``gpus`` (the Docker backend)."""

    name: str
    gpus: GpuPool | None

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session: ...


class WarmPoolLike(Protocol):
    name: str

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session: ...

    def close(self) -> None: ...


WarmFactory = Callable[[SandboxConfig, SessionLimits], WarmPoolLike]


@dataclass
class Choice:
    """The backend one job grades with, and what its staff log should say about it."""

    backend: Backend
    gpu: str | None = None
    notes: list[str] = field(default_factory=list)


class SandboxProvider:
    """The sandboxes of one worker process; :meth:`close` it on exit."""

    def __init__(
        self, cpu: Backend, *, gpu: GpuBackend | None = None, gpus: GpuPool | None = None,
        gpu_wait_s: float = 600.0, warm: WarmFactory | None = None, warm_size: int = 0,
        warm_dir: Path | None = None, summary: str = "",
    ) -> None:
        if (gpu is None) != (gpus is None):
            raise ValueError("a GPU backend and a GPU pool go together")
        self.cpu, self.gpu, self.gpus, self.gpu_wait_s = cpu, gpu, gpus, gpu_wait_s
        self.warm, self.warm_size = warm, warm_size
        self.warm_dir = warm_dir or Path(tempfile.gettempdir())
        self.summary = summary or f"{cpu.name}; GPUs: none; warm pool: off"
        self._pool: WarmPoolLike | None = None
        self._template: SandboxConfig | None = None
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxProvider:
        """Build the worker's sandboxes; raises BackendUnavailable with a sentence."""
        wants_docker = settings.sandbox == "docker" or bool(settings.gpu_ids) or (
            settings.sandbox == "auto" and docker_unavailable_reason(settings.docker_image) is None)
        store = runtime_store(settings)
        if not wants_docker:
            cpu = choose_backend(settings.sandbox, store=store)
            off = " (it needs the Docker sandbox)" if settings.warm_pool else ""
            limits = _aggregate_limits(cpu, settings)
            return cls(cpu, summary=f"{cpu.name}{limits}; GPUs: none; warm pool: off{off}")
        try:
            return _docker_provider(settings, store)
        except RuntimeUnpatched as refused:
            if settings.sandbox != "auto" or settings.gpu_ids:
                raise
            cpu = choose_backend("process", store=store)  # "auto": the next-best, and why
            limits = _aggregate_limits(cpu, settings)
            return cls(cpu, summary=f"{cpu.name}{limits} ({str(refused).rstrip('.')})")

    def describe(self) -> str:
        """One sentence for start-up logs: the sandbox, the GPUs and the warm pool."""
        return f"Sandbox: {self.summary}."

    @contextmanager
    def reserve(self, spec: AssignmentSpec) -> Iterator[Choice]:
        """The backend for one job of ``spec``; a GPU job holds its GPU until the block ends.

        Raises :class:`GpuBusy` (before anything is graded) when no GPU came free in time.
        """
        if not spec.sandbox.gpu:
            yield Choice(self._cpu_backend(spec))
            return
        if self.gpu is None or self.gpus is None:
            log.warning("%s: %s", spec.slug, NO_GPU_NOTE)
            yield Choice(self.cpu, notes=[NO_GPU_NOTE])
            return
        lease = self._lease()
        try:
            backend = copy.copy(self.gpu)  # shares the engine client; only `gpus` differs
            backend.gpus = HeldGpu(lease)
            yield Choice(backend, gpu=lease.device, notes=[f"gpu={lease.device}"])
        finally:
            lease.release()

    def _lease(self) -> GpuLease:
        assert self.gpus is not None
        try:
            return self.gpus.lease(self.gpu_wait_s)
        except GpuUnavailable as exc:
            raise GpuBusy(f"{exc}; the job will be retried") from None

    def _cpu_backend(self, spec: AssignmentSpec) -> Backend:
        if self.warm is None or self.warm_size <= 0:
            return self.cpu
        limits = SessionLimits(call_timeout_s=spec.sandbox.call_timeout_s)
        template = sandbox_config(spec, self.warm_dir)
        with self._lock:
            if self._closed:
                return self.cpu
            if self._pool is not None and self._template == template:
                return self._pool
            old, self._template = self._pool, template
            self._pool = self.warm(template, limits)
        if old is not None:  # its refill thread may be starting a container: not here
            threading.Thread(target=old.close, name="dlgrade-warm-close", daemon=True).start()
        return self._pool

    def close(self) -> None:
        """Stop the warm pool (its idle containers are removed). Idempotent."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


class SandboxUnlimited(BackendUnavailable):
    """The sandbox cannot limit a whole sandbox's memory, processes and CPU (issue 12.6)."""


def _aggregate_limits(backend: Backend, settings: Settings) -> str:
    """"" when ``backend`` limits whole sandboxes; else refuse (production) or a warning
    note for the summary (embedded, or DLGRADE_SANDBOX_LIMITS=warn)."""
    reason = getattr(backend, "unlimited", None)
    if not reason:
        return ""
    if settings.refuses_unlimited_sandbox:
        raise SandboxUnlimited(
            f"The {backend.name} sandbox will not run untrusted code without a memory, process "
            f"and CPU limit per sandbox: {reason}. Run the worker as root (or in a delegated "
            "cgroup), use the Docker sandbox, or set DLGRADE_SANDBOX_LIMITS=warn to start with "
            "per-process limits only.")
    log.warning("sandboxes have per-process limits only: %s", reason)
    return f" (per-process limits only: {reason})"


def docker_limit_problems(info: dict[str, object]) -> list[str]:
    """What the engine's ``/info`` says it cannot limit per container."""
    wanted = {"MemoryLimit": "memory", "SwapLimit": "swap", "PidsLimit": "process",
              "CpuCfsQuota": "CPU"}
    missing = [what for key, what in wanted.items() if info.get(key) is False]
    if not missing:
        return []
    return [f"the Docker engine cannot enforce the {', '.join(missing)} limit(s) of a "
            "container (its cgroup controllers are missing)"]


class RuntimeUnpatched(BackendUnavailable):
    """runc or the NVIDIA toolkit predates its container-escape fixes (docs/security.md E6)."""


def runtime_store(settings: Settings) -> RuntimeStore:
    """The worker's sandbox runtimes (sandbox.runtimes), from DLGRADE_RUNTIME_*."""
    return RuntimeStore(settings.runtime_store_dir, build=settings.runtime_build == "auto")


def _docker_provider(settings: Settings, store: RuntimeStore) -> SandboxProvider:
    try:
        from sandbox.docker_backend import DockerBackend
        from sandbox.docker_engine import DockerUnavailable
        from sandbox.docker_profile import DockerSettings
        from sandbox.docker_warm_pool import WarmPool
    except ImportError as exc:
        raise BackendUnavailable(f"The Docker sandbox needs the docker package ({exc}).") from None
    work = settings.sandbox_work_dir
    for sub in ("tmp", "docker", "gpus"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    # Handins are extracted (grader.grade) and the agent staged (sandbox.backend) with
    # tempfile: both must be at paths the host's engine can bind-mount.
    tempfile.tempdir = str(work / "tmp")
    base = DockerSettings(image=settings.docker_image, runtime=settings.docker_runtime or None,
                          run_dir=work / "docker", gpu_mode=_gpu_mode(settings.gpu_mode),
                          driver_mounts=settings.driver_mounts,
                          gpu_wait_s=settings.gpu_wait_seconds)
    try:
        cpu = DockerBackend(base, store=store)
        problems = runtime_problems(
            cpu.client.version(), oci_runtime=settings.docker_runtime or None,
            nvidia_toolkit=bool(settings.gpu_ids) and settings.gpu_mode == "nvidia")
        if problems and settings.refuses_unpatched_runtime:
            raise RuntimeUnpatched(
                f"The Docker sandbox will not start on an unpatched runtime: "
                f"{'; '.join(problems)}. Upgrade it; if your distribution backported these "
                "fixes, set DLGRADE_RUNTIME_CHECK=warn to start with a warning.")
        for problem in problems:
            log.warning("container runtime not known to be patched: %s", problem)
        unlimited = docker_limit_problems(cpu.client.info())
        if unlimited and settings.refuses_unlimited_sandbox:
            raise SandboxUnlimited(f"The Docker sandbox will not run untrusted code: "
                                   f"{'; '.join(unlimited)}. Set DLGRADE_SANDBOX_LIMITS=warn to "
                                   "start with a warning.")
        for problem in unlimited:
            log.warning("%s", problem)
        gpu = gpus = None
        if settings.gpu_ids:
            gpu = DockerBackend(dataclasses.replace(base, image=settings.gpu_image),
                                client=cpu.client, reap=False, store=store)
            gpus = GpuPool(settings.gpu_ids, work / "gpus")
    except DockerUnavailable as exc:
        what = "DLGRADE_GPUS is set, but the" if settings.gpu_ids else "The"
        raise BackendUnavailable(f"{what} Docker sandbox cannot run here: {exc}.") from None
    warm: WarmFactory | None = None
    if settings.warm_pool > 0:
        def warm(template: SandboxConfig, limits: SessionLimits) -> WarmPoolLike:
            return WarmPool(cpu, template, limits, size=settings.warm_pool, preload=PRELOAD)
    unpatched = f"; runtime not known to be patched: {'; '.join(problems)}" if problems else ""
    unpatched += "".join(f"; {problem}" for problem in unlimited)
    return SandboxProvider(cpu, gpu=gpu, gpus=gpus, gpu_wait_s=settings.gpu_wait_seconds,
                           warm=warm, warm_size=settings.warm_pool, warm_dir=work / "tmp",
                           summary=docker_summary(settings) + unpatched)


def _gpu_mode(mode: str) -> Literal["nvidia", "devices"]:
    return "devices" if mode == "devices" else "nvidia"


def docker_summary(settings: Settings) -> str:
    runtime = f", runtime {settings.docker_runtime}" if settings.docker_runtime else ""
    if settings.gpu_ids:
        image = "" if settings.gpu_image == settings.docker_image else (
            f", image {settings.gpu_image}")
        gpus = (f"{', '.join(settings.gpu_ids)} ({settings.gpu_mode} mode{image}; "
                f"one per GPU job, waiting up to {settings.gpu_wait_seconds:g} s)")
    else:
        gpus = "none (GPU assignments are graded on the CPU)"
    warm = (f"{settings.warm_pool} started container(s), each used once"
            if settings.warm_pool else "off")
    return (f"docker (image {settings.docker_image}{runtime}, one container per session); "
            f"GPUs: {gpus}; warm pool: {warm}")
