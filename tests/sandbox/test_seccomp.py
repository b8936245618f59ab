"""The Docker sandbox's seccomp profile (sandbox/seccomp.py); the engine test that it
holds inside a real container is in test_docker_backend.py."""

from __future__ import annotations

import errno
import json

from sandbox.seccomp import DENIED, NAMESPACE_FLAGS, profile, security_opt


def test_the_profile_denies_what_a_sandbox_never_needs() -> None:
    rules = profile()["syscalls"]
    denied = {name for rule in rules if "args" not in rule for name in rule["names"]
              if rule["errnoRet"] == errno.EPERM}
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "keyctl", "bpf",
                 "userfaultfd", "perf_event_open", "mount", "umount2", "unshare", "setns",
                 "personality", "kexec_load", "init_module", "io_uring_setup", "reboot"):
        assert name in denied, name
    assert len(set(DENIED)) == len(DENIED)
    # Everything else is allowed: Python, NumPy and PyTorch need far more than a list.
    assert profile()["defaultAction"] == "SCMP_ACT_ALLOW"
    assert all(rule["action"] == "SCMP_ACT_ERRNO" for rule in rules)


def test_clone_is_refused_only_with_namespace_flags_and_clone3_falls_back() -> None:
    rules = profile()["syscalls"]
    clone = [rule for rule in rules if rule["names"] == ["clone"]]
    flags = sorted(rule["args"][0]["value"] for rule in clone)
    assert flags == sorted(NAMESPACE_FLAGS)
    assert all(rule["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and
               rule["args"][0]["value"] == rule["args"][0]["valueTwo"] for rule in clone)
    threads = 0x3D0F00  # the flags pthread_create passes: none of them a namespace
    assert not any(threads & flag for flag in flags)
    clone3 = next(rule for rule in rules if rule["names"] == ["clone3"])
    assert clone3["errnoRet"] == errno.ENOSYS  # the C library then uses clone()


def test_security_opt_carries_the_profile_as_json() -> None:
    option = security_opt()
    assert option.startswith("seccomp={")
    assert json.loads(option.removeprefix("seccomp=")) == profile()
