"""Cost and calibration of the ``torch.accuracy`` check on the mnist-mlp-cnn-vit solution.

    .venv/bin/python bench/accuracy_check.py time [--data mnist5k|fashion_mnist] [--gpu]
    .venv/bin/python bench/accuracy_check.py calibrate [--seeds 5] [--tests "CNN: accuracy"]
    .venv/bin/python bench/accuracy_check.py full [--seeds 1]

``time``: the MNIST-size CNN accuracy check (5 epochs, batch 32, Adam) through the process
sandbox (the local backend where none is available): total wall time and the share
spent outside the training epochs (sandbox start, torch import, data transfer, controls,
predictions, summaries). ``--gpu`` asks for CUDA (spec ``sandbox.gpu``); the device used is
printed. ``calibrate``: the held-out accuracy the reference solution reaches in each
accuracy test of the CI spec, over several seeds, to set thresholds (README.md).
``full``: the full-size configuration (Fashion-MNIST 60k/10k when installed, bigger
ViT, more epochs), which CI never runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from grader.checks.accuracy import AccuracyRun
from grader.context import CheckContext, CheckFailed
from grader.data import available
from grader.grade import Sessions, sandbox_config
from grader.spec import AssignmentSpec, TestSpec, resolve_assignment
from sandbox.backend import Backend, LocalBackend
from sandbox.process_backend import ProcessBackend, unavailable_reason
from sandbox.session import SessionLimits

SOLUTION = (Path(__file__).resolve().parent.parent
            / "assignments/mnist-mlp-cnn-vit/solution")
FULL_SIZE: dict[str, dict[str, Any]] = {
    "CNN: accuracy": {"epochs": 5, "train_size": None},
    "MLP: accuracy": {"config": None, "epochs": 10, "batch_size": 64, "lr": 1e-3},
    "ViT: accuracy": {"epochs": 10, "batch_size": 128, "lr": 1e-3,
                      "init_kwargs": {"d_model": 64, "depth": 6, "num_heads": 8, "d_ff": 128,
                                      "patch_size": 7}},
}


def backend() -> Backend:
    return ProcessBackend() if unavailable_reason() is None else LocalBackend()


def run_check(spec: AssignmentSpec, test: TestSpec, seed: int) -> tuple[AccuracyRun, float]:
    """One accuracy check on the solution in a fresh sandbox: the run and its wall time."""
    limits = SessionLimits(call_timeout_s=spec.sandbox.call_timeout_s)
    sessions = Sessions(backend(), sandbox_config(spec, SOLUTION), limits)
    started = time.perf_counter()
    try:
        ctx = CheckContext(spec, test, np.random.default_rng([seed, 0]), sessions.get,
                           restart_session=sessions.restart)
        run = AccuracyRun(ctx)
        try:
            run.grade()
        except CheckFailed as failed:
            if run.final is None:
                raise SystemExit(f"{test.name}: {failed.message}") from None
    finally:
        sessions.close()
    return run, time.perf_counter() - started


def with_params(spec: AssignmentSpec, name: str, changes: dict[str, Any]) -> TestSpec:
    test = next(t for t in spec.tests if t.name == name)
    params = {**test.params, **changes}
    params = {k: v for k, v in params.items() if v is not None}
    return test.model_copy(update={"params": params, "timeout_s": 3600.0})


def time_check(args: argparse.Namespace) -> None:
    base = resolve_assignment("mnist-mlp-cnn-vit")
    spec = base.model_copy(update={"sandbox": base.sandbox.model_copy(
        update={"gpu": args.gpu, "call_timeout_s": 600.0, "cpu_seconds": 7200})})
    dataset = args.data
    test = with_params(spec, "CNN: accuracy", {"epochs": 5, "batch_size": 32,
                                               "dataset": dataset, "epoch_timeout_s": 1800})
    run, total = run_check(spec, test, 0)
    training = sum(run.curve.seconds)
    print(f"CNN accuracy check, {dataset}: {len(run.x_train):,} train / {len(run.x_test):,} "
          f"held-out, 5 epochs, batch 32, Adam; backend {backend().name}; "
          f"device {'cuda' if args.gpu else 'cpu'} requested")
    print(run.curve.table())
    print(f"total {total:.1f} s, training epochs {training:.1f} s, outside the training loop "
          f"{total - training:.1f} s ({(total - training) / total:.0%})")


def calibrate(args: argparse.Namespace, changes: dict[str, dict[str, Any]] | None = None) -> None:
    spec = resolve_assignment("mnist-mlp-cnn-vit")
    names = args.tests or [t.name for t in spec.tests if t.check == "torch.accuracy"]
    for name in names:
        test = with_params(spec, name, (changes or {}).get(name, {}))
        finals, times = [], []
        for seed in range(args.seeds):
            run, seconds = run_check(spec, test, seed)
            finals.append(run.final or 0.0)
            times.append(seconds)
        print(f"{name}: accuracy min {min(finals):.3f} mean {statistics.mean(finals):.3f} "
              f"max {max(finals):.3f} over {len(finals)} seeds; {statistics.mean(times):.1f} s "
              f"per check; thresholds {test.params['thresholds']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("mode", choices=["time", "calibrate", "full"])
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tests", nargs="*")
    args = parser.parse_args()
    if args.mode == "time":
        time_check(args)
    elif args.mode == "calibrate":
        calibrate(args)
    else:
        data = "fashion_mnist" if available()["fashion_mnist"] else "mnist5k"
        full = {name: {**changes, "dataset": data} for name, changes in FULL_SIZE.items()}
        calibrate(args, full)


if __name__ == "__main__":
    main()
