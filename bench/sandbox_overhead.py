"""What a sandbox costs: start-to-first-answer and grading time, per backend, in one run.

    .venv/bin/python bench/sandbox_overhead.py [-n 10] [--pool 2]

For the mytorch-cnn reference handin it prints, for the process and Docker backends
(and a Docker warm pool), the cold start-to-first-answer time (``backend.start`` up
to the answer to the first ping) and the time to grade the handin relative to the
unsandboxed floor (``InlineBackend``: the same checks, in-process). Every figure
comes from this one run, so the ratios compare like with like. Backends that cannot
run here are listed with the reason and skipped.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from grader.grade import grade_directory, sandbox_config
from grader.spec import resolve_assignment
from sandbox.backend import Backend, LocalBackend
from sandbox.inline_backend import InlineBackend
from sandbox.process_backend import ProcessBackend, unavailable_reason
from sandbox.select import docker_unavailable_reason
from sandbox.session import SessionLimits

SOLUTION = (Path(__file__).resolve().parent.parent
            / "assignments/mytorch-cnn/solution")
SPEC = resolve_assignment("mytorch-cnn")
LIMITS = SessionLimits(call_timeout_s=SPEC.sandbox.call_timeout_s)


def first_answer(backend: Backend, runs: int, before: Callable[[], object] = lambda: None,
                 ) -> list[float]:
    """Seconds from ``start`` to the answer of the first ping, ``runs`` times."""
    config = sandbox_config(SPEC, SOLUTION)
    times = []
    for _ in range(runs):
        before()
        started = time.perf_counter()
        session = backend.start(config, LIMITS)
        session.ping()
        times.append(time.perf_counter() - started)
        session.close()
    return times


def grading(backend: Backend, runs: int, before: Callable[[], object] = lambda: None,
            ) -> list[float]:
    times = []
    for _ in range(runs):
        before()
        started = time.perf_counter()
        result = grade_directory(SPEC, SOLUTION, backend)
        times.append(time.perf_counter() - started)
        if result.score != result.max_score:
            raise SystemExit(f"{backend.name}: the solution scored {result.score}/"
                             f"{result.max_score}: {[t.output[:200] for t in result.tests]}")
    return times


def backends(pool_size: int) -> tuple[dict[str, Backend], list[Callable[[], None]]]:
    """The backends this machine can run, by label, and what to close afterwards."""
    found: dict[str, Backend] = {"none": LocalBackend()}
    closers: list[Callable[[], None]] = []
    reason = unavailable_reason()
    if reason is None:
        found["process"] = ProcessBackend()
    else:
        print(f"process sandbox unavailable: {reason}")
    docker_reason = docker_unavailable_reason()
    if docker_reason is not None:
        print(f"docker sandbox unavailable: {docker_reason}")
        return found, closers
    from sandbox.docker_backend import DockerBackend
    from sandbox.docker_warm_pool import WarmPool

    docker = DockerBackend()
    found["docker"] = docker
    if pool_size > 0:
        template = sandbox_config(SPEC, SOLUTION)
        pool = WarmPool(docker, template, LIMITS, size=pool_size)
        found["docker-warm"] = pool
        closers.append(pool.close)
    return found, closers


def row(name: str, times: list[float], floor: float | None) -> str:
    mean = statistics.mean(times)
    ratio = f"{mean / floor:8.2f}" if floor else f"{'':>8}"
    return (f"{name:<12} {mean:8.3f} {statistics.median(times):8.3f} {max(times):8.3f} "
            f"{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("--pool", type=int, default=2, help="warm pool size (0: no pool)")
    args = parser.parse_args()
    found, closers = backends(args.pool)
    try:
        grading(InlineBackend(), 1)  # warm imports so the floor is not charged for them
        floor = statistics.mean(grading(InlineBackend(), args.runs))
        starts, grades = {}, {}
        for name, backend in found.items():
            ready = getattr(backend, "wait_ready", lambda: None)  # a pool refills in between
            starts[name] = first_answer(backend, args.runs, ready)
            grades[name] = grading(backend, args.runs, ready)
    finally:
        for close in closers:
            close()
    header = f"{'backend':<12} {'mean s':>8} {'p50 s':>8} {'max s':>8}"
    print(f"mytorch-cnn reference handin, {args.runs} runs per figure")
    print(f"\nstart to first answer (session start -> first ping)\n{header}")
    for name, times in starts.items():
        print(row(name, times, None))
    print(f"\ngrading the handin (8 tests){'':>4}floor: inline {floor:.3f} s\n"
          f"{header} {'x floor':>8}")
    for name, times in grades.items():
        print(row(name, times, floor))


if __name__ == "__main__":
    main()
