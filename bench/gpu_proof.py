"""Proof of the GPU path (docs/gpu.md): the real Docker backend, GpuPool and SandboxProvider.

    python bench/gpu_proof.py --out DIR [--gpus auto|0,1] [--dry-run] [--skip-accuracy]

Run on the GPU machine by ``scripts/gpu-proof.sh`` (a Docker engine from ``.devicekit``,
python3 with CUDA PyTorch). Steps, each time-boxed, each written to ``DIR/gpu-proof.json``
as soon as it ends (a run cut short still reports what it did):

* ``environment``: GPUs, device nodes, torch on the host, the Docker engine;
* ``image``: ``build_local_image`` (host runtime: this interpreter's venv mounted read-only);
* ``c_no_gpu``: a hardened container started without a GPU imports torch and reports
  ``torch.cuda.is_available()`` and ``/dev/nvidia*`` (expected: False and none);
* ``a_grade`` and ``b_waits``: job A grades the mnist-mlp-cnn-vit solution (``gpu = true``,
  CNN accuracy at 5 epochs, batch 32) through ``SandboxProvider.reserve`` in ``devices``
  mode; while A holds the only GPU, job B asks for one and must wait until A gives it
  back (timestamps), then runs a CUDA probe in its own container;
* ``d_accuracy``: ``bench/accuracy_check.py time`` on CPU and with ``--gpu``.

``--dry-run`` (no GPU, any machine with Docker and the repository's venv): the same
bookkeeping with a fake GPU id whose containers get no device, a quick subset of tests,
and no accuracy timings; ``tests/test_gpu_proof.py`` runs it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.grade import grade_path  # noqa: E402
from grader.spec import AssignmentSpec, resolve_assignment  # noqa: E402
from sandbox.backend import SandboxConfig  # noqa: E402
from sandbox.docker_backend import DockerBackend  # noqa: E402
from sandbox.docker_engine import connect  # noqa: E402
from sandbox.docker_images import build_local_image  # noqa: E402
from sandbox.docker_profile import DockerSettings  # noqa: E402
from sandbox.gpus import GpuPool  # noqa: E402
from sandbox.session import Session, SessionLimits  # noqa: E402
from tasks.sandboxes import SandboxProvider  # noqa: E402

SLUG = "mnist-mlp-cnn-vit"
SOLUTION = ROOT / "assignments" / SLUG / "solution"
IMAGE = "dlgrade-sandbox:gpu-proof"
DRY_TESTS = ("CNN: fewer than 50,000 parameters",
             "SingleHeadAttention matches softmax(QK^T/sqrt(d_k))V")
# Seconds per step; together under the 480 s that scripts/gpu-proof.sh allows.
LIMITS = {"environment": 20, "image": 30, "c_no_gpu": 60, "a_grade": 180, "b_waits": 30,
          "d_accuracy": 150}
PROBE = '''\
import glob, os

def report():
    given = os.environ.pop("CUDA_VISIBLE_DEVICES", "")  # F1: dropping it must not help,
    os.environ["NVIDIA_VISIBLE_DEVICES"] = "all"  # F6: nor asking the toolkit for all GPUs
    import torch
    out = {"cuda": bool(torch.cuda.is_available()), "torch": torch.__version__,
           "nvidia_nodes": sorted(glob.glob("/dev/nvidia*")), "uid": os.getuid(),
           "cuda_visible_devices": given}
    if out["cuda"]:
        x = torch.ones(512, 512, device="cuda")
        out.update(device_count=torch.cuda.device_count(), name=torch.cuda.get_device_name(0),
                   matmul_sum=float((x @ x).sum().item()))
    return out
'''


def now() -> float:
    return time.time()


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class Report:
    """The JSON document, rewritten after every step."""

    def __init__(self, out: Path, dry_run: bool) -> None:
        self.path = out / "gpu-proof.json"
        self.data: dict[str, Any] = {"started": stamp(now()), "dry_run": dry_run, "steps": {},
                                     "verdict": {}}
        self.save()

    def save(self) -> None:
        partial = self.path.with_suffix(".part")
        partial.write_text(json.dumps(self.data, indent=2, default=str))
        partial.replace(self.path)

    @contextmanager
    def step(self, name: str, limit_s: float) -> Iterator[dict[str, Any]]:
        """Record one step: its figures, seconds, and the error if it failed or overran."""
        entry: dict[str, Any] = {"ok": False, "started": stamp(now()), "limit_s": limit_s}
        self.data["steps"][name] = entry
        log(f"--- {name} (at most {limit_s:g} s)")
        started = time.monotonic()
        previous = signal.signal(signal.SIGALRM, _overran)
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            yield entry
            entry["ok"] = True
        except Exception as exc:  # noqa: BLE001 - recorded; the next steps still run
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc()[-3000:]
            log(f"{name} FAILED: {entry['error']}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            entry["seconds"] = round(time.monotonic() - started, 3)
            self.save()
            log(f"{name}: {'ok' if entry['ok'] else 'failed'} in {entry['seconds']:.1f} s")


def _overran(signum: int, frame: object) -> None:
    raise TimeoutError("the step ran past its time box")


def log(line: str) -> None:
    print(f"[{stamp(now())}] {line}", flush=True)


def run(command: list[str], timeout: float = 20) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({exc})"
    return (done.stdout + done.stderr).strip()[-4000:]


# ------------------------------------------------------------------ sandboxes


class DryGpuBackend:
    """Dry run: leases from ``gpus`` like DockerBackend, but passes no device (no GPU)."""

    name = "docker"

    def __init__(self, cpu: DockerBackend) -> None:
        self.cpu = cpu
        self.gpus: GpuPool | None = None

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        assert self.gpus is not None
        lease = self.gpus.lease(0)
        session = self.cpu.start(config, limits)
        session.sandbox.cleanup.append(lease.release)
        return session


def make_provider(gpus: list[str], work: Path, *, init: bool, dry_run: bool,
                  client: Any = None) -> SandboxProvider:
    """What tasks.sandboxes builds from DLGRADE_SANDBOX=docker DLGRADE_GPUS=... devices."""
    mounts = tuple(p for p in ("/usr/local/nvidia",) if os.path.isdir(p))
    settings = DockerSettings(image=IMAGE, init=init, gpu_mode="devices",
                              driver_mounts=mounts, gpu_wait_s=240.0, run_dir=work / "docker")
    cpu = DockerBackend(settings, client=client)
    pool = GpuPool(gpus, work / "gpus", poll_s=0.05)
    gpu: Any = DryGpuBackend(cpu) if dry_run else DockerBackend(
        settings, client=cpu.client, reap=False)
    return SandboxProvider(cpu, gpu=gpu, gpus=pool, gpu_wait_s=240.0, warm_dir=work / "tmp",
                           summary=f"docker (devices mode, GPUs {', '.join(gpus)}, init={init})")


def probe(backend: Any, folder: Path) -> dict[str, Any]:
    """Start one container with ``backend`` and run the probe in it."""
    config = SandboxConfig(submission_dir=folder, memory_mb=6144, threads=2)
    session = backend.start(config, SessionLimits(call_timeout_s=120, start_timeout_s=60))
    try:
        answer = session.import_module("probe", timeout=120).attr("report").call(timeout=120)
        return dict(answer)
    finally:
        session.close()


def proof_spec(dry_run: bool, tests: list[str] | None) -> AssignmentSpec:
    base = resolve_assignment(SLUG)
    wanted = tests or (list(DRY_TESTS) if dry_run else [t.name for t in base.tests])
    chosen = []
    for test in base.tests:
        if test.name not in wanted:
            continue
        if test.name == "CNN: accuracy":
            test = test.model_copy(update={"params": {**test.params, "epochs": 5,
                                                      "batch_size": 32}, "timeout_s": 600.0})
        chosen.append(test)
    box = base.sandbox.model_copy(update={"gpu": True, "call_timeout_s": 120.0})
    return base.model_copy(update={"tests": chosen, "sandbox": box})


# ------------------------------------------------------------------ steps


def environment(entry: dict[str, Any]) -> list[str]:
    nodes = sorted(glob.glob("/dev/nvidia*"))
    entry.update(python=sys.executable, prefix=sys.prefix,
                 base_prefix=os.path.realpath(sys.base_prefix), nvidia_nodes=nodes,
                 nvidia_smi=run(["nvidia-smi", "-L"]),
                 driver_dir=os.path.isdir("/usr/local/nvidia"),
                 docker=run(["curl", "-s", "--unix-socket", "/var/run/docker.sock",
                             "http://d/version"]))
    try:
        import torch

        entry.update(torch=torch.__version__, host_cuda=bool(torch.cuda.is_available()))
    except ImportError as exc:
        entry["torch"] = f"not importable: {exc}"
    return sorted({m.group(1) for n in nodes if (m := re.fullmatch(r"/dev/nvidia(\d+)", n))},
                  key=int)


def grade_and_wait(provider: SandboxProvider, spec: AssignmentSpec, probe_dir: Path,
                   report: Report, delay: float = 1.0) -> None:
    """(a) job A grades on the GPU; (b) job B asks for a GPU while A holds it."""
    times: dict[str, float] = {}
    a_holds, b_result, b_error = threading.Event(), {}, []

    def job_b() -> None:
        a_holds.wait(120)
        time.sleep(delay)  # inside A's grading, which takes longer
        times["b_requested"] = now()
        try:
            with provider.reserve(spec) as choice:
                times["b_acquired"] = now()
                b_result.update(gpu=choice.gpu, probe=probe(choice.backend, probe_dir))
            times["b_released"] = now()
        except Exception as exc:  # noqa: BLE001 - reported below
            b_error.append(f"{type(exc).__name__}: {exc}")

    b = threading.Thread(target=job_b, name="job-b", daemon=True)
    b.start()
    with report.step("a_grade", LIMITS["a_grade"]) as a:
        times["a_requested"] = now()
        try:
            with provider.reserve(spec) as choice:
                times["a_acquired"] = now()
                a_holds.set()
                a["gpu"] = choice.gpu
                result = grade_path(spec, SOLUTION, choice.backend)
                result.staff_log.extend(choice.notes)
        finally:
            times["a_released"] = now()
            a_holds.set()
        a.update(score=result.score, max_score=result.max_score, sandbox=result.sandbox,
                 staff_log=result.staff_log, execution_time=round(result.execution_time, 2),
                 tests=[{"name": t.name, "outcome": str(t.outcome), "score": t.score,
                         "max_score": t.max_score, "output": t.output[:600],
                         "staff_detail": t.staff_detail[-2000:]}
                        for t in result.tests])
        a["on_cuda"] = any("(cuda)" in t.output for t in result.tests)
    with report.step("b_waits", LIMITS["b_waits"]) as entry:
        b.join(LIMITS["b_waits"] - 5)
        entry.update({k: stamp(v) for k, v in times.items()}, result=b_result, error=b_error)
        if "b_acquired" in times:
            entry["b_waited_s"] = round(times["b_acquired"] - times["b_requested"], 3)
            entry["b_acquired_after_a_released"] = times["b_acquired"] >= times["a_released"]
        if b_error or b.is_alive():
            raise RuntimeError(f"job B did not finish: {b_error or 'still running'}")


def accuracy_timings(entry: dict[str, Any]) -> None:
    """bench/accuracy_check.py time, on CPU then with --gpu (each at most 70 s)."""
    for name, extra in (("cpu", []), ("gpu", ["--gpu"])):
        started = time.monotonic()
        output = run([sys.executable, str(ROOT / "bench/accuracy_check.py"), "time", *extra],
                     timeout=70)
        found = re.search(r"total ([\d.]+) s, training epochs ([\d.]+) s", output)
        entry[name] = {"wall_s": round(time.monotonic() - started, 2), "output": output[-1500:],
                       "total_s": float(found.group(1)) if found else None,
                       "training_s": float(found.group(2)) if found else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--gpus", default="auto", help="numeric ids, or auto (/dev/nvidiaN)")
    parser.add_argument("--dry-run", action="store_true", help="no GPU: bookkeeping only")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--tests", nargs="*", help="test names of the assignment to grade")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report(args.out, args.dry_run)
    work = Path(tempfile.mkdtemp(prefix="dlgrade-gpu-proof-"))
    for sub in ("docker", "gpus", "tmp", "probe"):
        (work / sub).mkdir()
    (work / "probe/probe.py").write_text(PROBE)
    for path in (work, work / "probe", work / "probe/probe.py"):
        path.chmod(0o755)
    verdict = report.data["verdict"]
    provider = None
    try:
        with report.step("environment", LIMITS["environment"]) as entry:
            found = environment(entry)
            if args.dry_run:
                gpus = ["dry-0"]
            elif args.gpus == "auto":
                gpus = found[:1] or ["0"]
            else:
                gpus = args.gpus.split(",")
            entry["gpus_used"] = gpus
        with report.step("image", LIMITS["image"]) as entry:
            client = connect()
            entry["image_id"] = build_local_image(client, IMAGE)
        with report.step("c_no_gpu", LIMITS["c_no_gpu"]) as entry:
            try:
                provider = make_provider(gpus, work, init=True, dry_run=args.dry_run)
                entry["probe"] = probe(provider.cpu, work / "probe")
                entry["init"] = True
            except Exception as exc:  # noqa: BLE001 - the devicekit may lack docker-init
                if "init" not in str(exc):
                    raise
                entry["init"] = False
                entry["init_error"] = str(exc)[:500]
                provider = make_provider(gpus, work, init=False, dry_run=args.dry_run)
                entry["probe"] = probe(provider.cpu, work / "probe")
            seen = entry["probe"]
            verdict["c_no_gpu_sees_none"] = not seen["cuda"] and not seen["nvidia_nodes"]
        if provider is not None:
            grade_and_wait(provider, proof_spec(args.dry_run, args.tests), work / "probe", report,
                           delay=0.0 if args.dry_run else 1.0)
            steps = report.data["steps"]
            a, b = steps.get("a_grade", {}), steps.get("b_waits", {})
            verdict["a_graded"] = bool(a.get("ok") and a.get("score", 0) > 0)
            verdict["a_graded_on_cuda"] = bool(a.get("on_cuda"))
            verdict["b_second_job_waited"] = bool(b.get("b_acquired_after_a_released"))
            verdict["b_probe_saw_cuda"] = bool(b.get("result", {}).get("probe", {}).get("cuda"))
            seen_by_b = b.get("result", {}).get("probe", {})
            # F1/F6 (informational): with CUDA_VISIBLE_DEVICES dropped and
            # NVIDIA_VISIBLE_DEVICES=all, job B still sees only its own GPU.
            verdict["b_sees_only_its_gpu"] = (seen_by_b.get("device_count") == 1
                                              if seen_by_b.get("cuda") else None)
        if not (args.dry_run or args.skip_accuracy):
            with report.step("d_accuracy", LIMITS["d_accuracy"]) as entry:
                accuracy_timings(entry)
    finally:
        if provider is not None:
            provider.close()
        shutil.rmtree(work, ignore_errors=True)
        report.data["finished"] = stamp(now())
        report.save()
    log(f"verdict: {json.dumps(verdict)}")
    wanted = ["c_no_gpu_sees_none", "a_graded", "b_second_job_waited"]
    if not args.dry_run:
        wanted += ["a_graded_on_cuda", "b_probe_saw_cuda"]
    return 0 if all(verdict.get(key) for key in wanted) else 1


if __name__ == "__main__":
    sys.exit(main())
