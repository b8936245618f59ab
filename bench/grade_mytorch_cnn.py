"""Time to grade the mytorch-cnn reference solution N times, per sandbox, vs the in-process floor.

    .venv/bin/python bench/grade_mytorch_cnn.py [-n 10]

Prints mean / p50 / max seconds per grading for each backend and the ratio of each
backend's mean to the floor (the same checks run in-process with no sandbox).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from grader.grade import grade_directory
from grader.spec import resolve_assignment
from sandbox.backend import Backend, LocalBackend
from sandbox.inline_backend import InlineBackend
from sandbox.process_backend import ProcessBackend, unavailable_reason

SOLUTION = Path(__file__).resolve().parent.parent / "assignments/mytorch-cnn/solution"


def time_backend(backend: Backend, runs: int) -> list[float]:
    spec = resolve_assignment("mytorch-cnn")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = grade_directory(spec, SOLUTION, backend)
        times.append(time.perf_counter() - started)
        if result.score != result.max_score:
            raise SystemExit(f"{backend.name}: the solution scored {result.score}, not full marks")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    args = parser.parse_args()
    backends: list[Backend] = [InlineBackend(), LocalBackend()]
    if unavailable_reason() is None:
        backends.append(ProcessBackend())
    else:
        print(f"process sandbox unavailable: {unavailable_reason()}")
    time_backend(InlineBackend(), 1)  # warm imports so the floor is not charged for them
    results = {b.name: time_backend(b, args.runs) for b in backends}
    floor = statistics.mean(results["inline"])
    print(f"mytorch-cnn reference solution, {args.runs} gradings per backend (8 tests each)")
    print(f"{'backend':<10} {'mean s':>8} {'p50 s':>8} {'max s':>8} {'x floor':>8}")
    for name, times in results.items():
        mean = statistics.mean(times)
        print(f"{name:<10} {mean:8.3f} {statistics.median(times):8.3f} {max(times):8.3f} "
              f"{mean / floor:8.2f}")


if __name__ == "__main__":
    main()
