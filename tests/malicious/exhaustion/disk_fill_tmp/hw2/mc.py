import errno
import os

_written = 0
_code = None
try:
    for _i in range(1000):
        with open(f"/tmp/fill{_i}", "wb") as _f:
            for _ in range(32):
                _f.write(b"\0" * (1 << 20))
                _written += 1
except OSError as _exc:
    _code = errno.errorcode.get(_exc.errno, _exc.errno)
for _name in ("/dev/shm/fill",):
    try:
        with open(_name, "wb") as _f:
            _f.write(b"\0" * (1 << 30))
    except OSError as _exc:
        print("SHM-STOPPED", errno.errorcode.get(_exc.errno, _exc.errno))
print(f"FILL-STOPPED {_code} after {_written} MB")


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
