"""The process sandbox's seccomp filter (sandbox/seccomp_bpf.py): the program, run here on
a small classic-BPF interpreter, and the filter installed in a real process sandbox."""

from __future__ import annotations

import errno
import struct
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import seccomp_bpf, select
from sandbox.backend import SandboxConfig
from sandbox.process_backend import ProcessBackend
from sandbox.seccomp import DENIED, NAMESPACE_FLAGS
from sandbox.seccomp_bpf import (
    AUDIT_ARCH_X86_64,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_KILL_PROCESS,
    X86_64_NUMBERS,
    Instruction,
    program,
    ret_errno,
)
from sandbox.session import Session, SessionLimits

AUDIT_ARCH_I386 = 0x40000003
CLONE_THREAD_FLAGS = 0x3D0F00  # what pthread_create passes
FORK_FLAGS = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def run(
    instructions: list[Instruction], nr: int, *, arch: int = AUDIT_ARCH_X86_64,
    args: tuple[int, ...] = (0, 0, 0, 0, 0, 0),
) -> int:
    """What the kernel's classic-BPF interpreter returns for one system call."""
    data = struct.pack("<iIQ6Q", nr, arch, 0x401000, *args)
    accumulator, pc = 0, 0
    for _ in range(len(instructions) + 1):
        op = instructions[pc]
        if op.code == 0x20:
            accumulator = struct.unpack_from("<I", data, op.k)[0]
            pc += 1
        elif op.code == 0x06:
            return op.k
        elif op.code in (0x15, 0x35, 0x45):
            taken = {0x15: accumulator == op.k, 0x35: accumulator >= op.k,
                     0x45: bool(accumulator & op.k)}[op.code]
            pc += 1 + (op.jt if taken else op.jf)
        else:
            raise AssertionError(f"unexpected opcode {op.code:#x}")
        assert pc < len(instructions), "the program runs off its end"
    raise AssertionError("the program loops")


def test_denied_numbers_answer_eperm_and_everything_else_is_allowed() -> None:
    instructions = program()
    for name in DENIED:
        if name in X86_64_NUMBERS:
            assert run(instructions, X86_64_NUMBERS[name]) == ret_errno(errno.EPERM), name
    denied = set(seccomp_bpf.denied_numbers())
    special = {X86_64_NUMBERS[name] for name in ("clone", "clone3", "socket")}
    for nr in range(0, 470):  # read, mmap, futex, openat, execve, wait4, ...
        if nr not in denied | special:
            assert run(instructions, nr) == SECCOMP_RET_ALLOW, nr
    assert run(instructions, 101) == ret_errno(errno.EPERM)  # ptrace, by number
    assert run(instructions, 0) == SECCOMP_RET_ALLOW  # read


def test_every_denied_name_has_an_x86_64_number_or_none_there() -> None:
    # A name added to sandbox/seccomp.py without a number fails here (and in the builder).
    for name in DENIED:
        assert name in X86_64_NUMBERS or name in seccomp_bpf.NOT_ON_X86_64, name
    assert len(seccomp_bpf.denied_numbers()) == len(DENIED) - len(seccomp_bpf.NOT_ON_X86_64)


def test_clone_with_a_namespace_flag_is_refused_threads_and_fork_are_not() -> None:
    instructions, clone = program(), X86_64_NUMBERS["clone"]
    assert run(instructions, clone, args=(CLONE_THREAD_FLAGS, 0, 0, 0, 0, 0)) == SECCOMP_RET_ALLOW
    assert run(instructions, clone, args=(FORK_FLAGS, 0, 0, 0, 0, 0)) == SECCOMP_RET_ALLOW
    for flag in NAMESPACE_FLAGS:
        assert run(instructions, clone, args=(FORK_FLAGS | flag, 0, 0, 0, 0, 0)) == ret_errno(
            errno.EPERM), hex(flag)
    assert run(instructions, X86_64_NUMBERS["clone3"]) == ret_errno(errno.ENOSYS)


def test_only_vsock_sockets_are_refused() -> None:
    instructions, socket = program(), X86_64_NUMBERS["socket"]
    assert run(instructions, socket, args=(40, 1, 0, 0, 0, 0)) == ret_errno(errno.EAFNOSUPPORT)
    for family in (1, 2, 10, 16):  # unix, inet, inet6, netlink
        assert run(instructions, socket, args=(family, 1, 0, 0, 0, 0)) == SECCOMP_RET_ALLOW
    # The kernel reads the family as an int: high bits do not hide a vsock socket.
    assert run(instructions, socket, args=((1 << 32) | 40, 1, 0, 0, 0, 0)) == ret_errno(
        errno.EAFNOSUPPORT)


def test_a_foreign_architecture_is_killed_and_x32_calls_are_refused() -> None:
    instructions = program()
    # int 0x80 from a 64-bit process: i386 numbers (26 is ptrace there, 0 is restart_syscall)
    assert run(instructions, 26, arch=AUDIT_ARCH_I386) == SECCOMP_RET_KILL_PROCESS
    assert run(instructions, 0, arch=AUDIT_ARCH_I386) == SECCOMP_RET_KILL_PROCESS
    x32_ptrace = 0x40000000 | X86_64_NUMBERS["ptrace"]
    assert run(instructions, x32_ptrace) == ret_errno(errno.ENOSYS)
    assert run(instructions, 0x40000000) == ret_errno(errno.ENOSYS)


def test_another_host_architecture_gets_no_filter_and_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reason = seccomp_bpf.unavailable_reason("aarch64")
    assert reason is not None and "aarch64" in reason and "x86_64" in reason
    assert seccomp_bpf.unavailable_reason("x86_64") is None
    monkeypatch.setattr(select, "unavailable_reason", lambda: None)
    assert "+ seccomp" in select.describe_choice("process")
    monkeypatch.setattr(seccomp_bpf.platform, "machine", lambda: "aarch64")
    assert seccomp_bpf.launcher_program() is None  # the launcher then installs nothing
    described = select.describe_choice("process")
    assert "no seccomp filter" in described and "aarch64" in described, described


# -- the filter in a real process sandbox ------------------------------------------------------


PROBE = """
    import ctypes, os, subprocess, sys, threading

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def call(nr, *args):
        result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        return [result, ctypes.get_errno() if result < 0 else 0]

    def denied():
        tmp = ctypes.create_string_buffer(b"/tmp")
        tmpfs = ctypes.create_string_buffer(b"tmpfs")
        buffer = ctypes.create_string_buffer(64)
        iovec = (ctypes.c_void_p * 2)(ctypes.addressof(buffer), 64)
        return {
            "ptrace_traceme": call(101, 0, 0, 0, 0),
            "keyctl": call(250, 1, 0, 0, 0, 0),  # KEYCTL_JOIN_SESSION_KEYRING
            "bpf": call(321, 0, 0, 0),
            "perf_event_open": call(298, 0, 0, -1, -1, 0),
            "unshare": call(272, 0x00020000),
            "mount": call(165, ctypes.addressof(tmpfs), ctypes.addressof(tmp),
                          ctypes.addressof(tmpfs), 0, 0),
            "process_vm_readv": call(310, os.getpid(), ctypes.addressof(iovec), 1,
                                     ctypes.addressof(iovec), 1, 0),
            "clone_newuser": call(56, 0x10000000 | 17, 0, 0, 0, 0),
        }

    def seccomp_mode():
        lines = open("/proc/self/status").read().splitlines()
        return [line.split()[1] for line in lines if line.startswith("Seccomp:")]

    def torch_math():
        import torch
        torch.manual_seed(0)
        a = torch.randn(64, 64, dtype=torch.float64)
        return [float((a @ a.T).trace()), float((a * a).sum())]

    def threads():
        out = []
        workers = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sorted(out)

    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def run_subprocess():
        done = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True,
                              text=True, check=True)
        return done.stdout.strip()

    def pool():
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(2) as workers:
            return workers.map(abs, [-1, -2, -3])
"""


@pytest.fixture
def filtered(tmp_path: Path, process_backend: ProcessBackend) -> Iterator[Session]:
    if seccomp_bpf.unavailable_reason() is not None:
        pytest.skip(seccomp_bpf.unavailable_reason() or "")
    submission = tmp_path / "submission"
    submission.mkdir()
    submission.chmod(0o755)
    (submission / "student.py").write_text(textwrap.dedent(PROBE))
    session = process_backend.start(
        SandboxConfig(submission_dir=submission),
        SessionLimits(call_timeout_s=60.0, start_timeout_s=60.0))
    yield session
    session.close()


@pytest.mark.sandbox
def test_the_process_sandbox_refuses_denied_calls_with_eperm(filtered: Session) -> None:
    results = filtered.import_module("student").method("denied")
    assert results == {name: [-1, errno.EPERM] for name in results}, results
    assert filtered.import_module("student").method("seccomp_mode") == ["2"]  # filter mode


@pytest.mark.sandbox
def test_python_torch_threads_fork_and_subprocess_still_work(filtered: Session) -> None:
    module = filtered.import_module("student")
    trace, squares = module.method("torch_math")
    assert trace == pytest.approx(squares) and trace > 1000
    assert module.method("threads") == list(range(8))
    assert module.method("fork") == 7
    assert module.method("run_subprocess") == "42"
    assert module.method("pool") == [1, 2, 3]
