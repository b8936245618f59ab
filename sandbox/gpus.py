"""Handing out GPUs: exactly one per sandbox, shared by every worker on a host.

A :class:`GpuPool` owns one lock file per device under a run directory and takes a
GPU by ``flock``-ing its file. ``flock`` locks belong to an open file description,
so the same pool works between threads (each acquisition opens the file anew),
between worker processes on one host (they share the run directory), and after a
crash (the kernel drops the lock when the holder dies). No GPU is needed to use or
test it: a device id is just a string ("0", "1" or a UUID such as "GPU-3b1f…").

The pool decides *which* GPU a sandbox gets; the Docker backend makes that the only
GPU the sandbox can reach (device cgroup and device nodes, never
``CUDA_VISIBLE_DEVICES`` alone; see docs/security.md §2.4).
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class GpuUnavailable(Exception):
    """No GPU became free within the timeout; the message says how long we waited."""


class GpuLease:
    """One held GPU. ``release()`` is idempotent and safe from any thread."""

    def __init__(self, device: str, fd: int) -> None:
        self.device = device
        self._fd: int | None = fd
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> GpuLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class GpuPool:
    """``devices`` are the ids this host may hand out, one job per device at a time."""

    def __init__(
        self, devices: Sequence[str], run_dir: Path | None = None, *, poll_s: float = 0.05
    ) -> None:
        if not devices:
            raise ValueError("a GPU pool needs at least one device")
        if len(set(devices)) != len(devices):
            raise ValueError(f"duplicate GPU ids in {list(devices)}")
        self.devices = tuple(devices)
        self.run_dir = run_dir or Path(tempfile.gettempdir()) / "dlgrade-gpus"
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.poll_s = poll_s

    def lock_path(self, device: str) -> Path:
        return self.run_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock"

    def try_lease(self) -> GpuLease | None:
        """A free GPU now, or None. Starts at a random device to spread the load."""
        start = random.randrange(len(self.devices))
        for device in self.devices[start:] + self.devices[:start]:
            fd = os.open(self.lock_path(device), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return GpuLease(device, fd)
        return None

    def lease(self, timeout: float | None = None) -> GpuLease:
        """Block until a GPU is free (at most ``timeout`` seconds; None waits forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            lease = self.try_lease()
            if lease is not None:
                return lease
            if deadline is not None and time.monotonic() >= deadline:
                raise GpuUnavailable(
                    f"all {len(self.devices)} GPU(s) stayed busy for {timeout:g} s"
                )
            time.sleep(self.poll_s)

    @contextmanager
    def acquire(self, timeout: float | None = None) -> Iterator[str]:
        """``with pool.acquire(60) as device:`` holds one GPU for the block."""
        with self.lease(timeout) as lease:
            yield lease.device

    def __repr__(self) -> str:
        return f"GpuPool({list(self.devices)!r}, run_dir={str(self.run_dir)!r})"


class BorrowedLease(GpuLease):
    """A GPU lent by a :class:`HeldGpu`: releasing it gives nothing back (the job does)."""

    def __init__(self, device: str) -> None:
        super().__init__(device, -1)
        self._fd = None

    def release(self) -> None:
        return None


class HeldGpu(GpuPool):
    """One GPU a grading job has already leased, lent to each of its sessions in turn.

    The job leases before it starts (a bounded wait it can turn into a retry), keeps the
    same GPU for all its sessions, and releases it when it ends; the sessions' own
    ``release()`` is a no-op. Plugs into ``DockerBackend(gpus=...)`` like a pool.
    """

    def __init__(self, lease: GpuLease) -> None:
        self.held_lease = lease
        self.devices = (lease.device,)
        self.run_dir = Path(tempfile.gettempdir())
        self.poll_s = 0.0

    def try_lease(self) -> GpuLease | None:
        return BorrowedLease(self.held_lease.device) if self.held_lease.held else None

    def lease(self, timeout: float | None = None) -> GpuLease:
        lease = self.try_lease()
        if lease is None:
            raise GpuUnavailable(f"GPU {self.held_lease.device} was already given back")
        return lease

    def __repr__(self) -> str:
        return f"HeldGpu({self.held_lease.device!r})"
