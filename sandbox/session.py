"""The trusted side of a sandbox session: requests out, plain data back.

Checks use :class:`Session` and :class:`Remote`; they never see processes or
frames. Every request has its own wall-clock timeout enforced here, outside the
sandbox. A timeout, an exit, a kill or a malformed answer ends the session
(:class:`SessionDied`); an exception raised by student code does not
(:class:`StudentException`).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from sandbox import protocol
from sandbox.output import CappedText, neutralise
from sandbox.protocol import Handle, ProtocolError


class SandboxError(Exception):
    """Base of everything a session raises."""


class StudentException(SandboxError):
    """Student code raised; the session is still usable."""

    def __init__(self, type_name: str, message: str, traceback: str, what: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        self.what = what


class SessionDied(SandboxError):
    """The sandbox is gone: ``reason`` is timeout, exited, killed, oom, malformed or start."""

    def __init__(self, reason: str, detail: str, exit_code: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.exit_code = exit_code


@dataclass(frozen=True)
class SessionLimits:
    """Limits the trusted side enforces on every session."""

    call_timeout_s: float = 10.0
    start_timeout_s: float = 30.0
    max_reply_bytes: int = 64 << 20
    max_request_bytes: int = 512 << 20
    output_cap_bytes: int = 64 << 10


@dataclass
class Sandbox:
    """A started sandbox process and the trusted ends of its pipes."""

    process: subprocess.Popen[bytes]
    request_fd: int
    reply_fd: int
    stdout_fd: int
    stderr_fd: int
    backend: str
    cleanup: list[Any] = field(default_factory=list)
    # Says why the sandbox was OOM-killed by its aggregate memory limit (the process
    # backend's cgroup), or None.
    oom: Callable[[], str | None] | None = None


class Session:
    """One sandbox: a live agent plus the student's captured output."""

    def __init__(self, sandbox: Sandbox, limits: SessionLimits) -> None:
        self.sandbox = sandbox
        self.limits = limits
        self.stdout = CappedText(limits.output_cap_bytes)
        self.stderr = CappedText(limits.output_cap_bytes)
        self.dead: SessionDied | None = None
        self.closed = False
        self.requests = 0
        self.started = time.monotonic()
        self.deadline: float | None = None  # set per test by the grader
        self.hung_imports: dict[str, str] = {}  # module -> why (see import_module)
        os.set_blocking(sandbox.request_fd, False)
        try:
            self._exchange(None, limits.start_timeout_s, "start-up")
        except SessionDied as death:
            stderr = self.stderr.take().strip()[-2000:]
            raise SessionDied("start", f"the sandbox could not start ({death.detail}): {stderr}",
                              death.exit_code) from None

    @property
    def backend(self) -> str:
        return self.sandbox.backend

    # -- public API used by checks -------------------------------------------------

    def import_module(self, name: str, *, timeout: float | None = None) -> Remote:
        """Import ``name`` in the sandbox. An import that hung for its whole timeout is
        recorded in :attr:`hung_imports` (which the grader shares between the sessions of
        one handin), and importing it again fails at once instead of waiting again."""
        if name in self.hung_imports:
            raise SessionDied("timeout", f"import {name} did not finish in an earlier test "
                              f"({self.hung_imports[name]}), so it was not tried again")
        started, budget = time.monotonic(), timeout or self.limits.call_timeout_s
        try:
            value = self.request({"op": "import", "module": name}, timeout, f"import {name}")
        except SessionDied as death:
            if death.reason == "timeout" and time.monotonic() - started >= 0.95 * budget:
                self.hung_imports[name] = death.detail
            raise
        return self._remote(value, name)

    def routine(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Run a grader routine inside the sandbox (``sandbox.routines``)."""
        message = {
            "op": "routine", "name": name,
            "args": [_unwrap(a) for a in args],
            "kwargs": {k: _unwrap(v) for k, v in kwargs.items()},
        }
        return self.request(message, timeout, f"{name}()")

    def ping(self) -> dict[str, Any]:
        value = self.request({"op": "ping"}, None, "ping")
        if not isinstance(value, dict):
            raise SessionDied("malformed", "the sandbox answered a ping with the wrong type")
        return value

    def reset_processes(self, timeout: float = 10.0) -> int:
        """Kill and reap every process of the sandbox but its agent (between tests);
        returns how many were reaped. Only for backends with a PID namespace."""
        value = self.request({"op": "reset"}, timeout, "resetting the sandbox")
        return value if type(value) is int else 0

    def request(self, message: dict[str, Any], timeout: float | None, what: str) -> Any:
        """Send one request and return the decoded value, or raise."""
        budget = timeout or self.limits.call_timeout_s
        if self.deadline is not None:
            budget = max(min(budget, self.deadline - time.monotonic()), 0.001)
        reply = self._exchange(message, budget, what)
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            self._die(SessionDied("malformed", f"malformed response to {what}"))
        if reply["ok"]:
            return reply.get("value")
        error = reply.get("error")
        if not isinstance(error, dict):
            self._die(SessionDied("malformed", f"malformed error response to {what}"))
        raise StudentException(  # text from the sandbox: control characters neutralised
            neutralise(str(error.get("type", "Exception"))[:100]),
            neutralise(str(error.get("message", ""))[:2000]),
            neutralise(str(error.get("traceback", ""))[:8000]),
            what,
        )

    def take_output(self) -> tuple[str, str]:
        """The student's stdout and stderr since the last call (each capped)."""
        if not self.closed:  # after close() the descriptor numbers may belong to others
            self._drain_output(0.0)
        return self.stdout.take(), self.stderr.take()

    def close(self) -> None:
        """Kill the sandbox (the whole process group) and release its pipes. Idempotent:
        a second call must not close descriptor numbers that have been reused since."""
        if self.closed:
            return
        self.closed = True
        self._stop()
        self._drain_output(0.0)
        for fd in self._fds():
            try:
                os.close(fd)
            except OSError:
                pass
        for action in self.sandbox.cleanup:
            action()
        self.sandbox.cleanup.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------

    def _stop(self) -> None:
        """Kill the sandbox and wait for it to end (a backend whose sandbox is not a
        process group of this host overrides this)."""
        process = self.sandbox.process
        # Kill the group even when the leader has already exited: children it forked
        # (same process group) would otherwise outlive the session.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _remote(self, value: Any, label: str) -> Remote:
        if not isinstance(value, Handle):
            raise StudentException("TypeError", f"{label} is a plain value, not an object", "")
        return Remote(self, value, label)

    def _fds(self) -> tuple[int, int, int, int]:
        s = self.sandbox
        return (s.request_fd, s.reply_fd, s.stdout_fd, s.stderr_fd)

    def _die(self, death: SessionDied) -> NoReturn:
        self.dead = death
        self.close()
        raise death

    def _exchange(self, message: dict[str, Any] | None, timeout: float, what: str) -> Any:
        if self.dead is not None:
            raise self.dead
        if self.closed:
            raise SessionDied("killed", f"the sandbox was closed before {what}")
        # A memoryview, so that dropping what was written copies nothing (slicing bytes
        # would copy the remainder on every write: quadratic for a 200 MB training set).
        outgoing = memoryview(b"" if message is None else protocol.encode(message))
        if len(outgoing) > self.limits.max_request_bytes:
            raise ValueError(f"request for {what} is larger than the request cap")
        self.requests += 1
        deadline = time.monotonic() + timeout
        reader = FrameReader(self.limits.max_reply_bytes)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._die(self._death_after_timeout(what, timeout))
            wants_write = [self.sandbox.request_fd] if outgoing else []
            readable, writable, _ = select.select(
                [self.sandbox.reply_fd, self.sandbox.stdout_fd, self.sandbox.stderr_fd],
                wants_write, [], remaining,
            )
            if writable:
                outgoing = self._write_some(outgoing, what)
            self._read_output(readable)
            if self.sandbox.reply_fd in readable:
                payload = self._read_reply(reader, what)
                if payload is not None:
                    self._drain_output(0.0)
                    self._check_memory(what)
                    try:
                        return protocol.decode(payload)
                    except ProtocolError as exc:
                        self._die(SessionDied("malformed", f"malformed response: {exc}"))

    def _check_memory(self, what: str) -> None:
        """A process of the sandbox was OOM-killed (its aggregate limit): the sandbox is
        over its memory, whichever process the kernel chose, so the session ends."""
        oom = self.sandbox.oom() if self.sandbox.oom is not None else None
        if oom is not None:
            self._die(SessionDied("oom", f"{oom} during {what}"))

    def _write_some(self, outgoing: memoryview, what: str) -> memoryview:
        try:
            written = os.write(self.sandbox.request_fd, outgoing[: 1 << 20])
        except BlockingIOError:
            return outgoing
        except BrokenPipeError:
            self._die(self._death_after_exit(what))
        return outgoing[written:]

    def _read_reply(self, reader: FrameReader, what: str) -> bytes | None:
        try:
            chunk = os.read(self.sandbox.reply_fd, 1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            self._die(self._death_after_exit(what))
        try:
            return reader.feed(chunk)
        except ProtocolError as exc:
            self._die(SessionDied("malformed", f"malformed response: {exc}"))

    def _read_output(self, readable: list[int]) -> None:
        streams = ((self.sandbox.stdout_fd, self.stdout), (self.sandbox.stderr_fd, self.stderr))
        for fd, sink in streams:
            if fd in readable:
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError:
                    chunk = b""
                if chunk:
                    sink.feed(chunk)

    def _drain_output(self, wait: float) -> None:
        fds = [self.sandbox.stdout_fd, self.sandbox.stderr_fd]
        for _ in range(64):  # bounded: a flooding child cannot keep us here
            try:
                readable, _, _ = select.select(fds, [], [], wait)
            except (OSError, ValueError):
                return
            if not readable:
                return
            before = self.stdout.total + self.stderr.total
            self._read_output(readable)
            if self.stdout.total + self.stderr.total == before:
                return

    def _death_after_timeout(self, what: str, timeout: float) -> SessionDied:
        return SessionDied("timeout", f"{what} did not finish within {timeout:.3g} s")

    def _death_after_exit(self, what: str) -> SessionDied:
        process = self.sandbox.process
        try:
            code = process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        oom = self.sandbox.oom() if self.sandbox.oom is not None else None
        if oom is not None:
            return SessionDied("oom", f"{oom} during {what}", code)
        if code is not None and code < 0 and -code == signal.SIGKILL:
            return SessionDied("killed", f"the sandbox was killed during {what}", code)
        if code is not None and code in (137, 128 + signal.SIGKILL):
            return SessionDied("killed", f"the sandbox was killed during {what}", code)
        return SessionDied("exited", f"your code exited the process during {what}", code)


class FrameReader:
    """Reassembles one length-prefixed frame from chunks, enforcing the size cap."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.expected: int | None = None

    def feed(self, chunk: bytes) -> bytes | None:
        self.buffer += chunk
        if self.expected is None and len(self.buffer) >= protocol.LENGTH.size:
            (self.expected,) = protocol.LENGTH.unpack_from(self.buffer)
            if self.expected > self.max_bytes:
                raise ProtocolError(
                    f"a reply of {self.expected} bytes exceeds the {self.max_bytes}-byte cap"
                )
        if self.expected is None:
            return None
        end = protocol.LENGTH.size + self.expected
        if len(self.buffer) < end:
            return None
        if len(self.buffer) > end:
            raise ProtocolError("extra bytes after the reply")
        return bytes(self.buffer[protocol.LENGTH.size : end])


class Remote:
    """A proxy for one object in the sandbox. Every method is one request."""

    def __init__(self, session: Session, handle: Handle, label: str) -> None:
        self.session = session
        self.handle = handle
        self.label = label

    @property
    def type_name(self) -> str:
        return self.handle.type_name

    def attr(self, name: str, *, timeout: float | None = None) -> Any:
        """``obj.name`` as plain data, or a Remote for anything else."""
        message = {"op": "getattr", "obj": self.handle, "name": name}
        value = self.session.request(message, timeout, f"reading {self.label}.{name}")
        return self._wrap(value, f"{self.label}.{name}")

    def get_object(self, name: str, *, timeout: float | None = None) -> Remote:
        """``obj.name`` when it must be an object (a class, a layer), never plain data."""
        return _require_remote(self.attr(name, timeout=timeout), f"{self.label}.{name}")

    def new(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Remote:
        """Call this (a class) and require an object back."""
        return _require_remote(self.call(*args, timeout=timeout, **kwargs), f"{self.label}()")

    def set(self, name: str, value: Any, *, timeout: float | None = None) -> None:
        message = {"op": "setattr", "obj": self.handle, "name": name, "value": _unwrap(value)}
        self.session.request(message, timeout, f"setting {self.label}.{name}")

    def call(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return self._call(None, args, kwargs, timeout, f"{self.label}()")

    def method(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return self._call(name, args, kwargs, timeout, f"{self.label}.{name}()")

    def item(self, key: Any, *, timeout: float | None = None) -> Any:
        message = {"op": "getitem", "obj": self.handle, "key": _unwrap(key)}
        value = self.session.request(message, timeout, f"indexing {self.label}")
        return self._wrap(value, f"{self.label}[{key!r}]")

    def length(self, *, timeout: float | None = None) -> int:
        message = {"op": "len", "obj": self.handle}
        value = self.session.request(message, timeout, f"len({self.label})")
        if type(value) is not int:
            raise StudentException("TypeError", f"len({self.label}) is not an int", "")
        return value

    def _call(
        self, name: str | None, args: tuple[Any, ...], kwargs: dict[str, Any],
        timeout: float | None, what: str,
    ) -> Any:
        message = {
            "op": "call", "obj": self.handle, "name": name,
            "args": [_unwrap(a) for a in args],
            "kwargs": {k: _unwrap(v) for k, v in kwargs.items()},
        }
        return self._wrap(self.session.request(message, timeout, what), what.rstrip("()"))

    def _wrap(self, value: Any, label: str) -> Any:
        """Handles become Remotes, also inside lists and dicts."""
        if isinstance(value, Handle):
            return Remote(self.session, value, label)
        if isinstance(value, list):
            return [self._wrap(item, f"{label}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: self._wrap(item, f"{label}[{key!r}]") for key, item in value.items()}
        return value

    def __repr__(self) -> str:
        return f"<Remote {self.label}: {self.type_name}>"


def _require_remote(value: Any, label: str) -> Remote:
    if isinstance(value, Remote):
        return value
    kind = type(value).__name__
    raise StudentException("TypeError", f"{label} is a plain value ({kind}), not an object", "")


def _unwrap(value: Any) -> Any:
    if isinstance(value, Remote):
        return value.handle
    if isinstance(value, list | tuple):
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value)
    return value
