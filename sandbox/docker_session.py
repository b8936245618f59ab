"""A :class:`~sandbox.session.Session` whose sandbox is a container.

It differs from a process's session in the two places where Session touches the
process: stopping it kills the container through the engine (the wall-clock
timeouts stay enforced by Session, outside the sandbox; the container is removed
by the session's cleanup), and a death reads the container's ``State`` so an OOM
kill becomes reason ``"oom"``.
"""

from __future__ import annotations

import subprocess

from sandbox.docker_container import ContainerProcess
from sandbox.session import Sandbox, Session, SessionDied, SessionLimits


class DockerSession(Session):
    """A Session whose sandbox is a container: killed and inspected through the engine."""

    def __init__(self, sandbox: Sandbox, limits: SessionLimits, box: ContainerProcess,
                 memory_mb: int) -> None:
        self.box = box
        self.memory_mb = memory_mb
        super().__init__(sandbox, limits)

    def _stop(self) -> None:
        self.box.kill()
        try:
            self.box.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # the cleanup's removal uses force

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
