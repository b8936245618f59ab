"""The seccomp profile of Docker sandbox containers (docs/security.md §2.2, E3).

A deny-list on top of "allow": every system call student code (Python, NumPy, PyTorch,
their thread pools, ``fork`` and ``subprocess``) needs keeps working, and what a
sandbox never needs fails with EPERM: debugging or reading other processes (``ptrace``,
``process_vm_readv``; the container's own init runs as the same uid), the kernel
keyring, BPF, ``userfaultfd`` and ``perf_event_open`` (the usual kernel-exploit
primitives), mounting and new namespaces (also through ``clone`` flags), loading
modules, rebooting, setting clocks, ``io_uring`` and vsock sockets (the one socket
family a network namespace does not cover). ``clone3`` answers ENOSYS, as in
Docker's own profile, so the C library falls back to ``clone``, whose flags can be
checked. The engine's default profile is replaced by this one, so it repeats the
parts of it that matter here; the capability drop stays the first line of defence.
"""

from __future__ import annotations

import errno
import json
from typing import Any

DENIED = (
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd",
    "kcmp",
    # kernel attack surface rarely reachable otherwise
    "keyctl", "add_key", "request_key", "bpf", "userfaultfd", "perf_event_open",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
    "lookup_dcookie", "open_by_handle_at", "name_to_handle_at", "modify_ldt", "iopl",
    "ioperm", "vm86", "vm86old", "uselib", "ustat", "sysfs", "_sysctl", "personality",
    "vhangup",
    # mounts and namespaces
    "mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # the machine itself
    "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "create_module", "get_kernel_syms", "query_module", "swapon",
    "swapoff", "syslog", "acct", "quotactl", "quotactl_fd", "nfsservctl", "sethostname",
    "setdomainname", "settimeofday", "stime", "clock_settime", "clock_settime64",
    "clock_adjtime", "clock_adjtime64",
)
# clone() flags that create namespaces (CLONE_NEWNS, _NEWCGROUP, _NEWUTS, _NEWIPC,
# _NEWUSER, _NEWPID, _NEWNET); CLONE_NEWTIME shares its bit with the exit signal.
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000)
AF_VSOCK = 40


def _deny(names: list[str], code: int = errno.EPERM, **extra: Any) -> dict[str, Any]:
    return {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": code, **extra}


def profile() -> dict[str, Any]:
    """The profile as Docker's JSON format (``security_opt=["seccomp=<json>"]``)."""
    masked = [
        _deny(["clone"], args=[{"index": 0, "value": flag, "valueTwo": flag,
                                "op": "SCMP_CMP_MASKED_EQ"}])
        for flag in NAMESPACE_FLAGS
    ]
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64",
             "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": [
            _deny(list(DENIED)),
            _deny(["clone3"], errno.ENOSYS),
            *masked,
            _deny(["socket"], errno.EAFNOSUPPORT,
                  args=[{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_EQ"}]),
        ],
    }


def security_opt() -> str:
    """The ``security_opt`` entry that installs :func:`profile`."""
    return "seccomp=" + json.dumps(profile(), separators=(",", ":"))
