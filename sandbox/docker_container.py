"""One sandbox container's life: started, watched, killed (removal is the session's
cleanup, :mod:`sandbox.docker_backend`), through :mod:`sandbox.docker_engine`."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from sandbox import docker_engine as engine
from sandbox.docker_engine import Container, ContainerGone
from sandbox.session import SessionDied


class ContainerProcess:
    """The container seen through the part of ``Popen`` that callers read."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.args = container.name
        self.pid = int(container.attrs.get("State", {}).get("Pid") or 0)
        self.returncode: int | None = None
        self.state: dict[str, Any] = {}

    def start(self) -> None:
        engine.start(self.container)

    def check_alive(self) -> None:
        """Raise SessionDied when the container has ended before its agent connected."""
        state = engine.reload(self.container)
        if state.get("Status") in ("exited", "dead"):
            logs = engine.logs(self.container, tail=20).strip()[-1500:]
            raise SessionDied("start", f"the container exited with status {state.get('ExitCode')} "
                                       f"before its agent connected: {logs}")

    def refresh(self) -> None:
        """Read State.Pid, now that the container runs."""
        self.pid = int(engine.reload(self.container).get("Pid") or 0)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.state = engine.reload(self.container)
            except ContainerGone:
                self.returncode = 137
                return self.returncode
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
            engine.kill(self.container)
