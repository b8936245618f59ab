"""The grader's end of the trusted child (``grader.graph.child``).

Every run of a student's reported computation happens in that child: a graph that claims
a huge tensor or a billion operations costs the child, never the worker. The child has an
address-space limit; each request has a wall-clock limit enforced here, after which the
child is killed and :class:`TrustedTimeout` raised.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.graph.wire import GraphError
from sandbox import protocol

MAX_REPLY_BYTES = 256 << 20
START_TIMEOUT_S = 120.0


class TrustedTimeout(Exception):
    """A request to the child ran past its limit (the child was killed)."""


# The folder holding this ``grader`` package: -I leaves out PYTHONPATH and the working
# directory, so a worker run from a checkout (not pip-installed) would not find it.
CODE_ROOT = str(Path(__file__).resolve().parents[2])
BOOT = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
        "runpy.run_module('grader.graph.child', run_name='__main__', alter_sys=True)")


class TrustedFailure(Exception):
    """The child failed for a reason that is not the graph's (a grader fault)."""


class TrustedChild:
    """One child process; use as a context manager."""

    def __init__(self, *, memory_mb: int = 4096, threads: int = 1) -> None:
        request_read, self.request_fd = os.pipe()
        self.reply_fd, reply_write = os.pipe()
        self.stderr = tempfile.TemporaryFile()
        command = [sys.executable, "-I", "-c", BOOT, CODE_ROOT, str(request_read),
                   str(reply_write), str(max(memory_mb, 1024) + 1024), str(threads)]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
        env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
        self.process = subprocess.Popen(
            command, pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.stderr, env=env, start_new_session=True)
        os.close(request_read)
        os.close(reply_write)
        self._read(START_TIMEOUT_S, "start-up")

    def __enter__(self) -> TrustedChild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, op: str, timeout: float = 60.0, **fields: Any) -> Any:
        """Send one request; its value, or GraphError (the graph's fault), TrustedTimeout,
        TrustedFailure."""
        if self.process.poll() is not None:
            raise TrustedFailure("the trusted child is not running")
        protocol.write_all(self.request_fd, protocol.encode({"op": op, **fields}))
        reply = self._read(timeout, op)
        if not isinstance(reply, dict):
            raise TrustedFailure("malformed reply from the trusted child")
        if reply.get("ok") is True:
            return reply.get("value")
        kind, error = reply.get("kind"), str(reply.get("error", ""))
        if kind in ("graph", "memory"):
            raise GraphError(error)
        raise TrustedFailure(f"{error}\n{reply.get('traceback', '')}")

    def _read(self, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        header = self._exactly(protocol.LENGTH.size, deadline, what)
        (length,) = protocol.LENGTH.unpack(header)
        if length > MAX_REPLY_BYTES:
            self.close()
            raise TrustedFailure(f"reply of {length} bytes from the trusted child")
        return protocol.decode(self._exactly(length, deadline, what))

    def _exactly(self, count: int, deadline: float, what: str) -> bytes:
        chunks, remaining = [], count
        while remaining:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.reply_fd], [], [], max(left, 0.0))
            if not ready:
                self.close()
                raise TrustedTimeout(f"the grader's run of your model ({what}) took longer "
                                     f"than its limit")
            chunk = os.read(self.reply_fd, min(remaining, 1 << 20))
            if not chunk:
                code = self.process.wait()
                detail = self._stderr_tail()
                self.close()
                if code in (-signal.SIGKILL, -signal.SIGSEGV) or "MemoryError" in detail:
                    raise GraphError("running your model's computation needed more memory "
                                     "than allowed")
                raise TrustedFailure(f"the trusted child stopped during {what} "
                                     f"(exit {code}): {detail}")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:].decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        for fd in (self.request_fd, self.reply_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.request_fd = self.reply_fd = -1
        self.stderr.close()
