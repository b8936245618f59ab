"""The agent: a small RPC server that runs INSIDE the sandbox, next to student code.

It reads framed requests from the grader on one file descriptor and writes framed
answers on another; the student's stdout and stderr are separate pipes. Requests
import a module, get or set an attribute, call something, index something, or
release handles. Answers are plain data (see ``sandbox.protocol``) or handles for
anything else. Nothing here is trusted by the grader: student code shares this
process and can change any of it, which is why verdicts are computed outside.

This module imports only the standard library, NumPy and ``sandbox.protocol``.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

try:
    from sandbox import protocol
except ImportError:  # copied flat into the sandbox image
    import protocol  # type: ignore[no-redef]

MAX_TRACEBACK_CHARS = 6000
MAX_MESSAGE_CHARS = 2000
RESET_WAIT_S = 2.0


class ImportBlocker(importlib.abc.MetaPathFinder):
    """Refuses imports of packages the assignment forbids, with a friendly message.

    ``allowed_in`` (handin-relative patterns, under ``root``) names files the handout lets
    import them: such an import goes ahead when every handin file on the call stack is one
    of those, so a forbidden file cannot borrow the allowance by importing an allowed one.
    """

    def __init__(self, denied: Sequence[str], reason: str,
                 allowed_in: Sequence[str] = (), root: str = "") -> None:
        self.denied = frozenset(denied)
        self.reason = reason
        self.allowed_in = tuple(allowed_in)
        self.root = os.path.normpath(root or os.getcwd())

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.denied and not self._allowed():
            raise ImportError(f"{self.reason}: import of {fullname} is not allowed")
        return None

    def _allowed(self) -> bool:
        if not self.allowed_in:
            return False
        handin_files = []
        frame = sys._getframe(1)
        while frame is not None:
            name = os.path.normpath(frame.f_code.co_filename)
            if name.startswith(self.root + os.sep):
                handin_files.append(os.path.relpath(name, self.root).replace(os.sep, "/"))
            frame = frame.f_back  # type: ignore[assignment]
        return bool(handin_files) and all(
            any(fnmatch.fnmatchcase(f, pattern) for pattern in self.allowed_in)
            for f in handin_files)


class Dispatcher:
    """Executes requests against live objects; holds the handle table."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.next_id = 1

    def handle_of(self, value: Any) -> protocol.Handle:
        handle_id = self.next_id
        self.next_id += 1
        self.objects[handle_id] = value
        kind = type(value)
        return protocol.Handle(handle_id, f"{kind.__module__}.{kind.__qualname__}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, protocol.Handle):
            if value.id not in self.objects:
                raise LookupError(f"unknown handle {value.id}")
            return self.objects[value.id]
        if type(value) is list:
            return [self.resolve(item) for item in value]
        if type(value) is dict:
            return {key: self.resolve(item) for key, item in value.items()}
        return value

    def dispatch(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        operation = self.OPERATIONS.get(op) if isinstance(op, str) else None
        if operation is None:
            raise ValueError(f"unknown operation {op!r}")
        return operation(self, request)

    def _import(self, request: dict[str, Any]) -> Any:
        # A warm sandbox gets its handin after start-up: forget folders found missing then.
        importlib.invalidate_caches()
        return importlib.import_module(str(request["module"]))

    def _getattr(self, request: dict[str, Any]) -> Any:
        return getattr(self.resolve(request["obj"]), str(request["name"]))

    def _setattr(self, request: dict[str, Any]) -> None:
        setattr(self.resolve(request["obj"]), str(request["name"]), self.resolve(request["value"]))

    def _call(self, request: dict[str, Any]) -> Any:
        target = self.resolve(request["obj"])
        if request.get("name") is not None:
            target = getattr(target, str(request["name"]))
        args = self.resolve(request.get("args", []))
        kwargs = self.resolve(request.get("kwargs", {}))
        return target(*args, **kwargs)

    def _getitem(self, request: dict[str, Any]) -> Any:
        return self.resolve(request["obj"])[self.resolve(request["key"])]

    def _len(self, request: dict[str, Any]) -> int:
        return len(self.resolve(request["obj"]))

    def _release(self, request: dict[str, Any]) -> None:
        for handle_id in request.get("ids", []):
            self.objects.pop(handle_id, None)

    def _ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "uid": os.getuid()}

    def _reset(self, request: dict[str, Any]) -> int:
        """Kill and reap every other process of the sandbox; returns how many were reaped."""
        return kill_other_processes()

    def _routine(self, request: dict[str, Any]) -> Any:
        """Run a grader routine that must run next to the model (see sandbox.routines)."""
        routines = importlib.import_module(f"{__package__ or 'sandbox'}.routines")
        name = str(request["name"])
        if name not in routines.ROUTINES:
            raise ValueError(f"unknown routine {name!r}")
        args = self.resolve(request.get("args", []))
        kwargs = self.resolve(request.get("kwargs", {}))
        return routines.ROUTINES[name](*args, **kwargs)

    OPERATIONS: dict[str, Callable[[Dispatcher, dict[str, Any]], Any]] = {
        "import": _import,
        "getattr": _getattr,
        "setattr": _setattr,
        "call": _call,
        "getitem": _getitem,
        "len": _len,
        "release": _release,
        "ping": _ping,
        "reset": _reset,
        "routine": _routine,
    }


def describe_exception(exc: BaseException) -> dict[str, str]:
    """Plain-data description of an exception raised by student code."""
    try:
        message = str(exc)[:MAX_MESSAGE_CHARS]
    except Exception:  # noqa: BLE001 - a hostile __str__ must not kill the agent
        message = "<unprintable exception>"
    try:
        frames = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if not frame.filename.endswith(("agent.py", "protocol.py"))
        ]
        text = "".join(traceback.format_list(frames))
        text += f"{type(exc).__name__}: {message}\n"
    except Exception:  # noqa: BLE001
        text = f"{type(exc).__name__}: {message}\n"
    return {
        "type": type(exc).__name__,
        "message": message,
        "traceback": text[-MAX_TRACEBACK_CHARS:],
    }


def answer(dispatcher: Dispatcher, request: Any) -> bytes:
    """Run one request and encode the reply; never raises."""
    try:
        if not isinstance(request, dict):
            raise ValueError("request is not a mapping")
        value = dispatcher.dispatch(request)
        return protocol.encode({"ok": True, "value": value}, dispatcher.handle_of)
    except BaseException as exc:  # noqa: BLE001 - SystemExit etc. from student code
        return protocol.encode({"ok": False, "error": describe_exception(exc)})


def flush_student_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed or replaced stream
            pass


def kill_other_processes() -> int:
    """SIGKILL every process of this sandbox but the agent (and PID 1), then reap them.

    Between tests, so that daemons a test left behind (forked, ``setsid``, sleeping) do
    not use up the process limit of the next one. Refused unless the agent is PID 1 of
    its namespace or a child of it (the process and Docker backends): ``kill(-1)``
    outside a PID namespace of its own would reach every process of the uid.
    """
    if os.getpid() != 1 and os.getppid() != 1:
        raise PermissionError("this sandbox has no PID namespace of its own")
    reaped = 0
    deadline = time.monotonic() + RESET_WAIT_S
    while True:
        try:
            os.kill(-1, signal.SIGKILL)  # all but PID 1 and this process
            others = True
        except ProcessLookupError:
            others = False
        reaped += _reap()
        if not others or time.monotonic() > deadline:
            return reaped
        time.sleep(0.005)


def _reap() -> int:
    """Collect exited children (the agent's own, and orphans when it is PID 1)."""
    count = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


def _forget_channel(*fds: int) -> None:
    """Runs in every child that ``os.fork`` makes (student code, multiprocessing, PyTorch
    data loaders): the child gets no descriptor of the grader's channel."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def serve(request_fd: int, reply_fd: int, max_request_bytes: int) -> None:
    """Answer requests until the channel closes.

    Only this process speaks on the channel. A child that student code forks loses the
    channel's descriptors at once (``os.register_at_fork``; ``os.dup`` already made
    them close-on-exec), and one whose stack unwinds back into this loop, say when a
    nested ``fork`` fails in it, exits here instead of answering a request twice.
    """
    owner = os.getpid()
    os.register_at_fork(after_in_child=lambda: _forget_channel(request_fd, reply_fd))
    dispatcher = Dispatcher()
    protocol.write_all(reply_fd, protocol.encode({"ok": True, "value": {"ready": True}}))
    while True:
        try:
            request = protocol.read_frame(request_fd, max_request_bytes)
        except protocol.ProtocolError:
            return
        reply = answer(dispatcher, request)
        if os.getpid() != owner:
            os._exit(0)
        flush_student_streams()
        protocol.write_all(reply_fd, reply)


def import_path(root: str, folders: Sequence[str]) -> list[str]:
    """The handin folders to put first on sys.path, in order ("" is the handin root)."""
    paths = []
    for folder in folders:
        if not isinstance(folder, str) or folder.startswith("/") or ".." in folder.split("/"):
            raise ValueError(f"python_path entry {folder!r} is not a folder of the handin")
        paths.append(os.path.join(root, folder) if folder else root)
    return paths


def main(argv: Sequence[str]) -> None:
    """``agent REQUEST_FD REPLY_FD MAX_REQUEST_BYTES [DENIED,IMPORTS REASON [PYTHON_PATH
    [ALLOWED_IN]]]``, PYTHON_PATH a JSON list of handin folders (default ``[""]``, the handin
    root, which is the working directory), ALLOWED_IN a JSON list of handin file patterns
    that may import the denied packages (ImportBlocker)."""
    request_fd, reply_fd, max_request = (int(a) for a in argv[:3])
    # Keep the channel away from the low descriptors student code might reuse.
    request_fd, reply_fd = os.dup(request_fd), os.dup(reply_fd)
    for fd in (int(argv[0]), int(argv[1])):
        os.close(fd)
    if len(argv) > 4 and argv[3]:
        allowed = json.loads(argv[6]) if len(argv) > 6 else []
        sys.meta_path.insert(0, ImportBlocker(argv[3].split(","), argv[4], allowed, os.getcwd()))
    folders = json.loads(argv[5]) if len(argv) > 5 else [""]
    sys.path[0:0] = import_path(os.getcwd(), folders)
    if sys.flags.no_site:  # run with -S: the builtins site adds for interactive use
        import site

        site.setquit()
        site.setcopyright()
        site.sethelper()
    serve(request_fd, reply_fd, max_request)


if __name__ == "__main__":
    main(sys.argv[1:])
