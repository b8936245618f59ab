import errno
import os


def _try(label, action):
    try:
        result = action()
        print(f"ALLOWED {label}: {str(result)[:200]}")
    except Exception as exc:  # noqa: BLE001
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        print(f"DENIED {label}: {type(exc).__name__} {code}".rstrip())

import subprocess

_try("setuid(0)", lambda: os.setuid(0))
_try("setgid(0)", lambda: os.setgid(0))
_try("seteuid(0)", lambda: os.seteuid(0))
for _cmd in (["sudo", "-n", "id"], ["su", "-c", "id"], ["mount", "-t", "tmpfs", "x", "/mnt"]):
    _try(" ".join(_cmd), lambda c=_cmd: subprocess.run(c, capture_output=True, timeout=5).returncode or (_ for _ in ()).throw(PermissionError("exit 0")))
print("IDS", os.getuid(), os.geteuid(), os.getgid())
_status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print("CAPEFF", _status["CapEff"].strip(), "NNP", _status.get("NoNewPrivs", "?").strip())


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
