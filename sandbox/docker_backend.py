"""The Docker backend: one hardened, single-use container per session.

:class:`DockerBackend` puts the pieces together; each lives in its own module:

- :mod:`sandbox.docker_engine`: the engine, through the few calls made of it (the
  only module that calls docker-py);
- :mod:`sandbox.docker_images`: the sandbox images and how Python runs in each;
- :mod:`sandbox.docker_profile`: the hardened container profile (pure);
- :mod:`sandbox.docker_gpu`: a GPU job's device;
- :mod:`sandbox.docker_channel`: the four sockets the agent connects back on;
- :mod:`sandbox.docker_container` and :mod:`sandbox.docker_session`: a started
  container seen as a process, and the Session over it;
- :mod:`sandbox.docker_reaper`: containers of dead workers;
- :mod:`sandbox.docker_warm_pool`: started containers waiting for a handin.

Every path out of :meth:`DockerBackend.start` that does not hand a session out
undoes what it did (the container, the channel folder, the listener, the GPU); a
session undoes the same when it closes.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from sandbox import docker_engine as engine
from sandbox.backend import SandboxConfig, agent_dir, resolve_runtime
from sandbox.docker_channel import accept_agent, listen
from sandbox.docker_container import ContainerProcess
from sandbox.docker_engine import ENGINE_ERRORS
from sandbox.docker_images import image_runtime
from sandbox.docker_profile import DockerSettings, container_kwargs
from sandbox.docker_reaper import reap_orphans
from sandbox.docker_session import DockerSession
from sandbox.gpus import GpuLease, GpuPool, GpuUnavailable
from sandbox.runtimes import RuntimeStore, default_store
from sandbox.session import Sandbox, Session, SessionDied, SessionLimits


class DockerBackend:
    """Starts :class:`DockerSession` s; one GPU from ``gpus`` per session when given."""

    name = "docker"

    def __init__(self, settings: DockerSettings | None = None, *, client: Any = None,
                 gpus: GpuPool | None = None, reap: bool = True,
                 store: RuntimeStore | None = None) -> None:
        self.settings = settings or DockerSettings()
        self.client = client or engine.connect(self.settings.api_timeout_s)
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
        cleanup.append(listener.close)  # closed by accept_agent already in the normal case
        try:
            runtime = None
            if self.interpreter.runtimes is None:
                runtime = resolve_runtime(self.store, config)
            lease = self._lease_gpu()
            if lease is not None:
                cleanup.append(lease.release)
            listen(listener, channel, self.settings.user)
            gpu = None if lease is None else lease.device
            kwargs = container_kwargs(config, limits, self.settings, self.interpreter,
                                      token=token, channel=channel, gpu=gpu, runtime=runtime)
            container = engine.create(self.client, kwargs)
            cleanup.insert(0, lambda: engine.remove(container))
            box = ContainerProcess(container)
            fds = accept_agent(listener, box, limits.start_timeout_s)
        except (*ENGINE_ERRORS, SessionDied, GpuUnavailable) as exc:
            for action in cleanup:
                action()
            if isinstance(exc, SessionDied):
                raise
            raise SessionDied("start", f"the sandbox could not start: {exc}") from exc
        sandbox = Sandbox(cast("subprocess.Popen[bytes]", box), *fds, self.name, cleanup)
        return DockerSession(sandbox, limits, box, config.memory_mb)

    def _lease_gpu(self) -> GpuLease | None:
        return None if self.gpus is None else self.gpus.lease(self.settings.gpu_wait_s)
