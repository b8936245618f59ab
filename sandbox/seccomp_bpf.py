"""The Docker profile (sandbox/seccomp.py) as a classic-BPF program for the process sandbox.

``sandbox.seccomp`` stays the one list of what a sandbox may not do; this module
translates it into the instructions the kernel runs on every system call of the
agent (``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ...)``, installed by
``sandbox/launcher.py`` just before it execs the agent). The program

1. checks the architecture: anything but x86_64 (a 32-bit ``int 0x80`` call, whose
   numbers differ) kills the process, and x32 calls (the 0x40000000 bit) answer
   ENOSYS, so no alias of a denied number gets through;
2. answers EPERM for every number in :data:`sandbox.seccomp.DENIED`, ENOSYS for
   ``clone3`` (the C library then uses ``clone``), EPERM for ``clone`` with a
   namespace flag and EAFNOSUPPORT for vsock sockets;
3. allows everything else.

Numbers are x86_64's; on another host :func:`unavailable_reason` says why there is no
filter, and the process sandbox runs without one (its other layers are unchanged).
"""

from __future__ import annotations

import errno
import operator
import platform
from dataclasses import dataclass
from functools import reduce

from sandbox.seccomp import AF_VSOCK, DENIED, NAMESPACE_FLAGS

# x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
X86_64_NUMBERS: dict[str, int] = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "process_madvise": 440, "pidfd_getfd": 438, "kcmp": 312,
    "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "userfaultfd": 323,
    "perf_event_open": 298, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "fanotify_init": 300, "lookup_dcookie": 212,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "modify_ldt": 154, "iopl": 172,
    "ioperm": 173, "uselib": 134, "ustat": 136, "sysfs": 139, "_sysctl": 156,
    "personality": 135, "vhangup": 153,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272,
    "setns": 308, "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "reboot": 169, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "create_module": 174,
    "get_kernel_syms": 177, "query_module": 178, "swapon": 167, "swapoff": 168,
    "syslog": 103, "acct": 163, "quotactl": 179, "quotactl_fd": 443, "nfsservctl": 180,
    "sethostname": 170, "setdomainname": 171, "settimeofday": 164, "clock_settime": 227,
    "clock_adjtime": 305,
    "clone": 56, "clone3": 435, "socket": 41,
}
# Names in DENIED that x86_64 does not have (32-bit only, or never a system call there).
NOT_ON_X86_64 = frozenset(
    {"vm86", "vm86old", "umount", "stime", "clock_settime64", "clock_adjtime64"})

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16

BPF_LD_W_ABS = 0x20   # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15      # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35      # BPF_JMP | BPF_JGE | BPF_K
BPF_JSET_K = 0x45     # BPF_JMP | BPF_JSET | BPF_K
BPF_RET_K = 0x06      # BPF_RET | BPF_K

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000


def ret_errno(code: int) -> int:
    return SECCOMP_RET_ERRNO | (code & 0xFFFF)


@dataclass(frozen=True)
class Instruction:
    """One ``struct sock_filter``; jumps are relative (0 is the next instruction)."""

    code: int
    jt: int
    jf: int
    k: int

    def as_list(self) -> list[int]:
        return [self.code, self.jt, self.jf, self.k]


def denied_numbers() -> list[int]:
    """The x86_64 numbers of :data:`sandbox.seccomp.DENIED` (names it lacks dropped)."""
    unknown = set(DENIED) - set(X86_64_NUMBERS) - NOT_ON_X86_64
    if unknown:
        raise ValueError(f"no x86_64 number for {', '.join(sorted(unknown))}")
    return sorted({X86_64_NUMBERS[name] for name in DENIED if name in X86_64_NUMBERS})


class _Assembler:
    """Straight-line code with forward jumps to named labels."""

    def __init__(self) -> None:
        self.code: list[tuple[int, str | int, str | int, int]] = []
        self.labels: dict[str, int] = {}

    def emit(self, code: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self.code.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> list[Instruction]:
        def offset(at: int, target: str | int) -> int:
            if isinstance(target, int):
                return target
            jump = self.labels[target] - at - 1
            if not 0 <= jump <= 255:  # classic BPF jumps forward only, at most 255
                raise ValueError(f"jump to {target} out of range ({jump})")
            return jump

        return [Instruction(code, offset(i, jt), offset(i, jf), k)
                for i, (code, jt, jf, k) in enumerate(self.code)]


def program() -> list[Instruction]:
    """The filter for an x86_64 process, built from :mod:`sandbox.seccomp`."""
    asm = _Assembler()
    asm.emit(BPF_LD_W_ABS, OFFSET_ARCH)
    asm.emit(BPF_JEQ_K, AUDIT_ARCH_X86_64, jt=1)
    asm.emit(BPF_RET_K, SECCOMP_RET_KILL_PROCESS)
    asm.emit(BPF_LD_W_ABS, OFFSET_NR)
    asm.emit(BPF_JGE_K, X32_SYSCALL_BIT, jt="enosys")
    for number in denied_numbers():
        asm.emit(BPF_JEQ_K, number, jt="eperm")
    asm.emit(BPF_JEQ_K, X86_64_NUMBERS["clone3"], jt="enosys")
    asm.emit(BPF_JEQ_K, X86_64_NUMBERS["clone"], jt="clone")
    asm.emit(BPF_JEQ_K, X86_64_NUMBERS["socket"], jt="socket")
    asm.emit(BPF_RET_K, SECCOMP_RET_ALLOW)
    asm.label("clone")  # flags are clone's first argument; every namespace bit is low
    asm.emit(BPF_LD_W_ABS, OFFSET_ARG0_LOW)
    asm.emit(BPF_JSET_K, reduce(operator.or_, NAMESPACE_FLAGS), jt="eperm")
    asm.emit(BPF_RET_K, SECCOMP_RET_ALLOW)
    asm.label("socket")  # the kernel reads the domain as an int: the low word decides
    asm.emit(BPF_LD_W_ABS, OFFSET_ARG0_LOW)
    asm.emit(BPF_JEQ_K, AF_VSOCK, jt="eafnosupport")
    asm.emit(BPF_RET_K, SECCOMP_RET_ALLOW)
    asm.label("eafnosupport")
    asm.emit(BPF_RET_K, ret_errno(errno.EAFNOSUPPORT))
    asm.label("eperm")
    asm.emit(BPF_RET_K, ret_errno(errno.EPERM))
    asm.label("enosys")
    asm.emit(BPF_RET_K, ret_errno(errno.ENOSYS))
    return asm.assemble()


def unavailable_reason(machine: str | None = None) -> str | None:
    """None when the process sandbox can filter system calls here, else why not."""
    machine = platform.machine() if machine is None else machine
    if machine not in ("x86_64", "AMD64"):
        return (f"no seccomp filter: its system call numbers are x86_64's and this host "
                f"is {machine or 'of an unknown architecture'}")
    return None


def launcher_program() -> list[list[int]] | None:
    """The program as the launcher's JSON config carries it, or None where unavailable."""
    if unavailable_reason() is not None:
        return None
    return [instruction.as_list() for instruction in program()]
