"""Sessions end to end, on both backends, and the process backend's isolation.

Student modules are written to a fresh submission folder per test. Every
behaviour that both backends share runs on each through the ``backend`` fixture;
the ``Isolation`` tests need the process backend (and the ``sandbox`` mark).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import grader
from grader import data
from grader.spec import resolve_assignment
from sandbox.backend import Backend, LocalBackend, SandboxConfig
from sandbox.process_backend import ProcessBackend, runtime_paths
from sandbox.runtimes import base_python
from sandbox.session import Session, SessionDied, SessionLimits, StudentException
from tests.sandbox.held_out import HIDDEN_PROBE, assert_held_out_data_is_hidden
from tests.services import live_processes

FAST = SessionLimits(call_timeout_s=10.0, start_timeout_s=30.0)


@pytest.fixture(
    params=[
        pytest.param("none", id="local"),
        pytest.param("process", id="process", marks=pytest.mark.sandbox),
    ]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "process":
        # conftest's fixture: fails in CI, skips elsewhere, when namespaces are unavailable.
        process: ProcessBackend = request.getfixturevalue("process_backend")
        return process
    return LocalBackend()


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    folder.chmod(0o755)  # the process sandbox's uid must be able to read it
    return folder


@pytest.fixture
def start(
    submission: Path,
) -> Iterator[Callable[..., Session]]:
    """``start(backend, source, limits=..., **config)`` -> a live session on student.py."""
    opened: list[Session] = []

    def starter(
        backend: Backend, source: str, limits: SessionLimits = FAST, **config: Any
    ) -> Session:
        (submission / "student.py").write_text(textwrap.dedent(source))
        session = backend.start(SandboxConfig(submission_dir=submission, **config), limits)
        opened.append(session)
        return session

    yield starter
    for session in opened:
        session.close()


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a dead process only waiting to be reaped
    by the host's init, which in containers may take a while)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not any(line.startswith("State:") and "Z" in line.split()[1:2] for line in
                   status.splitlines())


def pid_gone(pid: int, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.05)
    return False


def settled(uid: int, count: int, timeout: float = 20.0) -> bool:
    """True once ``uid`` has ``count`` live processes in two readings 0.1 s apart: while
    a double fork is under way there is briefly one process more or fewer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(processes_of_uid(uid)) == count:
            time.sleep(0.1)
            if len(processes_of_uid(uid)) == count:
                return True
        time.sleep(0.02)
    return False


def processes_of_uid(uid: int) -> list[int]:
    """Live (non-zombie) processes any of whose uids (real, effective, saved, fs) is ``uid``."""
    return [p.pid for p in live_processes() if uid in p.uids]


def assert_nothing_left(session: Session, uid: int | None = None) -> None:
    """After close(): the sandbox process is reaped and (process backend) its uid is unused."""
    session.close()
    pid = session.sandbox.process.pid
    assert session.sandbox.process.returncode is not None
    assert pid_gone(pid), f"sandbox process {pid} is still there"
    if uid is not None and uid != os.getuid():
        deadline = time.monotonic() + 5
        while processes_of_uid(uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_of_uid(uid) == [], f"processes of sandbox uid {uid} remain"


STUDENT = """
    import numpy as np

    class Thing:
        def __init__(self, scale, *, offset=0.0):
            self.scale = scale
            self.offset = offset
            self.name = "thing"

        def forward(self, x):
            return x * self.scale + self.offset

        def pair(self):
            return [Thing(1), Thing(2), 3, {"inner": Thing(4)}]

        def total(self, things):
            return sum(t.scale for t in things)

        def fail(self):
            return helper_that_raises()

    def helper_that_raises():
        raise ValueError("student says no")

    def raise_base(kind):
        class Evil(BaseException):
            pass
        import sys
        if kind == "exit":
            sys.exit(0)
        if kind == "exit3":
            raise SystemExit(3)
        if kind == "interrupt":
            raise KeyboardInterrupt("ctrl-c")
        raise Evil("evil")
"""


# -- the basic RPC surface -----------------------------------------------------------------


def test_import_construct_call_and_attributes(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, STUDENT)
    assert session.backend == backend.name
    module = session.import_module("student")
    thing = module.attr("Thing").call(2.0, offset=1.0)
    assert thing.type_name == "student.Thing"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = thing.method("forward", x)
    assert type(y) is np.ndarray and y.dtype == np.float32
    np.testing.assert_array_equal(y, x * 2 + 1)
    assert thing.attr("name") == "thing"
    thing.set("scale", np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(thing.attr("scale"), [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(thing.method("forward", x[0]), [1.0, 11.0, 201.0])
    thing.set("name", {"a": [1, None]})
    assert thing.attr("name") == {"a": [1, None]}


def test_handles_inside_lists_and_dicts(backend: Backend, start: Callable[..., Session]) -> None:
    session = start(backend, STUDENT)
    thing = session.import_module("student").attr("Thing").call(1)
    first, second, three, rest = thing.method("pair")
    assert three == 3
    assert first.type_name == second.type_name == rest["inner"].type_name == "student.Thing"
    assert second.attr("scale") == 2
    assert thing.method("total", [first, second, rest["inner"]]) == 7
    assert thing.method("total", things=(second, second)) == 4


def test_student_exception_has_type_message_and_student_traceback(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, STUDENT)
    thing = session.import_module("student").attr("Thing").call(1)
    with pytest.raises(StudentException) as caught:
        thing.method("fail")
    exc = caught.value
    assert exc.type_name == "ValueError"
    assert exc.message == "student says no"
    assert "student.py" in exc.traceback
    assert "helper_that_raises" in exc.traceback
    assert "agent.py" not in exc.traceback and "protocol.py" not in exc.traceback
    assert exc.traceback.rstrip().endswith("ValueError: student says no")
    assert "fail" in exc.what
    assert thing.attr("scale") == 1  # the session survives


def test_missing_module_and_attribute_are_student_exceptions(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, STUDENT)
    with pytest.raises(StudentException) as caught:
        session.import_module("no_such_module")
    assert caught.value.type_name == "ModuleNotFoundError"
    with pytest.raises(StudentException) as caught:
        session.import_module("student").attr("Missing")
    assert caught.value.type_name == "AttributeError"
    assert session.ping()["pid"] > 0


@pytest.mark.parametrize(
    ("kind", "type_name"),
    [("exit", "SystemExit"), ("exit3", "SystemExit"), ("interrupt", "KeyboardInterrupt"),
     ("evil", "Evil")],
)
def test_base_exceptions_do_not_end_the_session(
    backend: Backend, start: Callable[..., Session], kind: str, type_name: str
) -> None:
    session = start(backend, STUDENT)
    module = session.import_module("student")
    with pytest.raises(StudentException) as caught:
        module.method("raise_base", kind)
    assert caught.value.type_name == type_name
    assert session.dead is None
    assert module.attr("Thing").call(5).attr("scale") == 5


# -- the process dies, hangs or misbehaves ---------------------------------------------------


def test_os_exit_is_reported_as_exited(backend: Backend, start: Callable[..., Session]) -> None:
    session = start(backend, "import os\ndef leave():\n    os._exit(0)\n")
    module = session.import_module("student")
    with pytest.raises(SessionDied) as caught:
        module.method("leave")
    assert caught.value.reason == "exited"
    assert "exited the process during" in caught.value.detail
    assert "student.leave()" in caught.value.detail
    assert caught.value.exit_code == 0
    assert session.dead is caught.value
    with pytest.raises(SessionDied):  # a dead session stays dead
        session.ping()
    assert_nothing_left(session)


def test_kill_signal_is_reported_as_killed(backend: Backend, start: Callable[..., Session]) -> None:
    session = start(backend, "import os, signal\ndef die():\n    os.kill(os.getpid(), 9)\n")
    module = session.import_module("student")
    if backend.name == "process":
        # The agent is PID 1 of its namespace, so its own SIGKILL is dropped: nothing happens.
        assert module.method("die") is None
        return
    with pytest.raises(SessionDied) as caught:
        module.method("die")
    assert caught.value.reason == "killed"


def test_kill_from_outside_is_reported_as_killed(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, "import time\ndef nap():\n    time.sleep(30)\n")
    module = session.import_module("student")
    killer = threading.Timer(0.5, os.kill, (session.sandbox.process.pid, signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(SessionDied) as caught:
            module.method("nap")
    finally:
        killer.cancel()
    assert caught.value.reason == "killed"
    assert "killed during student.nap()" in caught.value.detail
    assert_nothing_left(session)


@pytest.mark.parametrize(
    "body", ["while True:\n        pass", "time.sleep(1e9)", "threading.Event().wait()"],
    ids=["busy-loop", "sleep", "wait"],
)
def test_hangs_time_out_from_outside(
    backend: Backend, start: Callable[..., Session], body: str
) -> None:
    timeout = 1.5
    source = f"import threading, time\ndef hang():\n    {body}\n    return 'not reached'\n"
    session = start(backend, source, SessionLimits(call_timeout_s=timeout))
    module = session.import_module("student")
    began = time.monotonic()
    with pytest.raises(SessionDied) as caught:
        module.method("hang")
    elapsed = time.monotonic() - began
    assert caught.value.reason == "timeout"
    assert "did not finish within" in caught.value.detail
    assert elapsed < timeout + 3
    assert_nothing_left(session)


def test_stdin_is_empty(backend: Backend, start: Callable[..., Session]) -> None:
    session = start(backend, "import sys\ndef read():\n    return sys.stdin.read()\n")
    assert session.import_module("student").method("read") == ""


def test_per_call_timeout_overrides_the_default(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, "import time\ndef nap(s):\n    time.sleep(s)\n    return s\n",
                    SessionLimits(call_timeout_s=0.5))
    module = session.import_module("student")
    assert module.method("nap", 1.0, timeout=5) == 1.0
    with pytest.raises(SessionDied) as caught:
        module.method("nap", 5.0)
    assert caught.value.reason == "timeout"


def test_session_deadline_caps_every_call(backend: Backend, start: Callable[..., Session]) -> None:
    session = start(backend, "import time\ndef nap(s):\n    time.sleep(s)\n")
    module = session.import_module("student")
    session.deadline = time.monotonic() + 1.0
    began = time.monotonic()
    with pytest.raises(SessionDied) as caught:
        module.method("nap", 30, timeout=30)
    assert caught.value.reason == "timeout"
    assert time.monotonic() - began < 4


FAKE_OUTPUT = """
    import json, struct, sys
    def noisy(x):
        print(json.dumps({"score": 100, "status": "PASSED"}))
        header = b'{"ok":true,"value":42}'
        sys.stdout.buffer.write(struct.pack("<I", len(header) + 4) + struct.pack("<I", len(header)))
        sys.stdout.buffer.write(header)
        sys.stdout.buffer.write(b"\\x00\\x00\\x00\\x10" + b"\\xff" * 40)
        sys.stdout.flush()
        sys.stderr.write("warning: on stderr\\n")
        return x + 1
"""


def test_student_output_is_captured_apart_from_the_protocol(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, FAKE_OUTPUT)
    module = session.import_module("student")
    assert module.method("noisy", 1) == 2
    stdout, stderr = session.take_output()
    assert '"score": 100' in stdout and "PASSED" in stdout
    assert "warning: on stderr" in stderr and "PASSED" not in stderr
    assert module.method("noisy", 10) == 11  # the garbage did not disturb the next reply
    assert session.take_output()[0].count("PASSED") == 1
    assert session.take_output() == ("", "")


def test_output_flood_is_capped_and_memory_stays_flat(
    backend: Backend, start: Callable[..., Session]
) -> None:
    source = """
        import os, sys
        def flood(megabytes):
            line = b"x" * 1023 + b"\\n"
            for _ in range(megabytes * 1024):
                sys.stdout.buffer.write(line)
            sys.stderr.write("E" * 1000)
            return "done"
    """
    limits = SessionLimits(call_timeout_s=60, output_cap_bytes=64 << 10)
    session = start(backend, source, limits)
    module = session.import_module("student")
    tracemalloc.start()
    try:
        assert module.method("flood", 50) == "done"
        stdout, stderr = session.take_output()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(stdout) <= (64 << 10) + 200
    assert "bytes elided" in stdout
    assert stdout.startswith("x" * 1000)
    assert stderr == "E" * 1000
    assert peak < 16 << 20, f"the trusted side held {peak} bytes while reading a 50 MB flood"
    assert module.method("flood", 0) == "done"


def test_reply_larger_than_the_cap_is_malformed(
    backend: Backend, start: Callable[..., Session]
) -> None:
    source = "import numpy as np\ndef big(n):\n    return np.zeros(n, dtype=np.uint8)\n"
    session = start(backend, source, SessionLimits(max_reply_bytes=1 << 20))
    module = session.import_module("student")
    assert module.method("big", 1000).shape == (1000,)
    with pytest.raises(SessionDied) as caught:
        module.method("big", 2 << 20)
    assert caught.value.reason == "malformed"
    assert "cap" in caught.value.detail
    assert_nothing_left(session)


CHANNEL_WRITER = """
    import json, os, stat, struct

    def pipes():
        found = []
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
                    found.append(fd)
            except OSError:
                pass
        return found

    def write_all_pipes(data):
        for fd in pipes():
            try:
                os.write(fd, data)
            except OSError:
                pass
        return "ok"

    def garbage():
        return write_all_pipes(b"\\xff" * 16)

    def forged(header):
        header = header.encode()
        return write_all_pipes(struct.pack("<II", len(header) + 4, len(header)) + header)
"""


def test_garbage_on_the_reply_channel_is_malformed(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, CHANNEL_WRITER)
    module = session.import_module("student")
    assert len(module.method("pipes")) >= 2  # request and reply ends
    began = time.monotonic()
    with pytest.raises(SessionDied) as caught:
        module.method("garbage")
    assert caught.value.reason == "malformed"
    assert time.monotonic() - began < 5
    assert_nothing_left(session)


@pytest.mark.parametrize(
    "header",
    [
        '{"ok":true,"value":{"__nd__":["|O",[1000000,1000000],0,0]}}',
        '{"ok":true,"value":{"__nd__":["<f8",[1000000000000],0,8000000000000]}}',
        '{"ok":true,"value":{"__nd__":["<f8",[-1],0,8]}}',
        '{"ok":true,"value":' + "[" * 5000 + "]" * 5000 + "}",
        '{"ok":"yes"}',
        '"just a string"',
        "not json at all",
    ],
    ids=["object-dtype", "huge-shape", "negative-dim", "deep", "ok-not-bool", "string", "bad-json"],
)
def test_forged_frames_on_the_reply_channel_are_malformed(
    backend: Backend, start: Callable[..., Session], header: str
) -> None:
    session = start(backend, CHANNEL_WRITER)
    module = session.import_module("student")
    with pytest.raises(SessionDied) as caught:
        module.method("forged", header)
    assert caught.value.reason == "malformed"
    assert_nothing_left(session)


def test_close_leaves_no_process(backend: Backend, start: Callable[..., Session]) -> None:
    source = """
        import os, subprocess, sys, time
        def spawn():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            orphan = os.fork()
            if orphan == 0:
                os.setsid()
                time.sleep(600)
                os._exit(0)
            return [child.pid, orphan]
    """
    session = start(backend, source)
    info = session.ping()
    child, orphan = session.import_module("student").method("spawn")
    if backend.name == "process":
        assert_nothing_left(session, info["uid"])  # the PID namespace took both with it
        return
    # Unisolated: real host pids. The process group dies with close(); a child that
    # left the group with setsid() survives (why "none" is for trusted code only).
    try:
        assert not pid_gone(child, wait=0.2)
        assert_nothing_left(session)
        assert pid_gone(child)
    finally:
        try:
            os.kill(orphan, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_children_die_with_an_agent_that_exits(
    backend: Backend, start: Callable[..., Session]
) -> None:
    source = """
        import os, sys, time
        def leave():
            child = os.fork()
            if child == 0:
                time.sleep(600)
                os._exit(0)
            sys.stdout.write(f"child={child}\\n")
            sys.stdout.flush()
            os._exit(0)
    """
    session = start(backend, source, SessionLimits(call_timeout_s=2.0))
    uid = session.ping()["uid"]
    with pytest.raises(SessionDied) as caught:
        session.import_module("student").method("leave")
    if backend.name == "process":
        # PID 1 of the namespace exited: the kernel kills the child, the pipes close at once.
        assert caught.value.reason == "exited"
        assert_nothing_left(session, uid)
        return
    # Unisolated, the child keeps the reply pipe open: the exit shows as a timeout.
    assert caught.value.reason in ("exited", "timeout")
    child = int(session.stdout.take().strip().rpartition("child=")[2] or 0)
    assert child > 0
    try:
        assert_nothing_left(session)
        assert pid_gone(child), "a child of the exited agent outlived close()"
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


FORKING = """
    import os, time

    def fork_and_fall_through():
        # The child tries every descriptor it has with a forged frame, then raises: its
        # stack unwinds back into the agent's loop, which must not answer again.
        done_r, done_w = os.pipe()
        child = os.fork()
        if child == 0:
            for fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
                if fd > 2 and fd != done_w:
                    try:
                        os.write(fd, b"\\x00\\x00\\x00\\x04junk")
                    except OSError:
                        pass
            os.close(done_w)
            raise RuntimeError("the child unwinds into the agent")
        os.close(done_w)
        os.read(done_r, 1)  # returns once the child has closed its end
        os.close(done_r)
        os.waitpid(child, 0)
        return "parent"

    def daemons(count):
        for _ in range(count):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(600)
                os._exit(0)
        return count
"""


def test_a_forked_child_never_speaks_on_the_channel(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, FORKING)
    module = session.import_module("student")
    for _ in range(3):
        assert module.method("fork_and_fall_through") == "parent"
        assert session.ping()["pid"] > 0
    assert session.dead is None


@pytest.mark.sandbox
def test_reset_kills_and_reaps_every_other_process(
    start: Callable[..., Session], process_backend: ProcessBackend
) -> None:
    # The limit counts the agent's threads too: 24 leaves each round room to fork, while
    # 4 rounds of 8 processes (4 daemons, 4 zombies) would pass it without the reset.
    session = start(process_backend, FORKING, max_processes=24)
    uid = session.ping()["uid"]
    module = session.import_module("student")
    for _ in range(4):
        assert module.method("daemons", 4) == 4
        assert settled(uid, 5)  # the agent and 4 daemons, their parents exited
        assert session.reset_processes() == 8
        assert len(processes_of_uid(uid)) == 1
    assert_nothing_left(session, uid)


def test_reset_refuses_without_a_pid_namespace(start: Callable[..., Session]) -> None:
    session = start(LocalBackend(), "")
    with pytest.raises(StudentException) as caught:
        session.reset_processes()
    assert caught.value.type_name == "PermissionError"
    assert session.ping()["pid"] == session.sandbox.process.pid


def test_close_is_idempotent_and_spares_reused_descriptors(
    backend: Backend, start: Callable[..., Session]
) -> None:
    session = start(backend, "def hello():\n    print('hi')\n")
    session.import_module("student").method("hello")
    session.close()
    pipes = [os.pipe() for _ in range(4)]  # likely to reuse the session's numbers
    try:
        for _, write in pipes:
            os.write(write, b"not the student's")
        session.close()
        assert session.take_output() == ("hi\n", "")  # drained at close, nothing read since
        with pytest.raises(SessionDied) as caught:
            session.ping()
        assert caught.value.reason == "killed"
        for read, _ in pipes:
            assert os.read(read, 100) == b"not the student's"
    finally:
        for read, write in pipes:
            os.close(read)
            os.close(write)


def test_start_failure_is_reported(backend: Backend, tmp_path: Path) -> None:
    missing = SandboxConfig(submission_dir=tmp_path / "never-extracted")
    with pytest.raises(SessionDied) as caught:
        backend.start(missing, SessionLimits(start_timeout_s=10))
    assert caught.value.reason == "start"
    assert "could not start" in caught.value.detail


def test_submission_cannot_shadow_the_agent(
    backend: Backend, start: Callable[..., Session], submission: Path
) -> None:
    boom = "import os\nos._exit(3)\n"
    for name in ("sandbox/__init__.py", "sandbox/agent.py", "sandbox/protocol.py",
                 "numpy.py", "sitecustomize.py", "usercustomize.py"):
        (submission / name).parent.mkdir(exist_ok=True)
        (submission / name).write_text(boom)
    (submission / "sandbox").chmod(0o755)
    session = start(backend, "import numpy\ndef ok():\n    return numpy.__name__\n",
                    extra_env={"PYTHONPATH": "/submission", "PYTHONSTARTUP": "sitecustomize.py"})
    assert session.import_module("student").method("ok") == "numpy"


def test_environment_has_no_host_secrets(
    backend: Backend, start: Callable[..., Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLGRADE_SECRET_KEY", "s3cret")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:s3cret@db/dlgrade")
    session = start(backend, "import os\ndef env():\n    return dict(os.environ)\n")
    env = session.import_module("student").method("env")
    assert "DLGRADE_SECRET_KEY" not in env and "DATABASE_URL" not in env
    assert not any("s3cret" in value for value in env.values())
    assert env["OMP_NUM_THREADS"] == "1"


# -- isolation: process backend only ---------------------------------------------------------


ISOLATION = """
    import ctypes, errno, os, socket

    def connect(host, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect((host, port))
        except OSError as exc:
            return ["OSError", exc.errno, type(exc).__name__]
        finally:
            s.close()
        return ["connected"]

    def interfaces():
        lines = open("/proc/net/dev").read().splitlines()[2:]
        return sorted(line.split(":")[0].strip() for line in lines)

    def ids():
        return [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()]

    def capabilities():
        lines = open("/proc/self/status").read().splitlines()
        return {l.split(":")[0]: l.split()[1] for l in lines if l.startswith("Cap")}

    def read(path):
        try:
            with open(path, "rb") as f:
                return ["read", len(f.read())]
        except OSError as exc:
            return ["OSError", exc.errno]

    def listdir(path):
        try:
            return ["listed", sorted(os.listdir(path))]
        except OSError as exc:
            return ["OSError", exc.errno]

    def write(path, megabytes=0):
        try:
            with open(path, "wb") as f:
                f.write(b"x")
                chunk = b"\\0" * (1 << 20)
                for _ in range(megabytes):
                    f.write(chunk)
                    f.flush()
        except OSError as exc:
            return ["OSError", exc.errno]
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
        return ["written"]

    def fill(folder, files, megabytes):
        chunk = b"\\0" * (1 << 20)
        written, paths = 0, []
        try:
            for index in range(files):
                paths.append(f"{folder}/fill{index}")
                with open(paths[-1], "wb") as f:
                    for _ in range(megabytes):
                        f.write(chunk)
                        f.flush()
                        written += 1
        except OSError as exc:
            return ["OSError", exc.errno, written]
        finally:
            for path in paths:
                os.unlink(path)
        return ["written", written]

    def setuid_root():
        try:
            os.setuid(0)
        except OSError as exc:
            return ["OSError", exc.errno]
        return ["root!"]

    def chroot_escape():
        try:
            os.chroot("/proc/1/root")
        except OSError as exc:
            return ["OSError", exc.errno]
        return ["escaped"]

    def ptrace(pid):
        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
        return [result, ctypes.get_errno()]

    def allocate(gigabytes):
        import numpy as np
        a = np.ones(int(gigabytes * (1 << 30)), dtype=np.uint8)
        return int(a[-1])

    def processes():
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

    def fork_bomb(n):
        import time
        made = 0
        for _ in range(n):
            try:
                pid = os.fork()
            except OSError as exc:
                return ["OSError", type(exc).__name__, exc.errno, made]
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            made += 1
        return ["forked", made]
"""


@pytest.fixture
def isolated(start: Callable[..., Session], process_backend: ProcessBackend) -> Session:
    return start(process_backend, ISOLATION)


@pytest.mark.sandbox
class TestIsolation:
    def test_network_is_unreachable(self, isolated: Session) -> None:
        module = isolated.import_module("student")
        for host, port in (("127.0.0.1", 1), ("10.255.255.1", 80), ("127.0.0.1", 80)):
            began = time.monotonic()
            result = module.method("connect", host, port)
            assert result[0] == "OSError", (host, port, result)
            assert time.monotonic() - began < 3
        assert module.method("interfaces") == ["lo"]

    def test_runs_as_an_unprivileged_uid(self, isolated: Session) -> None:
        uid, euid, gid, groups = isolated.import_module("student").method("ids")
        assert uid == euid == isolated.ping()["uid"]
        assert uid not in (0, os.getuid()) and gid != 0
        assert groups == []
        assert isolated.import_module("student").method("setuid_root") == ["OSError", errno.EPERM]
        assert isolated.import_module("student").method("chroot_escape")[0] == "OSError"
        # No capability at all, not even in the bounding set (so none after an exec).
        capabilities = isolated.import_module("student").method("capabilities")
        assert set(capabilities.values()) == {"0000000000000000"}, capabilities

    def test_cannot_see_the_repo_the_reference_or_other_submissions(
        self, isolated: Session, tmp_path: Path
    ) -> None:
        other = tmp_path / "other-student"
        other.mkdir()
        (other / "secret.py").write_text("ANSWER = 42\n")
        solution = resolve_assignment("mytorch-cnn").folder / "solution"
        module = isolated.import_module("student")
        repo = Path(grader.__file__).resolve().parent.parent
        for path in (repo / "pyproject.toml", Path(grader.__file__).resolve(),
                     solution / "mytorch" / "conv.py", other / "secret.py",
                     Path("/etc/shadow")):
            result = module.method("read", str(path))
            assert result[0] == "OSError", f"{path} is readable in the sandbox"
        for folder in (solution, solution.parent, other, tmp_path, repo / "grader",
                       repo / "reference"):
            assert module.method("listdir", str(folder))[0] == "OSError", folder
        listed = module.method("listdir", "/submission/..")
        assert "other-student" not in listed[1] and "submission" in listed[1]
        assert module.method("listdir", "/submission") == ["listed", ["student.py"]]
        # /tmp is the sandbox's own tmpfs: empty but for mount points of the runtime
        # (a virtual environment in a checkout under /tmp, as in CI).
        runtime_under_tmp = {
            Path(p).relative_to("/tmp").parts[0] for p in runtime_paths() if p.startswith("/tmp/")
        }
        status, entries = module.method("listdir", "/tmp")
        assert status == "listed" and set(entries) <= runtime_under_tmp
        with pytest.raises(StudentException) as caught:
            isolated.import_module("reference.numpy_layers")
        assert caught.value.type_name == "ModuleNotFoundError"

    def test_cannot_write_the_submission_or_the_root(self, isolated: Session) -> None:
        module = isolated.import_module("student")
        for path in ("/submission/results.json", "/submission/student.py", "/results.json",
                     "/etc/passwd", "/agent/sandbox/agent.py"):
            result = module.method("write", path)
            assert result[0] == "OSError" and result[1] in (errno.EROFS, errno.EACCES), path
        assert module.method("read", "/submission/student.py")[0] == "read"

    def test_tmp_is_writable_but_capped(self, isolated: Session) -> None:
        module = isolated.import_module("student")
        assert module.method("write", "/tmp/results.json", 1) == ["written"]
        result = module.method("write", "/tmp/big", 400, timeout=30)
        assert result[0] == "OSError" and result[1] in (errno.ENOSPC, errno.EFBIG)
        assert module.method("write", "/dev/shm/big", 400, timeout=30)[0] == "OSError"
        # Many files under the per-file cap still hit the size of the tmpfs (256 MB).
        result = module.method("fill", "/tmp", 8, 60, timeout=30)
        assert result[:2] == ["OSError", errno.ENOSPC] and 200 <= result[2] <= 260, result
        assert module.method("write", "/tmp/again", 1) == ["written"]  # fill cleaned up

    def test_huge_allocation_is_a_memory_error(self, isolated: Session) -> None:
        with pytest.raises(StudentException) as caught:
            isolated.import_module("student").method("allocate", 50)
        assert caught.value.type_name == "MemoryError"
        assert isolated.import_module("student").method("allocate", 0.01) == 1

    def test_fork_bomb_is_stopped_by_the_process_limit(
        self, start: Callable[..., Session], process_backend: ProcessBackend
    ) -> None:
        session = start(process_backend, ISOLATION, SessionLimits(call_timeout_s=10),
                        max_processes=16)
        uid = session.ping()["uid"]
        began = time.monotonic()
        try:
            result = session.import_module("student").method("fork_bomb", 5000)
        except SessionDied as death:
            assert death.reason == "timeout"
        else:
            assert result[0] == "OSError" and result[1] == "BlockingIOError", result
            assert result[3] < 16
            assert session.ping()["uid"] == uid  # the agent still answers
        assert time.monotonic() - began < 13
        assert_nothing_left(session, uid)

    def test_proc_shows_only_the_sandbox(self, isolated: Session) -> None:
        module = isolated.import_module("student")
        pid = isolated.ping()["pid"]
        assert pid == 1  # the agent is the init of its own PID namespace
        assert module.method("processes") == [pid]
        assert os.getpid() != 1
        assert module.method("read", f"/proc/{os.getpid()}/environ")[0] == "OSError"

    def test_ptrace_fails(self, isolated: Session) -> None:
        module = isolated.import_module("student")
        result, err = module.method("ptrace", 1)
        assert result == -1 and err in (errno.EPERM, errno.ESRCH)
        result, err = module.method("ptrace", os.getpid())
        assert result == -1 and err in (errno.EPERM, errno.ESRCH)

    def test_close_kills_the_namespace(self, isolated: Session) -> None:
        uid = isolated.ping()["uid"]
        assert isolated.import_module("student").method("fork_bomb", 3) == ["forked", 3]
        assert len(processes_of_uid(uid)) == 4
        assert_nothing_left(isolated, uid)


@pytest.mark.sandbox
def test_held_out_data_is_hidden_in_the_process_sandbox(
    start: Callable[..., Session], process_backend: ProcessBackend
) -> None:
    session = start(process_backend, HIDDEN_PROBE, hidden_paths=data.hidden_paths())
    assert_held_out_data_is_hidden(session, "student")


@pytest.mark.sandbox
def test_the_agent_command_line_names_no_host_checkout(
    start: Callable[..., Session], process_backend: ProcessBackend
) -> None:
    session = start(process_backend, "def cmdline():\n    return open('/proc/1/cmdline').read()\n")
    cmdline = session.import_module("student").method("cmdline")
    repo = str(Path(grader.__file__).resolve().parent.parent)
    assert repo not in cmdline and os.path.realpath(sys.prefix) not in cmdline
    assert cmdline.startswith(base_python())  # the base interpreter, never the virtualenv


def test_sigstop_of_the_agent_times_out(backend: Backend, start: Callable[..., Session]) -> None:
    source = "import os, signal\ndef stop():\n    os.kill(os.getpid(), signal.SIGSTOP)\n"
    session = start(backend, source, SessionLimits(call_timeout_s=1.0))
    began = time.monotonic()
    try:
        session.import_module("student").method("stop")
    except SessionDied as death:
        assert death.reason == "timeout"
    else:
        # The process sandbox's agent is PID 1 of its namespace: the kernel drops the signal.
        assert backend.name == "process"
    assert time.monotonic() - began < 4
    assert_nothing_left(session)
