"""The floor: the agent's dispatcher called in-process, with no sandbox at all.

Only for benchmarks that measure what isolation costs. Student code runs inside
the calling process, so never use it for untrusted code. Messages still go
through encode/decode so the checks see exactly what a real session returns.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any

from sandbox import protocol
from sandbox.agent import Dispatcher, answer
from sandbox.backend import SandboxConfig
from sandbox.session import Session, SessionLimits


class InlineSession(Session):
    """A Session whose 'sandbox' is this process."""

    def __init__(self, config: SandboxConfig, limits: SessionLimits) -> None:  # noqa: D107
        self.limits = limits
        self.dead = None
        self.requests = 0
        self.deadline = None
        self.root = str(config.submission_dir)
        self.dispatcher = Dispatcher()
        self.captured = io.StringIO()
        sys.path.insert(0, self.root)

    @property
    def backend(self) -> str:
        return InlineBackend.name

    def _exchange(self, message: dict[str, Any] | None, timeout: float, what: str) -> Any:
        self.requests += 1
        request = protocol.decode(protocol.encode(message)[protocol.LENGTH.size :])
        with contextlib.redirect_stdout(self.captured), contextlib.redirect_stderr(self.captured):
            frame = answer(self.dispatcher, request)
        return protocol.decode(frame[protocol.LENGTH.size :])

    def take_output(self) -> tuple[str, str]:
        text = self.captured.getvalue()
        self.captured = io.StringIO()
        return text, ""

    def close(self) -> None:
        if self.root in sys.path:
            sys.path.remove(self.root)
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "") or "").startswith(self.root):
                del sys.modules[name]


class InlineBackend:
    """No process, no isolation: the floor that sandbox overhead is measured against."""

    name = "inline"

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        return InlineSession(config, limits)
