"""The Docker backend: one hardened, single-use container per session.

The only module that imports ``docker`` (docker-py).

How the trusted side talks to the container
-------------------------------------------
Docker cannot hand a container extra file descriptors, and attaching to its
stdin/stdout would mix the protocol with the student's output. Instead, each
session gets a fresh host directory (random name, not writable by the sandbox)
holding one listening unix socket, bind-mounted **read-only** at ``/channel``: a
socket on a read-only mount is still connectable, but the sandbox cannot plant or
replace anything there. The container's first process (after ``tini``) is a
five-line bootstrap (:data:`DOCKER_BOOTSTRAP`) that, before any student code
exists in the process, connects four times — request, reply, stdout, stderr —
puts the last two on fds 1 and 2, and calls ``sandbox.agent.main`` with the
first two. The trusted side accepts exactly four connections (in order: the
listen queue is FIFO), then closes the listener and unlinks the socket, so
nothing can connect later. The four connected sockets take the place of
:func:`sandbox.backend.spawn`'s four pipes and :class:`Session` uses them
unchanged: protocol frames on a dedicated channel, the student's stdout and
stderr captured separately (so are those of any child process it starts).

:class:`DockerSession` overrides the two places where Session touches the
process: ``close()`` kills and removes the container (the wall-clock timeouts
stay enforced by Session, outside the sandbox), and a death reads the
container's ``State`` so an OOM kill becomes reason ``"oom"``.

Images
------
``dlgrade sandbox build-local`` imports a tiny image of empty mount points
(label ``dlgrade.runtime=host``): the host's base interpreter is then bind-mounted
read-only at run time (``/usr``, ``/lib*``, ``/bin``, ``/etc``, the base Python's
prefix, its site-packages masked) and the session's runtime (``sandbox.runtimes``)
is assembled at ``/runtime`` from one read-only bind per entry; the worker's
virtualenv is never mounted. So it needs no registry. The production images
(``sandbox/images/Dockerfile``, label ``dlgrade.runtime=image``) carry their own
Python and their runtimes under ``/opt/dlgrade/runtimes/<key>`` (listed in the label
``dlgrade.runtimes``); only the agent, the handin, public data and the channel are
mounted into them, and a job whose runtime the image lacks cannot start.

Also here: :func:`reap_orphans` (containers of dead workers, run when a backend
is built and by ``dlgrade sandbox reap``), :func:`build_local_image`, and
:class:`WarmPool` (started containers waiting for a handin).
"""

from __future__ import annotations

import dataclasses
import io
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import docker
import docker.errors
import docker.utils
import requests.exceptions
from docker.models.containers import Container
from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

from sandbox.backend import (
    PYTHON_FLAGS,
    SandboxConfig,
    agent_dir,
    agent_options,
    masks,
    resolve_runtime,
    sandbox_env,
)
from sandbox.gpus import GpuLease, GpuPool, GpuUnavailable
from sandbox.runtimes import (
    IMAGE_RUNTIMES,
    SANDBOX_SITE,
    Runtime,
    RuntimeStore,
    base_python,
    default_store,
)
from sandbox.seccomp import security_opt
from sandbox.session import Sandbox, Session, SessionDied, SessionLimits, StudentException

LOCAL_IMAGE = "dlgrade-sandbox:local"
LABEL_SESSION, LABEL_WORKER, LABEL_CREATED = "dlgrade.session", "dlgrade.worker", "dlgrade.created"
LABEL_RUNTIME, LABEL_PYTHON = "dlgrade.runtime", "dlgrade.python"
LABEL_RUNTIMES, LABEL_MASK = "dlgrade.runtimes", "dlgrade.mask"
# Not /sbin: Docker mounts its init (tini) at /sbin/docker-init, and Python needs no sbin.
HOST_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/etc")
MOUNT_POINTS = ("submission", "agent", "data", "channel", "tmp", "proc", "sys", "dev", "opt/venv")
SOCKET = "agent.sock"
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)

DOCKER_BOOTSTRAP = """\
import os, socket, sys
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    return s.detach()
request, reply, out, err = (connect() for _ in range(4))
os.dup2(out, 1); os.dup2(err, 2); os.close(out); os.close(err)
sys.path.insert(0, sys.argv[2])
sys.path.append(sys.argv[3])
from sandbox.agent import main
main([str(request), str(reply)] + sys.argv[4:])
"""


class DockerUnavailable(Exception):
    """No engine answers, or the image is missing; the message says what to do."""


@dataclass(frozen=True)
class DockerSettings:
    """How this worker runs containers (the per-job limits come from SandboxConfig)."""

    image: str = LOCAL_IMAGE
    user: str = "10001:10001"
    init: bool = True  # tini as pid 1 (needs the engine's docker-init binary)
    pids_per_process: int = 4  # pids_limit counts threads: allow for OMP/BLAS pools
    runtime: str | None = None  # e.g. "runsc" (gVisor) for defence in depth
    seccomp: bool = True  # sandbox.seccomp's profile; False keeps the engine's default
    gpu_mode: Literal["nvidia", "devices"] = "nvidia"
    driver_mounts: tuple[str, ...] = ()  # devices mode: host driver dirs, mounted read-only
    gpu_wait_s: float = 600.0
    run_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "dlgrade-docker")
    log_max_size: str = "1m"
    api_timeout_s: float = 30.0
    max_age_s: float = 24 * 3600.0  # the reaper removes anything older


@dataclass(frozen=True)
class Interpreter:
    """Where Python lives in the container, and what must be mounted for it.

    ``runtimes`` is None for the host runtime (the session's runtime is bound in from the
    runtime store), else the runtime keys the image carries under IMAGE_RUNTIMES;
    ``masked`` are folders of the image to cover (its interpreter's site-packages)."""

    python: str
    mounts: tuple[tuple[str, str], ...] = ()
    runtimes: tuple[str, ...] | None = None
    masked: tuple[str, ...] = ()


def host_runtime() -> Interpreter:
    """This host's base interpreter, bind-mounted read-only at its own paths."""
    mounts = [(p, p) for p in HOST_PATHS if os.path.isdir(p)]
    python = base_python()
    for path in (os.path.realpath(sys.base_prefix), os.path.dirname(python)):
        if not any(path == p or path.startswith(p + "/") for p, _ in mounts):
            mounts.append((path, path))
    return Interpreter(python, tuple(mounts))


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
        _add_gpu(kwargs, settings, gpu)
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


def _add_gpu(kwargs: dict[str, Any], settings: DockerSettings, gpu: str) -> None:
    """One GPU, reachable through the device cgroup, never through the environment alone."""
    env = kwargs["environment"]
    env["NVIDIA_DRIVER_CAPABILITIES"] = "compute,utility"
    if settings.gpu_mode == "nvidia":
        env["NVIDIA_VISIBLE_DEVICES"] = gpu
        kwargs["device_requests"] = [DeviceRequest(device_ids=[gpu], capabilities=[["gpu"]])]
        return
    if not gpu.isdigit():
        raise ValueError(f"GPU {gpu!r}: the devices mode needs a numeric index like '0'")
    nodes = [f"/dev/nvidia{gpu}", "/dev/nvidiactl", "/dev/nvidia-uvm"]
    kwargs["devices"] = [f"{node}:{node}:rw" for node in nodes]
    kwargs["mounts"] += [Mount(p, p, type="bind", read_only=True) for p in settings.driver_mounts]


class ContainerProcess:
    """The container seen through the part of ``Popen`` that callers read."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.args = container.name
        self.pid = int(container.attrs.get("State", {}).get("Pid") or 0)
        self.returncode: int | None = None
        self.state: dict[str, Any] = {}

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.container.reload()
            except docker.errors.NotFound:
                self.returncode = 137
                return self.returncode
            self.state = dict(self.container.attrs.get("State", {}))
            if self.state.get("Status") in ("exited", "dead"):
                self.returncode = int(self.state.get("ExitCode", 0))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.args), timeout or 0.0)
            time.sleep(0.02)
        return code

    def kill(self) -> None:
        if self.returncode is None:
            try:
                self.container.kill()
            except docker.errors.APIError:  # already stopped or gone
                pass


class DockerSession(Session):
    """A Session whose sandbox is a container: killed and inspected through the engine."""

    def __init__(self, sandbox: Sandbox, limits: SessionLimits, box: ContainerProcess,
                 memory_mb: int) -> None:
        self.box = box
        self.memory_mb = memory_mb
        super().__init__(sandbox, limits)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.box.kill()
        try:
            self.box.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # removal below uses force
        self._drain_output(0.0)
        for fd in self._fds():
            try:
                os.close(fd)
            except OSError:
                pass
        for action in self.sandbox.cleanup:
            action()
        self.sandbox.cleanup.clear()

    def _death_after_exit(self, what: str) -> SessionDied:
        try:
            code: int | None = self.box.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        if self.box.state.get("OOMKilled"):
            return SessionDied(
                "oom", f"your code exceeded the {self.memory_mb} MB memory limit during {what}",
                code)
        if code == 137:
            return SessionDied("killed", f"the sandbox was killed during {what}", code)
        return SessionDied("exited", f"your code exited the process during {what}", code)


class DockerBackend:
    """Starts :class:`DockerSession` s; one GPU from ``gpus`` per session when given."""

    name = "docker"

    def __init__(self, settings: DockerSettings | None = None, *, client: Any = None,
                 gpus: GpuPool | None = None, reap: bool = True,
                 store: RuntimeStore | None = None) -> None:
        self.settings = settings or DockerSettings()
        self.client = client or connect(self.settings.api_timeout_s)
        self.gpus = gpus
        self.store = store or default_store()
        self.interpreter = image_runtime(self.client, self.settings.image)
        self.settings.run_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        agent_dir()  # staged once, before a warm pool's thread can race for it
        if reap:
            reap_orphans(self.client, older_than=self.settings.max_age_s)

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        token = secrets.token_hex(8)
        channel = Path(tempfile.mkdtemp(prefix=f"{token}-", dir=self.settings.run_dir))
        cleanup: list[Callable[[], object]] = [lambda: shutil.rmtree(channel, True)]
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cleanup.append(listener.close)  # closed by _accept already in the normal case
        try:
            runtime = None
            if self.interpreter.runtimes is None:
                runtime = resolve_runtime(self.store, config)
            lease = self._lease_gpu()
            if lease is not None:
                cleanup.append(lease.release)
            self._listen(listener, channel)
            gpu = None if lease is None else lease.device
            kwargs = container_kwargs(config, limits, self.settings, self.interpreter,
                                      token=token, channel=channel, gpu=gpu, runtime=runtime)
            container = self.client.containers.create(**kwargs)
            cleanup.insert(0, lambda: _remove(container))
            fds = self._accept(listener, container, limits.start_timeout_s)
        except (*ENGINE_ERRORS, SessionDied, GpuUnavailable) as exc:
            for action in cleanup:
                action()
            if isinstance(exc, SessionDied):
                raise
            raise SessionDied("start", f"the sandbox could not start: {exc}") from exc
        box = ContainerProcess(container)
        sandbox = Sandbox(cast("subprocess.Popen[bytes]", box), *fds, self.name, cleanup)
        return DockerSession(sandbox, limits, box, config.memory_mb)

    def _lease_gpu(self) -> GpuLease | None:
        return None if self.gpus is None else self.gpus.lease(self.settings.gpu_wait_s)

    def _listen(self, listener: socket.socket, channel: Path) -> None:
        channel.chmod(0o711)  # the sandbox needs only to reach the socket by name
        path = channel / SOCKET
        listener.bind(str(path))
        uid, _, gid = self.settings.user.partition(":")
        if os.geteuid() == 0 and uid.isdigit():
            os.chown(path, int(uid), int(gid or uid))
            path.chmod(0o600)
        else:
            path.chmod(0o666)  # the directory's random name is the guard
        listener.listen(4)

    def _accept(self, listener: socket.socket, container: Container,
                timeout: float) -> tuple[int, int, int, int]:
        """Start the container and take its agent's four connections, in order."""
        accepted: list[socket.socket] = []
        path = Path(listener.getsockname())
        try:
            container.start()
            deadline = time.monotonic() + timeout
            while len(accepted) < 4:
                if _readable(listener, min(0.25, max(deadline - time.monotonic(), 0))):
                    accepted.append(listener.accept()[0])
                    continue
                _check_alive(container)
                if time.monotonic() > deadline:
                    raise SessionDied("start", f"the agent did not connect within {timeout:g} s")
            container.reload()  # State.Pid, for ContainerProcess
        except BaseException:
            for conn in accepted:
                conn.close()
            raise
        finally:
            listener.close()
            path.unlink(missing_ok=True)
        request, reply, out, err = (conn.detach() for conn in accepted)
        return request, reply, out, err


def _readable(sock: socket.socket, wait: float) -> bool:
    return bool(select.select([sock], [], [], wait)[0])


def _check_alive(container: Container) -> None:
    container.reload()
    state = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead"):
        logs = container.logs(tail=20).decode(errors="replace").strip()[-1500:]
        raise SessionDied("start", f"the container exited with status {state.get('ExitCode')} "
                                   f"before its agent connected: {logs}")


def _remove(container: Container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except ENGINE_ERRORS:  # the reaper removes what is left behind
        pass


def connect(timeout: float = 30.0) -> Any:
    """A client for the engine in DOCKER_HOST (default: the local socket) that answers."""
    url = str(docker.utils.kwargs_from_env().get("base_url") or "unix:///var/run/docker.sock")
    if url.startswith("unix://") and not os.path.exists(url.removeprefix("unix://")):
        # Checked here: docker-py leaks its socket when the connection is refused.
        raise DockerUnavailable(f"no Docker engine answers (no socket at {url})")
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except ENGINE_ERRORS as exc:
        raise DockerUnavailable(f"no Docker engine answers ({exc})") from None
    return client


def image_runtime(client: Any, image: str) -> Interpreter:
    """How to run Python in ``image``: the host's interpreter, or the image's own (with the
    runtimes its label lists and the folders it asks to mask)."""
    try:
        labels = client.images.get(image).labels or {}
    except docker.errors.ImageNotFound:
        raise DockerUnavailable(
            f"the sandbox image {image} does not exist; build it with "
            "'dlgrade sandbox build-local' (or scripts/build-images.sh)") from None
    if labels.get(LABEL_RUNTIME) == "host":
        return host_runtime()
    return Interpreter(labels.get(LABEL_PYTHON, "/usr/local/bin/python"),
                       runtimes=tuple(labels.get(LABEL_RUNTIMES, "").replace(",", " ").split()),
                       masked=tuple(labels.get(LABEL_MASK, "").replace(",", " ").split()))


def unavailable_reason(image: str = LOCAL_IMAGE) -> str | None:
    """None when Docker sandboxes can start here with ``image``, else why not."""
    try:
        image_runtime(connect(5.0), image)
    except (DockerUnavailable, *ENGINE_ERRORS) as exc:
        return str(exc)
    return None


def build_local_image(client: Any, tag: str = LOCAL_IMAGE) -> str:
    """Import a registry-free image of empty mount points; returns its id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in MOUNT_POINTS:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
    repository, _, version = tag.rpartition(":") if ":" in tag else (tag, "", "latest")
    changes = [f"LABEL {LABEL_RUNTIME}=host", "USER 10001:10001", "WORKDIR /submission"]
    client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=version,
                                      changes=changes)
    return str(client.images.get(tag).id)


def reap_orphans(client: Any, worker_prefix: str | None = None,
                 older_than: float = 24 * 3600.0) -> list[str]:
    """Remove dlgrade containers whose worker (this host, by pid) is gone, or too old."""
    removed = []
    host = socket.gethostname()
    # ignore_removed: a container that ends while the list is inspected (another session
    # closing) is no reason to fail a worker's start-up.
    listed = client.containers.list(all=True, filters={"label": LABEL_SESSION},
                                    ignore_removed=True)
    for container in listed:
        labels = container.labels
        worker = labels.get(LABEL_WORKER, "")
        if worker_prefix is not None and not worker.startswith(worker_prefix):
            continue
        worker_host, _, pid = worker.rpartition(":")
        orphan = worker_host == host and pid.isdigit() and not _alive(int(pid))
        created = labels.get(LABEL_CREATED, "0")
        age = time.time() - (int(created) if created.isdigit() else 0)
        if orphan or age > older_than:
            _remove(container)
            removed.append(str(container.name))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WarmPool:
    """Keeps ``size`` started containers ready, modules preloaded; each is used once.

    A warm container mounts an empty per-slot host directory read-only at
    /submission; :meth:`start` copies the handin into it (the host writes it, the
    sandbox cannot) and hands the live session out. The agent put /submission on
    sys.path at start-up and the student's modules are imported only later, so
    they are found. Configs that differ from the template in anything but the
    submission directory get a cold container. Denied imports are never
    preloaded: a module already in sys.modules would bypass the import blocker.
    With a GPU pool, every warm container holds its GPU while it waits.
    """

    name = "docker"

    def __init__(self, backend: DockerBackend, template: SandboxConfig,
                 limits: SessionLimits | None = None, *, size: int = 2,
                 preload: tuple[str, ...] = ("numpy",)) -> None:
        self.backend, self.template, self.size, self.preload = backend, template, size, preload
        self.limits = limits or SessionLimits()
        self.slots_dir = self.backend.settings.run_dir / "warm"
        self.slots_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.idle: list[tuple[DockerSession, Path]] = []
        self.lock = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._refill, name="dlgrade-warm", daemon=True)
        self.thread.start()

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        if self._matches(config, limits):
            while (slot := self._take()) is not None:
                session, folder = slot
                try:
                    shutil.copytree(config.submission_dir, folder, dirs_exist_ok=True)
                    session.ping()
                except (OSError, SessionDied):
                    session.close()
                    continue
                session.take_output()
                session.limits = limits
                return session
        return self.backend.start(config, limits)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Block until the pool is full (for benchmarks and tests)."""
        with self.lock:
            return self.lock.wait_for(lambda: len(self.idle) >= self.size, timeout)

    def close(self) -> None:
        with self.lock:
            self.stopped = True
            idle, self.idle = self.idle, []
            self.lock.notify_all()
        self.thread.join(timeout=60)
        for session, _ in idle:
            session.close()

    def _matches(self, config: SandboxConfig, limits: SessionLimits) -> bool:
        same = dataclasses.replace(config, submission_dir=self.template.submission_dir)
        return same == self.template and (limits.max_request_bytes, limits.output_cap_bytes) == (
            self.limits.max_request_bytes, self.limits.output_cap_bytes)

    def _take(self) -> tuple[DockerSession, Path] | None:
        with self.lock:
            slot = self.idle.pop(0) if self.idle else None
            self.lock.notify_all()
            return slot

    def _refill(self) -> None:
        while True:
            with self.lock:
                self.lock.wait_for(lambda: self.stopped or len(self.idle) < self.size)
                if self.stopped:
                    return
            slot = self._warm_one()
            with self.lock:
                if slot is not None and not self.stopped:
                    self.idle.append(slot)
                    self.lock.notify_all()
                    continue
            if slot is not None:
                slot[0].close()
            else:
                time.sleep(1.0)  # the engine is struggling: do not spin

    def _warm_one(self) -> tuple[DockerSession, Path] | None:
        folder = Path(tempfile.mkdtemp(prefix="slot-", dir=self.slots_dir))
        folder.chmod(0o755)
        config = dataclasses.replace(self.template, submission_dir=folder)
        try:
            session = cast(DockerSession, self.backend.start(config, self.limits))
        except SessionDied:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        session.sandbox.cleanup.append(lambda: shutil.rmtree(folder, True))
        try:
            for module in self.preload:
                if module not in self.template.deny_imports:
                    session.import_module(module, timeout=60)
        except (SessionDied, StudentException):  # a failed preload costs only speed
            session.close()
            return None
        return session, folder
