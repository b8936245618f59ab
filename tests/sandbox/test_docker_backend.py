"""The Docker backend: the container profile it asks for (pure), and, against a real
engine (marker ``docker``), grading, isolation, limits, cleanup, the reaper and the
warm pool. The local image is built once per test session; after every engine test
no container of this test process may remain.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from grader import data
from grader.grade import grade_directory, sandbox_config
from grader.outcomes import Outcome
from grader.spec import resolve_assignment
from sandbox.backend import SandboxConfig
from sandbox.docker_backend import DockerBackend
from sandbox.docker_images import LOCAL_IMAGE, Interpreter
from sandbox.docker_profile import (
    LABEL_CREATED,
    LABEL_SESSION,
    LABEL_WORKER,
    DockerSettings,
    container_kwargs,
    worker_label,
)
from sandbox.docker_reaper import reap_orphans
from sandbox.docker_session import DockerSession
from sandbox.docker_warm_pool import WarmPool
from sandbox.gpus import GpuPool
from sandbox.runtimes import Entry, Runtime, RuntimeRequest
from sandbox.seccomp import security_opt
from sandbox.select import choose_backend, describe_choice
from sandbox.session import Session, SessionDied, SessionLimits
from tests.conftest import MYTORCH_SOLUTION, ROOT
from tests.sandbox.held_out import HIDDEN_PROBE, assert_held_out_data_is_hidden
from tests.services import docker_with_local_image

FAST = SessionLimits(call_timeout_s=20.0, start_timeout_s=30.0)
RUNTIME = Runtime(RuntimeRequest("2.0.0"), ())  # the pure profile tests bind no runtime

PROBE = """
import errno, os, socket

def _errno(action):
    try:
        action()
    except OSError as exc:
        return exc.errno
    return 0

def _write(path):
    def write():
        with open(path, "w") as handle:
            handle.write("x")
    return _errno(write)

def _fill(path, megabytes):
    def fill():
        with open(path, "wb") as handle:
            for _ in range(megabytes):
                handle.write(b"\\0" * (1 << 20))
                handle.flush()
    return _errno(fill)

def probe(tmp_mb, repo):
    mounts = {}
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        mounts[fields[4]] = fields[5].split(",")
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    net = open("/proc/net/dev").read().splitlines()[2:]
    tmp = os.statvfs("/tmp")
    return {
        "ids": [os.getuid(), os.geteuid(), os.getgid()],
        "interfaces": sorted(line.split(":")[0].strip() for line in net),
        "connect": _errno(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2)),
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "setuid": _errno(lambda: os.setuid(0)),
        "write_root": _write("/probe"),
        "write_submission": _write("/submission/probe"),
        "write_agent": _write("/agent/probe"),
        "ro": [("ro" in mounts.get(p, [])) for p in ("/", "/submission", "/agent", "/channel")],
        "tmp_mb": tmp.f_blocks * tmp.f_frsize / (1 << 20),
        "tmp_fill": _fill("/tmp/fill", tmp_mb + 2),
        "environ": dict(os.environ),
        "visible": [os.path.exists(p) for p in ("/work", repo, "/var/run/docker.sock")],
        "channel": [os.path.exists("/channel/agent.sock"), _errno(lambda: os.listdir("/channel"))],
    }

def fork_bomb():
    import time
    children = 0
    while True:
        try:
            pid = os.fork()
        except OSError as exc:
            return children, exc.errno
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        children += 1

def hog(megabytes):
    import numpy as np
    return float(np.ones(megabytes << 17).sum())

def chatter():
    import sys
    print("to stdout")
    print("to stderr", file=sys.stderr)
    os.system("echo from a child")
    return "reply"
"""


# -- the profile, without an engine -------------------------------------------------


def test_the_container_profile_follows_the_security_reference(tmp_path: Path) -> None:
    config = SandboxConfig(submission_dir=tmp_path, data_dir=tmp_path, memory_mb=1024,
                           max_processes=16, tmp_mb=32, open_files=100, file_size_mb=8,
                           cpu_seconds=60, threads=2)
    kwargs = container_kwargs(config, FAST, DockerSettings(), Interpreter("/py"), token="abc",
                              runtime=RUNTIME,
                              channel=tmp_path)
    assert kwargs["network_mode"] == "none" and kwargs["ipc_mode"] == "private"
    assert kwargs["read_only"] is True and kwargs["init"] is True
    assert kwargs["auto_remove"] is False
    assert kwargs["user"] == "10001:10001" and kwargs["working_dir"] == "/submission"
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true", security_opt()]
    off = container_kwargs(config, FAST, DockerSettings(seccomp=False), Interpreter("/py"),
                           token="abc", channel=tmp_path, runtime=RUNTIME)
    assert off["security_opt"] == ["no-new-privileges:true"]  # the engine's default profile
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == "1024m"
    assert kwargs["pids_limit"] == 64 and kwargs["nano_cpus"] == 2_000_000_000
    assert kwargs["tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=32m,mode=1777"}
    limits = {u["Name"]: (u["Soft"], u["Hard"]) for u in kwargs["ulimits"]}
    assert limits == {"nofile": (100, 100), "fsize": (8 << 20, 8 << 20), "cpu": (60, 60),
                      "core": (0, 0)}
    assert all(mount["ReadOnly"] for mount in kwargs["mounts"])
    targets = {mount["Target"] for mount in kwargs["mounts"]}
    assert {"/submission", "/data", "/agent", "/channel"} <= targets
    assert kwargs["labels"][LABEL_SESSION] == "abc"
    assert kwargs["labels"][LABEL_WORKER] == worker_label()
    assert kwargs["log_config"]["Type"] == "local"
    assert kwargs["command"][:2] == ["/py", "-I"]
    assert "privileged" not in kwargs and "seccomp=unconfined" not in kwargs["security_opt"]


def test_hidden_paths_are_covered_where_the_mounts_show_them(tmp_path: Path) -> None:
    venv, data = tmp_path / "venv", tmp_path / "public"
    (venv / "pkg").mkdir(parents=True)
    (venv / "pkg" / "labels.csv").write_text("1\n")
    (data / "heldout").mkdir(parents=True)
    hidden = (str(venv / "pkg" / "labels.csv"), str(data / "heldout"), "/elsewhere/x")
    config = SandboxConfig(submission_dir=tmp_path, data_dir=data, hidden_paths=hidden)
    interpreter = Interpreter("/opt/venv/bin/python", ((str(venv), "/opt/venv"),))
    kwargs = container_kwargs(config, FAST, DockerSettings(), interpreter, token="abc",
                              channel=tmp_path, runtime=RUNTIME)
    by_target = {mount["Target"]: mount for mount in kwargs["mounts"]}
    cover = by_target["/opt/venv/pkg/labels.csv"]
    assert (cover["Type"], cover["Source"], cover["ReadOnly"]) == ("bind", "/dev/null", True)
    folder = by_target["/data/heldout"]
    assert folder["Type"] == "tmpfs" and folder["ReadOnly"] is True
    assert not any("elsewhere" in target for target in by_target)


def test_the_environment_carries_no_secrets_of_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLGRADE_SECRET_KEY", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    kwargs = container_kwargs(SandboxConfig(submission_dir=tmp_path), FAST, DockerSettings(),
                              Interpreter("/py"), token="abc", runtime=RUNTIME, channel=tmp_path)
    assert "hunter2" not in kwargs["environment"].values()
    assert kwargs["environment"]["HOME"] == "/tmp"


# -- against a real engine -------------------------------------------------------------


SECCOMP_PROBE = """
    import ctypes, errno, multiprocessing, os, subprocess, sys
    libc = ctypes.CDLL(None, use_errno=True)

    def call(name, *args):
        result = getattr(libc, name)(*args)
        return errno.errorcode.get(ctypes.get_errno(), "?") if result == -1 else "allowed"

    def escapes():
        return {
            "ptrace attach 1": call("ptrace", 16, 1, None, None),
            "ptrace traceme": call("ptrace", 0, 0, None, None),
            "unshare user": call("unshare", 0x10000000),
            "keyctl": call("syscall", 250, 1, None, 0, 0, 0),
            "bpf": call("syscall", 321, 0, None, 0),
            "userfaultfd": call("syscall", 323, 0),
            "perf_event_open": call("syscall", 298, None, 0, -1, -1, 0),
            "personality": call("personality", 0x0040000),
            "mount": call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
        }

    def works():
        import torch
        torch.set_num_threads(2)
        a = torch.randn(64, 64)
        assert torch.isfinite(a @ a).all()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        out = subprocess.run([sys.executable, "-c", "print(42)"], capture_output=True,
                             text=True).stdout.strip()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            mapped = pool.map(abs, [-1, -2])
        return [os.waitstatus_to_exitcode(status), out, mapped, torch.get_num_threads()]
"""


@pytest.fixture(scope="session")
def engine_backend() -> DockerBackend:
    docker_with_local_image()
    return DockerBackend()


def our_containers(backend: DockerBackend, **labels: str) -> list[Any]:
    filters = [f"{LABEL_WORKER}={worker_label()}"] + [f"{k}={v}" for k, v in labels.items()]
    return list(backend.client.containers.list(all=True, filters={"label": filters}))


@pytest.fixture
def backend(engine_backend: DockerBackend) -> Iterator[DockerBackend]:
    yield engine_backend
    assert our_containers(engine_backend) == [], "a sandbox container outlived its test"


@pytest.fixture
def start(
    backend: DockerBackend, tmp_path: Path
) -> Iterator[Callable[..., DockerSession]]:
    """``start(limits=FAST, **config)`` -> a live container with probe.py in /submission."""
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "probe.py").write_text(textwrap.dedent(PROBE))
    opened: list[Session] = []

    def _start(limits: SessionLimits = FAST, **config: Any) -> DockerSession:
        session = backend.start(SandboxConfig(submission_dir=folder, **config), limits)
        opened.append(session)
        assert isinstance(session, DockerSession)
        return session

    yield _start
    for session in opened:
        session.close()


@pytest.mark.docker
class TestWithEngine:
    def test_the_reference_solution_scores_full_marks(self, backend: DockerBackend) -> None:
        spec = resolve_assignment("mytorch-cnn")
        result = grade_directory(spec, MYTORCH_SOLUTION, backend)
        failing = [(t.name, t.output[:300]) for t in result.tests if not t.passed]
        assert result.score == result.max_score == 100, failing
        assert result.sandbox == "docker"

    def test_the_container_is_isolated(
        self, start: Callable[..., DockerSession], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DLGRADE_SECRET_KEY", "hunter2")
        session = start(tmp_mb=8)
        found = session.import_module("probe").method("probe", 8, str(ROOT))
        assert found["ids"] == [10001, 10001, 10001]
        assert found["interfaces"] == ["lo"]
        assert found["connect"] in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EPERM)
        assert found["cap_eff"] == "0000000000000000" and found["no_new_privs"] == "1"
        assert found["setuid"] == errno.EPERM
        for key in ("write_root", "write_submission", "write_agent"):
            assert found[key] in (errno.EROFS, errno.EACCES), key
        assert found["ro"] == [True, True, True, True]
        assert 7 <= found["tmp_mb"] <= 9 and found["tmp_fill"] == errno.ENOSPC
        assert "hunter2" not in found["environ"].values()
        assert found["visible"] == [False, False, False]
        assert found["channel"] == [False, errno.EACCES], "the socket must be gone once connected"

    def test_held_out_data_is_hidden(self, backend: DockerBackend, tmp_path: Path) -> None:
        folder = tmp_path / "handin"
        folder.mkdir()
        (folder / "student.py").write_text(textwrap.dedent(HIDDEN_PROBE))
        config = SandboxConfig(submission_dir=folder, hidden_paths=data.hidden_paths())
        with backend.start(config, FAST) as session:
            assert_held_out_data_is_hidden(session, "student")

    def test_seccomp_refuses_escapes_and_keeps_pytorch_working(
        self, backend: DockerBackend, tmp_path: Path
    ) -> None:
        folder = tmp_path / "handin"
        folder.mkdir()
        (folder / "student.py").write_text(textwrap.dedent(SECCOMP_PROBE))
        config = SandboxConfig(submission_dir=folder, memory_mb=2048)
        with backend.start(config, SessionLimits(call_timeout_s=60)) as session:
            module = session.import_module("student")
            refused = module.method("escapes")
            assert refused == {name: "EPERM" for name in refused} and len(refused) == 9
            assert module.method("works") == [7, "42", [1, 2], 2]

    def test_student_output_comes_back_apart_from_the_replies(
        self, start: Callable[..., DockerSession]
    ) -> None:
        session = start()
        assert session.import_module("probe").method("chatter") == "reply"
        stdout, stderr = session.take_output()
        assert stdout == "to stdout\nfrom a child\n" or stdout == "from a child\nto stdout\n"
        assert stderr == "to stderr\n"

    def test_the_pids_limit_stops_a_fork_bomb(self, start: Callable[..., DockerSession]) -> None:
        session = start(max_processes=8)
        children, code = session.import_module("probe").method("fork_bomb")
        assert code == errno.EAGAIN and children < 32

    def test_an_oom_kill_is_reported_as_the_memory_limit(
        self, start: Callable[..., DockerSession]
    ) -> None:
        session = start(memory_mb=512)
        with pytest.raises(SessionDied) as death:
            session.import_module("probe").method("hog", 2048)
        assert death.value.reason == "oom"
        assert "exceeded the 512 MB memory limit during probe.hog()" in death.value.detail

    def test_grading_turns_an_oom_into_the_oom_outcome(
        self, backend: DockerBackend, tmp_path: Path
    ) -> None:
        spec = resolve_assignment("mytorch-cnn")
        spec = spec.model_copy(update={
            "tests": spec.tests[1:2],
            "sandbox": spec.sandbox.model_copy(update={"memory_mb": 512}),
        })
        handin = tmp_path / "handin"
        shutil.copytree(MYTORCH_SOLUTION, handin)
        with (handin / "mytorch/conv.py").open("a") as conv:
            conv.write("\nimport numpy as _np\n_HOG = _np.ones((2 << 30) // 8)\n")
        (test,) = grade_directory(spec, handin, backend).tests
        assert test.outcome == Outcome.OOM, test.output
        assert test.output.startswith("Your code exceeded the 512 MB memory limit during")

    def test_a_timeout_kills_and_removes_the_container(
        self, backend: DockerBackend, start: Callable[..., DockerSession]
    ) -> None:
        session = start(SessionLimits(call_timeout_s=1.0))
        token = session.box.container.labels[LABEL_SESSION]
        started = time.monotonic()
        with pytest.raises(SessionDied) as death:
            session.import_module("time").method("sleep", 60)
        assert death.value.reason == "timeout"
        assert time.monotonic() - started < 15
        assert our_containers(backend, **{LABEL_SESSION: token}) == []
        assert session.sandbox.process.returncode is not None

    def test_exiting_is_a_crash_with_the_exit_status(
        self, start: Callable[..., DockerSession]
    ) -> None:
        session = start()
        with pytest.raises(SessionDied) as death:
            session.import_module("os").method("_exit", 3)
        assert (death.value.reason, death.value.exit_code) == ("exited", 3)

    def test_a_container_that_cannot_start_says_why(self, backend: DockerBackend,
                                                    tmp_path: Path) -> None:
        broken = DockerBackend(backend.settings, client=backend.client, reap=False)
        broken.interpreter = Interpreter("/no/such/python")
        with pytest.raises(SessionDied) as death:
            broken.start(SandboxConfig(submission_dir=tmp_path), FAST)
        assert death.value.reason == "start" and "/no/such/python" in death.value.detail

    def test_sessions_leak_no_descriptors(self, backend: DockerBackend, tmp_path: Path) -> None:
        def open_fds() -> int:
            return len(os.listdir("/proc/self/fd"))

        config = SandboxConfig(submission_dir=tmp_path)
        backend.start(config, FAST).close()  # first use stages the agent copy
        before = open_fds()
        for _ in range(3):
            with backend.start(config, FAST) as session:
                session.ping()
        broken = DockerBackend(backend.settings, client=backend.client, reap=False)
        broken.interpreter = Interpreter("/no/such/python")
        with pytest.raises(SessionDied):
            broken.start(config, FAST)
        assert open_fds() == before

    def test_a_gpu_job_that_cannot_start_gives_its_gpu_back(
        self, backend: DockerBackend, tmp_path: Path
    ) -> None:
        gpus = GpuPool(["7"], tmp_path / "gpus")
        settings = dataclasses.replace(backend.settings, gpu_mode="devices", gpu_wait_s=1)
        gpu_backend = DockerBackend(settings, client=backend.client, gpus=gpus, reap=False)
        with pytest.raises(SessionDied) as death:  # there is no /dev/nvidia7 here
            gpu_backend.start(SandboxConfig(submission_dir=tmp_path), FAST)
        assert death.value.reason == "start"
        with gpus.acquire(timeout=0) as device:
            assert device == "7"

    def test_the_reaper_removes_containers_of_dead_workers(self, backend: DockerBackend) -> None:
        gone = subprocess.Popen(["true"])
        gone.wait()
        host, now = socket.gethostname(), int(time.time())
        workers = {"orphan": (f"{host}:{gone.pid}", now), "alive": (worker_label(), now),
                   "ancient": ("elsewhere:1", now - 3 * 86400)}
        made = {
            role: backend.client.containers.create(
                LOCAL_IMAGE, command=["/none"], name=f"dlgrade-reaper-{role}-{now}",
                labels={LABEL_SESSION: f"reaper-{role}", LABEL_WORKER: worker,
                        LABEL_CREATED: str(created)})
            for role, (worker, created) in workers.items()
        }
        try:
            removed = reap_orphans(backend.client, older_than=86400)
            assert made["orphan"].name in removed and made["ancient"].name in removed
            assert made["alive"].name not in removed
        finally:
            for container in made.values():
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001 - already reaped
                    pass

    def test_auto_chooses_docker_when_the_image_exists(self, backend: DockerBackend) -> None:
        assert choose_backend("auto").name == "docker"
        assert describe_choice("auto").startswith("Sandbox: docker")
        assert "does not exist" in describe_choice("docker", docker_image="dlgrade-nope:0")


@pytest.mark.docker
class TestWarmPool:
    def test_a_warm_container_grades_the_reference_solution(
        self, backend: DockerBackend
    ) -> None:
        spec = resolve_assignment("mytorch-cnn")
        limits = SessionLimits(call_timeout_s=spec.sandbox.call_timeout_s)
        pool = WarmPool(backend, sandbox_config(spec, Path("/unused")), limits, size=1)
        try:
            assert pool.wait_ready(60)
            warm = pool.idle[0][0]
            result = grade_directory(spec, MYTORCH_SOLUTION, pool)
            assert result.score == result.max_score == 100
            assert warm.closed, "grading should have used (and closed) the warm container"
        finally:
            pool.close()

    def test_preloads_only_allowed_modules_and_cold_starts_a_different_config(
        self, backend: DockerBackend, tmp_path: Path
    ) -> None:
        template = SandboxConfig(submission_dir=tmp_path, deny_imports=("torch",))
        pool = WarmPool(backend, template, FAST, size=1, preload=("numpy", "torch"))
        try:
            assert pool.wait_ready(60)
            handin = tmp_path / "handin"
            handin.mkdir()
            (handin / "student.py").write_text("ANSWER = 42\n")
            with pool.start(SandboxConfig(submission_dir=handin, deny_imports=("torch",)),
                            FAST) as session:
                modules = session.import_module("sys").attr("modules")  # name -> Remote
                assert "numpy" in modules and "torch" not in modules
                assert session.import_module("student").attr("ANSWER") == 42
            assert pool.wait_ready(60)
            cold_config = SandboxConfig(submission_dir=handin, memory_mb=1024)
            with pool.start(cold_config, FAST) as session:
                assert session not in [s for s, _ in pool.idle]
                assert session.import_module("student").attr("ANSWER") == 42
        finally:
            pool.close()


def test_an_image_runs_its_own_copy_of_the_runtime_or_does_not_start(tmp_path: Path) -> None:
    image = Interpreter("/usr/local/bin/python", runtimes=("numpy-1.26.4",),
                        masked=("/usr/local/lib/python3.11/site-packages",))
    config = SandboxConfig(submission_dir=tmp_path, runtime=RuntimeRequest("1.26.4"))
    kwargs = container_kwargs(config, FAST, DockerSettings(), image, token="abc",
                              channel=tmp_path)
    assert kwargs["command"][:3] == ["/usr/local/bin/python", "-I", "-S"]
    assert "/opt/dlgrade/runtimes/numpy-1.26.4" in kwargs["command"]
    cover = {m["Target"]: m for m in kwargs["mounts"]}["/usr/local/lib/python3.11/site-packages"]
    assert cover["Type"] == "tmpfs" and cover["ReadOnly"] is True
    other = dataclasses.replace(config, runtime=RuntimeRequest("2.4.6", "2.13.0"))
    with pytest.raises(SessionDied) as died:
        container_kwargs(other, FAST, DockerSettings(), image, token="abc", channel=tmp_path)
    assert died.value.reason == "start"
    assert "does not carry the runtime numpy-2.4.6-torch-2.13.0" in died.value.detail


def test_the_host_interpreter_gets_the_runtime_bound_at_runtime(tmp_path: Path) -> None:
    numpy_dir = tmp_path / "site-packages" / "numpy"
    numpy_dir.mkdir(parents=True)
    runtime = Runtime(RuntimeRequest("2.0.0"), (Entry("numpy", str(numpy_dir)),))
    kwargs = container_kwargs(SandboxConfig(submission_dir=tmp_path), FAST, DockerSettings(),
                              Interpreter("/py"), token="abc", channel=tmp_path,
                              runtime=runtime)
    bound = {m["Target"]: m for m in kwargs["mounts"]}["/runtime/numpy"]
    assert bound["Source"] == str(numpy_dir) and bound["ReadOnly"] is True
    assert "/opt/venv" not in {m["Target"] for m in kwargs["mounts"]}
