"""tasks/sandboxes.py: which backend a job gets (fake backends and real GpuPools, no GPU
and no Docker needed), GradingJob wired to it on SQLite, the sandbox settings, and one
engine test (marker ``docker``) that a worker configured with GPUs builds a Docker
backend passing exactly the job's GPU (the real GPU path: scripts/gpu-proof.sh)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest

from grader.spec import AssignmentSpec, load_spec, resolve_assignment
from sandbox import cgroups
from sandbox.backend import LocalBackend, SandboxConfig
from sandbox.gpus import GpuPool, HeldGpu
from sandbox.runtime_versions import runc_problem
from sandbox.runtimes import RuntimeRequest
from sandbox.select import BackendUnavailable
from sandbox.session import Session, SessionLimits
from store.db import SessionFactory
from tasks.jobs import GradingJob
from tasks.sandboxes import NO_GPU_NOTE, GpuBusy, SandboxProvider
from tasks.settings import ConfigError, Settings
from tests.services import World, make_settings, tar_gz
from tests.tiny_assignment import SPEC, write_tiny

GPU_SPEC = SPEC.replace("[submission]", "[sandbox]\ngpu = true\n\n[submission]")


class FakeGpuBackend:
    """Like DockerBackend with ``gpus``: leases per session, runs the agent unisolated."""

    name = "docker"

    def __init__(self) -> None:
        self.gpus: GpuPool | None = None
        self.devices: list[str] = []

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        assert self.gpus is not None, "a GPU job's backend must carry its GPU"
        lease = self.gpus.lease(0)
        self.devices.append(lease.device)
        session = LocalBackend().start(config, limits)
        session.sandbox.cleanup.append(lease.release)
        return session


class FakeWarmPool:
    name = "docker"

    def __init__(self, template: SandboxConfig, limits: SessionLimits) -> None:
        self.template, self.limits, self.closed = template, limits, threading.Event()

    def start(self, config: SandboxConfig, limits: SessionLimits) -> Session:
        raise AssertionError("not started in these tests")

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def gpu_spec(tmp_path: Path) -> AssignmentSpec:
    return load_spec(write_tiny(tmp_path / "gpu-hw", spec=GPU_SPEC))


@pytest.fixture
def cpu_spec() -> AssignmentSpec:
    return resolve_assignment("mytorch-cnn")


def gpu_provider(tmp_path: Path, devices: tuple[str, ...] = ("0",),
                 wait: float = 5.0) -> tuple[SandboxProvider, FakeGpuBackend, GpuPool]:
    fake, pool = FakeGpuBackend(), GpuPool(devices, tmp_path / "gpu-locks", poll_s=0.01)
    provider = SandboxProvider(LocalBackend(), gpu=fake, gpus=pool, gpu_wait_s=wait)
    return provider, fake, pool


# ------------------------------------------------------------------ choosing a backend


def test_a_cpu_assignment_gets_the_cpu_backend(tmp_path: Path, cpu_spec: AssignmentSpec) -> None:
    provider, fake, _ = gpu_provider(tmp_path)
    with provider.reserve(cpu_spec) as choice:
        assert choice.backend is provider.cpu and choice.gpu is None and choice.notes == []


def test_each_gpu_job_holds_a_gpu_of_its_own_until_it_ends(
    tmp_path: Path, gpu_spec: AssignmentSpec
) -> None:
    provider, fake, pool = gpu_provider(tmp_path, ("0", "1"))
    with provider.reserve(gpu_spec) as first, provider.reserve(gpu_spec) as second:
        assert {first.gpu, second.gpu} == {"0", "1"}
        for choice in (first, second):
            backend: Any = choice.backend
            assert backend is not fake and isinstance(backend.gpus, HeldGpu)
            assert backend.gpus.devices == (choice.gpu,)
            assert choice.notes == [f"gpu={choice.gpu}"]
        assert fake.gpus is None  # the shared template is never handed a GPU
        assert pool.try_lease() is None  # both held
    with pool.acquire(timeout=0), pool.acquire(timeout=0):
        pass  # both given back


def test_the_sessions_of_a_job_share_its_gpu_without_giving_it_back(
    tmp_path: Path, gpu_spec: AssignmentSpec
) -> None:
    provider, _, pool = gpu_provider(tmp_path)
    with provider.reserve(gpu_spec) as choice:
        held: Any = choice.backend
        for _ in range(2):  # what DockerBackend does per session: lease, then release
            lease = held.gpus.lease(0)
            assert lease.device == "0"
            lease.release()
        assert pool.try_lease() is None  # still the job's
    assert pool.try_lease() is not None


def test_a_gpu_job_waits_for_a_busy_gpu_then_gets_it(
    tmp_path: Path, gpu_spec: AssignmentSpec
) -> None:
    provider, _, pool = gpu_provider(tmp_path, wait=10.0)
    other = pool.lease(0)
    threading.Timer(0.5, other.release).start()
    started = time.monotonic()
    with provider.reserve(gpu_spec) as choice:
        waited = time.monotonic() - started
        assert choice.gpu == "0"
    assert 0.4 < waited < 5


def test_a_gpu_wait_is_bounded_and_ends_in_a_retryable_error(
    tmp_path: Path, gpu_spec: AssignmentSpec
) -> None:
    provider, _, pool = gpu_provider(tmp_path, wait=0.3)
    with pool.acquire(timeout=0):
        started = time.monotonic()
        with pytest.raises(GpuBusy, match="busy for 0.3 s; the job will be retried"):
            with provider.reserve(gpu_spec):
                raise AssertionError("no GPU was free: the block must not run")
        assert time.monotonic() - started < 3


def test_a_gpu_assignment_on_a_worker_without_gpus_runs_on_the_cpu_and_says_so(
    gpu_spec: AssignmentSpec
) -> None:
    provider = SandboxProvider(LocalBackend())
    with provider.reserve(gpu_spec) as choice:
        assert choice.backend is provider.cpu and choice.notes == [NO_GPU_NOTE]


def test_the_warm_pool_serves_one_config_and_follows_the_latest(
    tmp_path: Path, cpu_spec: AssignmentSpec, gpu_spec: AssignmentSpec
) -> None:
    made: list[FakeWarmPool] = []

    def warm(template: SandboxConfig, limits: SessionLimits) -> FakeWarmPool:
        made.append(FakeWarmPool(template, limits))
        return made[-1]

    fake, pool = FakeGpuBackend(), GpuPool(["0"], tmp_path / "locks")
    provider = SandboxProvider(LocalBackend(), gpu=fake, gpus=pool, warm=warm, warm_size=2,
                               warm_dir=tmp_path)
    with provider.reserve(cpu_spec) as first, provider.reserve(cpu_spec) as again:
        assert first.backend is again.backend is made[0] and len(made) == 1
    assert made[0].template.memory_mb == cpu_spec.sandbox.memory_mb
    assert made[0].limits.call_timeout_s == cpu_spec.sandbox.call_timeout_s
    with provider.reserve(gpu_spec) as gpu_choice:  # GPU jobs never take warm containers
        assert gpu_choice.backend not in made
    other = cpu_spec.model_copy(update={"sandbox": cpu_spec.sandbox.model_copy(
        update={"memory_mb": 2048})})
    with provider.reserve(other) as changed:
        assert changed.backend is made[1] and made[1].template.memory_mb == 2048
    assert made[0].closed.wait(5)  # the old pool is closed in the background
    provider.close()
    assert made[1].closed.is_set()
    with provider.reserve(cpu_spec) as after:  # closed: no new pool is started
        assert after.backend is provider.cpu and len(made) == 2


def test_a_gpu_backend_needs_a_pool() -> None:
    with pytest.raises(ValueError, match="go together"):
        SandboxProvider(LocalBackend(), gpu=FakeGpuBackend())


# ------------------------------------------------------------------ the grading job


@pytest.fixture
def world(sqlite_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(sqlite_factory, tmp_path / "data")


def gpu_submission(world: World, tmp_path: Path, answer: str = "VALUE = 42\n") -> int:
    folder = write_tiny(tmp_path / "gpu-course-hw", spec=GPU_SPEC)
    handin = tmp_path / "handin"
    handin.mkdir(exist_ok=True)
    (handin / "answer.py").write_text(answer + "\ndef double(x):\n    return 2 * x\n")
    return world.submission(world.assignment("tiny-hw", folder=folder, queue="gpu"),
                            tar_gz(handin))


def test_a_gpu_job_is_graded_with_one_gpu_named_in_the_staff_log(
    world: World, sqlite_url: str, tmp_path: Path
) -> None:
    provider, fake, pool = gpu_provider(tmp_path)
    job = GradingJob(make_settings(world.data_dir, sqlite_url), world.db_factory,
                     worker="w", sandboxes=provider)
    submission_id = gpu_submission(world, tmp_path)
    assert job.run(submission_id) == "done"
    row = world.get(submission_id)
    assert row.score == row.max_score == 15
    assert row.staff_detail is not None and "gpu=0" in row.staff_detail
    assert fake.devices and set(fake.devices) == {"0"}
    assert pool.try_lease() is not None  # given back after the job


def test_a_gpu_job_with_no_free_gpu_waits_without_using_an_attempt(
    world: World, sqlite_url: str, tmp_path: Path
) -> None:
    provider, fake, pool = gpu_provider(tmp_path, wait=0.2)
    job = GradingJob(make_settings(world.data_dir, sqlite_url), world.db_factory,
                     worker="w", sandboxes=provider)
    submission_id = gpu_submission(world, tmp_path)
    with pool.acquire(timeout=0):
        assert job.run(submission_id) == "waiting"
        row = world.get(submission_id)
        assert (row.status, row.attempt, row.worker) == ("queued", 0, None)
        assert fake.devices == []
    assert job.run(submission_id) == "done"
    assert world.get(submission_id).attempt == 1


def test_a_gpu_job_on_a_worker_without_gpus_is_graded_on_the_cpu(
    world: World, sqlite_url: str, tmp_path: Path
) -> None:
    job = GradingJob(make_settings(world.data_dir, sqlite_url), world.db_factory,
                     worker="w", sandboxes=SandboxProvider(LocalBackend()))
    submission_id = gpu_submission(world, tmp_path)
    assert job.run(submission_id) == "done"
    row = world.get(submission_id)
    assert row.score == 15 and row.staff_detail is not None
    assert NO_GPU_NOTE in row.staff_detail and "backend=none" in row.staff_detail


def test_a_missing_submission_is_not_claimed(world: World, sqlite_url: str) -> None:
    job = GradingJob(make_settings(world.data_dir, sqlite_url), world.db_factory,
                     worker="w", sandboxes=SandboxProvider(LocalBackend()))
    assert job.run(987654) == "not-claimed"


# ------------------------------------------------------------------ settings


def settings(tmp_path: Path, **values: str) -> Settings:
    mapping = {"DLGRADE_DATA_DIR": str(tmp_path), "DLGRADE_EMBEDDED": "true"}
    mapping.update({f"DLGRADE_{key.upper()}": value for key, value in values.items()})
    return Settings.from_mapping(mapping)


def test_sandbox_settings_are_parsed(tmp_path: Path) -> None:
    parsed = settings(tmp_path, sandbox="docker", docker_image="dlgrade/cpu:1",
                      gpus="0, 1", gpu_mode="devices", warm_pool="3", docker_runtime="runsc",
                      gpu_driver_mounts="/usr/local/nvidia,/opt/torch")
    assert parsed.gpu_ids == ("0", "1") and parsed.gpu_image == "dlgrade/cpu:1"
    assert parsed.driver_mounts == ("/usr/local/nvidia", "/opt/torch")
    assert (parsed.warm_pool, parsed.docker_runtime) == (3, "runsc")
    default = settings(tmp_path)
    assert default.gpu_ids == () and default.sandbox == "auto" and default.warm_pool == 0
    mig = settings(tmp_path, gpus="MIG-GPU-3b1f0c2e/1/0,GPU-3b1f0c2e-aaaa",
                   docker_gpu_image="dlgrade/gpu:1")
    assert mig.gpu_ids == ("MIG-GPU-3b1f0c2e/1/0", "GPU-3b1f0c2e-aaaa")
    assert mig.gpu_image == "dlgrade/gpu:1"


@pytest.mark.parametrize(("values", "message"), [
    ({"sandbox": "vm"}, "DLGRADE_SANDBOX='vm' is not one of auto, docker, process, none"),
    ({"gpu_mode": "cdi"}, "DLGRADE_GPU_MODE='cdi' is not one of nvidia, devices"),
    ({"warm_pool": "-1"}, "DLGRADE_WARM_POOL=-1 must be between 0"),
    ({"warm_pool": "two"}, "DLGRADE_WARM_POOL='two' is not a valid int"),
    ({"gpus": "0;1"}, "must be comma-separated GPU indices"),
    ({"gpus": "0,0"}, "names a GPU twice"),
    ({"gpus": "0", "sandbox": "process"}, "GPUs are handed out only by the Docker sandbox"),
    ({"gpus": "GPU-abc", "gpu_mode": "devices"}, "devices needs numeric GPU indices"),
    ({"gpu_driver_mounts": "usr/local/nvidia"}, "absolute host paths"),
    ({"gpus": "0", "gpu_wait_seconds": "4000"}, "shorter than DLGRADE_TASK_TIME_LIMIT"),
    ({"work_dir": "work"}, "DLGRADE_WORK_DIR='work' must be an absolute path"),
    ({"runtime_check": "off"}, "DLGRADE_RUNTIME_CHECK='off' is not one of refuse, warn."),
])
def test_bad_sandbox_settings_are_refused_in_one_sentence(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as raised:
        settings(tmp_path, **values)
    assert "\n" not in str(raised.value)


def test_a_worker_without_docker_describes_its_sandbox(tmp_path: Path) -> None:
    provider = SandboxProvider.from_settings(settings(tmp_path, sandbox="none", warm_pool="2"))
    assert provider.cpu.name == "none" and provider.gpu is None
    assert provider.describe() == ("Sandbox: none; GPUs: none; warm pool: off (it needs the "
                                   "Docker sandbox).")


def test_an_unpatched_runtime_is_refused_in_production_and_warned_of_when_embedded(
        tmp_path: Path) -> None:
    assert not settings(tmp_path).refuses_unpatched_runtime
    production = {"embedded": "false", "secret_key": "s", "broker_url": "redis://x:6379/0"}
    assert settings(tmp_path, **production).refuses_unpatched_runtime
    assert not settings(tmp_path, runtime_check="warn", **production).refuses_unpatched_runtime
    assert settings(tmp_path, runtime_check="refuse").refuses_unpatched_runtime


# ------------------------------------------------------------------ a real engine


UNPATCHED = "runc 1.1.5+ds1 predates the fixes for CVE-2024-21626"


@pytest.fixture
def engine_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short work dir (socket paths) on a machine whose Docker engine answers."""
    from sandbox import docker_images
    from tests.conftest import require

    reason = docker_images.unavailable_reason()
    require(reason is None, f"a Docker engine with the local image ({reason})")
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # the provider sets it
    work = Path(tempfile.mkdtemp(prefix="w-"))  # tmp_path is too deep for socket paths
    yield work
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.docker
@pytest.mark.parametrize(("check", "sandbox", "outcome"), [
    ("refuse", "docker", "The Docker sandbox will not start on an unpatched runtime: "
     f"{UNPATCHED}"),
    ("refuse", "auto", "Sandbox: process (The Docker sandbox will not start on an unpatched "
     f"runtime: {UNPATCHED}"),
    ("warn", "docker", f"; runtime not known to be patched: {UNPATCHED}"),
])
def test_e6_the_runtime_is_checked_when_a_worker_starts(
    tmp_path: Path, engine_work: Path, monkeypatch: pytest.MonkeyPatch, check: str,
    sandbox: str, outcome: str,
) -> None:
    """The engine's real answer, with runc's version as this Debian machine reports it."""
    calls = []

    def problems(engine: dict[str, Any], **options: Any) -> list[str]:
        calls.append(engine)
        return [runc_problem("1.1.5+ds1") or ""]

    monkeypatch.setattr("tasks.sandboxes.runtime_problems", problems)
    configured = settings(tmp_path, sandbox=sandbox, runtime_check=check,
                          work_dir=str(engine_work))
    if sandbox == "docker" and check == "refuse":
        with pytest.raises(BackendUnavailable, match=re.escape(outcome)) as refused:
            SandboxProvider.from_settings(configured)
        assert str(refused.value).endswith("set DLGRADE_RUNTIME_CHECK=warn to start with a "
                                           "warning.")
    else:
        provider = SandboxProvider.from_settings(configured)
        try:
            assert outcome in provider.describe()
        finally:
            provider.close()
    assert calls and "Components" in calls[0]  # the engine's own /version answer


@pytest.mark.docker
def test_a_patched_runtime_starts_without_a_word(
        tmp_path: Path, engine_work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tasks.sandboxes.runtime_problems", lambda engine, **options: [])
    provider = SandboxProvider.from_settings(settings(
        tmp_path, sandbox="docker", runtime_check="refuse", work_dir=str(engine_work)))
    try:
        assert provider.describe().startswith("Sandbox: docker")
        assert "patched" not in provider.describe()
    finally:
        provider.close()


@pytest.mark.docker
def test_a_docker_worker_with_gpus_passes_exactly_the_jobs_gpu(
    tmp_path: Path, gpu_spec: AssignmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Devices mode with fake GPU ids: the backend is built for real against the engine
    and asked for its container profile; no container starts (there is no /dev/nvidia*)."""
    from sandbox import docker_backend, docker_images, docker_profile
    from tests.conftest import require

    reason = docker_images.unavailable_reason()
    require(reason is None, f"a Docker engine with the local image ({reason})")
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # the provider sets it
    work = Path(tempfile.mkdtemp(prefix="w-"))  # tmp_path is too deep for socket paths
    provider = SandboxProvider.from_settings(settings(
        tmp_path, sandbox="docker", gpus="3,4", gpu_mode="devices", gpu_wait_seconds="1",
        gpu_driver_mounts="/usr/local/nvidia", work_dir=str(work), warm_pool="1"))
    try:
        assert "GPUs: 3, 4 (devices mode" in provider.describe()
        assert "warm pool: 1 started container(s)" in provider.describe()
        assert tempfile.gettempdir() == str(work / "tmp")
        with provider.reserve(gpu_spec) as choice:
            backend: Any = choice.backend
            assert isinstance(backend, docker_backend.DockerBackend)
            assert backend.settings.run_dir == work / "docker"
            assert backend.gpus is not None and backend.gpus.devices == (choice.gpu,)
            kwargs = docker_profile.container_kwargs(
                SandboxConfig(submission_dir=tmp_path), SessionLimits(), backend.settings,
                backend.interpreter, token="t", channel=tmp_path, gpu=choice.gpu,
                runtime=backend.store.resolve(RuntimeRequest(numpy.__version__)))
            nodes = {entry.split(":")[0] for entry in kwargs["devices"]}
            assert nodes == {f"/dev/nvidia{choice.gpu}", "/dev/nvidiactl", "/dev/nvidia-uvm"}
            assert any(m["Target"] == "/usr/local/nvidia" and m["ReadOnly"]
                       for m in kwargs["mounts"])
            with provider.reserve(gpu_spec) as other:
                assert {choice.gpu, other.gpu} == {"3", "4"}
            assert provider.gpus is not None and (work / "gpus").is_dir()
    finally:
        provider.close()
        shutil.rmtree(work, ignore_errors=True)


def test_worker_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlgrade.cli import build_parser
    from dlgrade.service_cli import worker_overrides

    args = build_parser().parse_args(["worker", "--queues", "gpu", "--gpus", "0,1",
                                      "--warm-pool", "2"])
    assert worker_overrides(args) == {"DLGRADE_GPUS": "0,1", "DLGRADE_WARM_POOL": "2"}
    monkeypatch.setenv("DLGRADE_GPUS", "5")
    monkeypatch.setenv("DLGRADE_WARM_POOL", "7")
    merged = Settings.from_env(DLGRADE_EMBEDDED="true", **worker_overrides(args))
    assert (merged.gpu_ids, merged.warm_pool) == (("0", "1"), 2)
    plain = build_parser().parse_args(["worker"])
    assert worker_overrides(plain) == {}


def test_celery_retries_a_job_that_found_no_free_gpu_soon() -> None:
    from types import SimpleNamespace

    from tasks.celery_app import GPU_RETRY_SECONDS, _grade_task

    class Retry(Exception):
        pass

    runtime: Any = SimpleNamespace(job=lambda hostname: SimpleNamespace(run=lambda i: "waiting"),
                                   unhealthy=lambda node: "")
    task = _grade_task(runtime)
    request = SimpleNamespace(hostname="gpu.1@host", retries=0)
    with pytest.raises(Retry) as raised:
        task(SimpleNamespace(request=request, retry=lambda **kw: Retry(kw)), 7)
    assert raised.value.args[0] == {"countdown": GPU_RETRY_SECONDS}


def test_the_work_dir_is_short_enough_for_the_sandbox_sockets(tmp_path: Path) -> None:
    near = Settings.from_mapping({"DLGRADE_DATA_DIR": "/srv/dlgrade/data",
                                  "DLGRADE_EMBEDDED": "true"})
    assert near.sandbox_work_dir == Path("/srv/dlgrade/data/work")
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 3)
    far = Settings.from_mapping({"DLGRADE_DATA_DIR": str(deep), "DLGRADE_EMBEDDED": "true"})
    fallback = far.sandbox_work_dir
    assert fallback.parent == Path(tempfile.gettempdir()) and "dlgrade-work-" in fallback.name
    assert fallback == Settings.from_mapping({"DLGRADE_DATA_DIR": str(deep),
                                              "DLGRADE_EMBEDDED": "true"}).sandbox_work_dir
    socket_path = fallback / "docker" / f"{'0' * 16}-abcdefgh" / "agent.sock"
    assert len(str(socket_path).encode()) <= 107
    with pytest.raises(ConfigError, match="at most 60 fit, since the sandbox's Unix sockets"):
        settings(tmp_path, work_dir="/" + "w" * 80)


def test_a_process_sandbox_without_aggregate_limits_is_refused_in_production(
        tmp_path: Path) -> None:
    from sandbox.process_backend import ProcessBackend
    from tasks.sandboxes import SandboxUnlimited, _aggregate_limits

    unlimited = ProcessBackend(cgroups="no cgroup hierarchy is mounted")
    production = make_settings(tmp_path, "sqlite://", sandbox="process", sandbox_limits="refuse")
    assert production.refuses_unlimited_sandbox
    with pytest.raises(SandboxUnlimited, match="DLGRADE_SANDBOX_LIMITS=warn"):
        _aggregate_limits(unlimited, production)
    warned = dataclasses.replace(production, sandbox_limits="warn")
    assert "per-process limits only" in _aggregate_limits(unlimited, warned)
    limited = ProcessBackend(cgroups=cgroups.Hierarchy(1, {}))
    assert _aggregate_limits(limited, production) == ""


def test_an_engine_that_cannot_limit_containers_is_named() -> None:
    from tasks.sandboxes import docker_limit_problems

    assert docker_limit_problems({"MemoryLimit": True, "PidsLimit": True,
                                  "CpuCfsQuota": True, "SwapLimit": True}) == []
    problem = docker_limit_problems({"MemoryLimit": False, "PidsLimit": True,
                                     "CpuCfsQuota": False})
    assert problem and "memory, CPU" in problem[0]
