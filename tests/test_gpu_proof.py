"""bench/gpu_proof.py and scripts/gpu-proof.sh, the GPU proof for a session with a GPU
(docs/gpu.md): its dry run (no GPU; marker ``docker``) exercises the real Docker
backend, GpuPool and SandboxProvider bookkeeping here, and the spec it grades is checked."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT, require

DRIVER = ROOT / "bench/gpu_proof.py"


def driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_proof", DRIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_proof_grades_the_cnn_at_5_epochs_batch_32_on_a_gpu_spec() -> None:
    proof = driver()
    spec = proof.proof_spec(False, None)
    assert spec.sandbox.gpu is True
    cnn = next(t for t in spec.tests if t.name == "CNN: accuracy")
    assert (cnn.params["epochs"], cnn.params["batch_size"]) == (5, 32)
    dry = proof.proof_spec(True, None)
    assert [t.name for t in dry.tests] == list(proof.DRY_TESTS)
    assert sum(proof.LIMITS.values()) <= 480  # fits scripts/gpu-proof.sh's 8 minutes


def test_the_scripts_are_valid_bash() -> None:
    for name in ("gpu-proof.sh", "gpu-proof-prepare.sh"):
        done = subprocess.run(["bash", "-n", str(ROOT / "scripts" / name)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    script = (ROOT / "scripts/gpu-proof.sh").read_text()
    assert "/opt/torch/.venv/bin/python3" in script and "--target /tmp/site" in script
    assert "bench/gpu_proof.py" in script and "start-dockerd.sh" in script


@pytest.mark.docker
@pytest.mark.slow
def test_the_dry_run_proves_the_bookkeeping_with_a_real_engine(tmp_path: Path) -> None:
    from sandbox.docker_engine import connect

    try:
        connect(5.0)
    except Exception as exc:  # noqa: BLE001 - DockerUnavailable or a broken engine
        require(False, f"a Docker engine ({exc})")
    done = subprocess.run([sys.executable, str(DRIVER), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = json.loads((tmp_path / "gpu-proof.json").read_text())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps, verdict = report["steps"], report["verdict"]
    assert report["dry_run"] is True and all(step["ok"] for step in steps.values())
    seen = steps["c_no_gpu"]["probe"]
    assert seen["cuda"] is False and seen["nvidia_nodes"] == [] and seen["uid"] == 10001
    grade = steps["a_grade"]
    assert grade["score"] == grade["max_score"] > 0 and "gpu=dry-0" in grade["staff_log"]
    assert "backend=docker" in " ".join(grade["staff_log"])
    wait = steps["b_waits"]
    assert wait["b_requested"] < wait["a_released"] <= wait["b_acquired"]
    assert wait["b_acquired_after_a_released"] is True and wait["result"]["gpu"] == "dry-0"
    assert verdict["c_no_gpu_sees_none"] and verdict["a_graded"] and verdict[
        "b_second_job_waited"]
    assert "d_accuracy" not in steps  # timings only on the GPU machine
