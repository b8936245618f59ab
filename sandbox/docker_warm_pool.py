"""A pool of started containers waiting for a handin (:class:`WarmPool`)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import cast

from sandbox.backend import SandboxConfig
from sandbox.docker_backend import DockerBackend
from sandbox.docker_session import DockerSession
from sandbox.session import Session, SessionDied, SessionLimits, StudentException


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
