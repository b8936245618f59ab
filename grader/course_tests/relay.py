"""The grader's side of a course test run: a trusted runner process, relayed to the
student's sandbox session.

The runner gets no session of its own and no power over the sandbox: it can ask for the
object operations a check could (import, getattr, setattr, call, getitem, len, release),
one at a time, each under the session's own timeouts and deadline. It cannot run grader
routines, reset or kill the sandbox, and it sees no other student's files: it runs in a
private copy of the course's test folder, with an environment built from nothing but what
Python needs (no DLGRADE_* settings, no database or broker URL, no secrets), with no
descriptor but its channel and its output pipes, in a process group of its own that is
killed when the run ends.
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grader
from sandbox import protocol
from sandbox.output import CappedText
from sandbox.protocol import ProtocolError
from sandbox.session import Session, SessionDied, StudentException

RELAYED = frozenset({"import", "getattr", "setattr", "call", "getitem", "len", "release"})
MAX_REQUEST_BYTES = 256 << 20
OUTPUT_CAP = 256 << 10
RUNNER_MEMORY_MB = 4096
PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH", "LANG")


@dataclass(frozen=True)
class RunRequest:
    """One run of a course test file: ``mode`` is "pytest" or "script"; ``file`` is
    relative to ``folder`` (the course's trusted test folder)."""

    mode: str
    folder: Path
    file: str
    modules: tuple[str, ...]
    forced: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    timeout_s: float = 300.0
    plugins: tuple[str, ...] = ()  # pytest plug-ins to load (-p NAME)


@dataclass
class RunReport:
    """What one run produced. ``cases`` maps pytest node ids to outcome and message;
    ``stdout`` is the test file's own output (a runner script's PASS/FAIL lines)."""

    cases: dict[str, dict[str, str]] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    died: SessionDied | None = None
    error: str | None = None  # the runner itself failed (timeout, no report)
    requests: int = 0
    seconds: float = 0.0  # the whole run, the runner's start included
    run_seconds: float | None = None  # the test file's run alone, as the runner timed it


def run_course_tests(session: Session, run: RunRequest) -> RunReport:
    """Run ``run`` once against the student's ``session``; never raises for the run's
    own faults (they are in the report)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dlgrade-course-") as scratch:
        workdir = Path(scratch) / "tests"
        shutil.copytree(run.folder, workdir, ignore=shutil.ignore_patterns("__pycache__"))
        report = _Relay(session, run, workdir).run()
    report.seconds = time.monotonic() - started
    return report


def runner_env(home: Path) -> dict[str, str]:
    """The runner's whole environment: the grader's packages importable, nothing else."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(Path(grader.__file__).resolve().parent.parent),
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           # pytest's own plug-ins only: no installed plug-in runs unasked in the runner
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.update({key: os.environ[key] for key in PASSTHROUGH_ENV if key in os.environ})
    return env


def _limit_runner() -> None:
    memory = RUNNER_MEMORY_MB << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class _Relay:
    def __init__(self, session: Session, run: RunRequest, workdir: Path) -> None:
        self.session, self.run_request, self.workdir = session, run, workdir
        self.stdout, self.stderr = CappedText(OUTPUT_CAP), CappedText(OUTPUT_CAP)
        self.report = RunReport()
        self.buffer = bytearray()
        self._no_report = True

    def run(self) -> RunReport:
        to_runner_r, to_runner_w = os.pipe()
        from_runner_r, from_runner_w = os.pipe()
        command = [sys.executable, "-m", "grader.course_tests.runner",
                   str(from_runner_w), str(to_runner_r)]
        process = subprocess.Popen(
            command, cwd=self.workdir, env=runner_env(self.workdir.parent),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(from_runner_w, to_runner_r), start_new_session=True,
            preexec_fn=_limit_runner,
        )
        os.close(from_runner_w)
        os.close(to_runner_r)
        try:
            self._send(to_runner_w, self._config())
            self._serve(process, from_runner_r, to_runner_w)
        finally:
            _kill(process)
            self._drain(process)
            for fd in (from_runner_r, to_runner_w):
                os.close(fd)
        self.report.stdout, self.report.stderr = self.stdout.take(), self.stderr.take()
        if self.report.exit_code is None:
            self.report.exit_code = process.returncode
        return self.report

    def _config(self) -> dict[str, Any]:
        run = self.run_request
        return {"mode": run.mode, "file": run.file, "modules": list(run.modules),
                "forced": list(run.forced), "args": list(run.args),
                "plugins": list(run.plugins)}

    def _serve(self, process: subprocess.Popen[bytes], requests: int, replies: int) -> None:
        assert process.stdout is not None and process.stderr is not None
        streams = {process.stdout.fileno(): self.stdout, process.stderr.fileno(): self.stderr}
        open_fds = [requests, *streams]
        deadline = time.monotonic() + self.run_request.timeout_s
        while requests in open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.report.error = (f"the course tests did not finish within "
                                     f"{self.run_request.timeout_s:g} s")
                return
            readable, _, _ = select.select(open_fds, [], [], remaining)
            for fd in readable:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    open_fds.remove(fd)
                elif fd in streams:
                    streams[fd].feed(chunk)
                else:
                    self.buffer += chunk
                    self._answer_frames(replies)
        if self.report.error is None and self._no_report:
            self.report.error = "the course test runner stopped without a report"

    def _answer_frames(self, replies: int) -> None:
        while len(self.buffer) >= protocol.LENGTH.size:
            (length,) = protocol.LENGTH.unpack_from(self.buffer)
            if length > MAX_REQUEST_BYTES:
                raise ProtocolError("the runner sent an oversized frame")
            end = protocol.LENGTH.size + length
            if len(self.buffer) < end:
                return
            message = protocol.decode(bytes(self.buffer[protocol.LENGTH.size:end]))
            del self.buffer[:end]
            reply = self._handle(message)
            if reply is not None:
                self._send(replies, reply)

    def _handle(self, message: Any) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return {"ok": False, "error": {"type": "TypeError", "message": "not a request"}}
        if message.get("op") == "done":
            self._finish(message.get("report"))
            return None
        if message.get("op") not in RELAYED:
            return {"ok": False, "error": {"type": "PermissionError",
                                           "message": f"{message.get('op')!r} is not relayed"}}
        if self.report.died is not None:
            return {"ok": False, "died": self.report.died.detail}
        self.report.requests += 1
        try:
            value = self.session.request(message, None, _describe(message))
        except StudentException as exc:
            return {"ok": False, "error": {"type": exc.type_name, "message": exc.message,
                                           "traceback": exc.traceback}}
        except SessionDied as death:
            self.report.died = death
            return {"ok": False, "died": death.detail}
        except (TypeError, ValueError) as exc:
            return {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}}
        return {"ok": True, "value": value}

    def _finish(self, report: Any) -> None:
        self._no_report = False
        if not isinstance(report, dict):
            return
        cases = report.get("cases")
        if isinstance(cases, dict):
            self.report.cases = {str(k): {"outcome": str(v.get("outcome", "")),
                                          "message": str(v.get("message", ""))}
                                 for k, v in cases.items() if isinstance(v, dict)}
        if isinstance(report.get("exit_code"), int):
            self.report.exit_code = report["exit_code"]
        if isinstance(report.get("run_seconds"), float):
            self.report.run_seconds = report["run_seconds"]

    def _send(self, fd: int, message: dict[str, Any]) -> None:
        try:
            protocol.write_all(fd, protocol.encode(message))
        except BrokenPipeError:
            pass

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        for stream, sink in ((process.stdout, self.stdout), (process.stderr, self.stderr)):
            if stream is None:
                continue
            os.set_blocking(stream.fileno(), False)
            try:
                chunk = stream.read()
            except OSError:
                chunk = None
            if chunk:
                sink.feed(chunk)
            stream.close()


def _describe(message: dict[str, Any]) -> str:
    op = message.get("op")
    if op == "import":
        return f"import {message.get('module')}"
    name = message.get("name")
    return f"a course test's {op} {name}" if isinstance(name, str) else f"a course test's {op}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=10)
