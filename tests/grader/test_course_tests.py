"""Course tests run unchanged through the proxies give the verdicts they give in-process
on the same code (both shapes: a runner script and pytest files, NumPy and PyTorch with
backward through the student's module); where in-process a student could forge them,
through the proxies they cannot; the test file's own exits and prints stay contained."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.course_tests.proxies import names_used_by, star_import_may_bind
from grader.known_bugs import KnownBug, build_handin, known_bugs
from sandbox.backend import Backend, LocalBackend
from tests.grader.course_runs import in_process, proxied

ROOT = Path(__file__).resolve().parents[2]
RNN = ROOT / "assignments/rnn-gru-cells"
AFFINE = ROOT / "tests/course_style/torch_affine"
RNN_PATH = ("", "mytorch", "hw3")

pytestmark = pytest.mark.sandbox

SHAPES = [
    ("script", RNN, "autograder/runner.py", RNN_PATH),
    ("pytest", RNN, "autograder/test_cells.py", RNN_PATH),
    ("pytest", AFFINE, "test_layers.py", ("",)),
]


def _handin(folder: Path, tmp_path: Path, bug: KnownBug | None) -> Path:
    return build_handin(folder / "solution", bug, tmp_path / "handin")


def _cases() -> list[tuple[str, Path, str, tuple[str, ...], KnownBug | None]]:
    found = []
    for mode, folder, file, path in SHAPES:
        for bug in [None, *known_bugs(folder)]:
            found.append((mode, folder, file, path, bug))
    return found


@pytest.mark.parametrize(
    ("mode", "folder", "file", "python_path", "bug"), _cases(),
    ids=lambda v: v.name if isinstance(v, KnownBug | Path) else None)
def test_same_verdicts_as_in_process(
    tmp_path: Path, process_backend: Backend, mode: str, folder: Path, file: str,
    python_path: tuple[str, ...], bug: KnownBug | None,
) -> None:
    handin = _handin(folder, tmp_path, bug)
    expected = in_process(mode, folder / "course_tests", file, handin, tmp_path)
    got, report = proxied(mode, folder / "course_tests", file, handin, process_backend,
                          python_path)
    assert expected.cases, "the in-process run found no tests"
    assert got.cases == expected.cases, report.stderr[-2000:]
    assert got.exit_code == expected.exit_code
    if bug is None:
        assert set(got.cases.values()) <= {"passed", "PASS"}
    else:
        assert {"failed", "FAIL"} & set(got.cases.values())
    assert report.died is None and report.error is None


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


FORGERIES = {
    # the student's code patches NumPy's comparison in its own process
    "patched_allclose": (
        "import numpy\nnumpy.allclose = lambda *a, **k: True\n"
        "def forward(x):\n    return x * 0\n",
        "import numpy as np\nimport cell\n\n"
        "def test_forward():\n    x = np.ones(3)\n"
        "    assert np.allclose(cell.forward(x), 2 * x)\n"),
    # an answer that claims to equal anything
    "always_equal": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "def forward(x):\n    return Anything()\n",
        "import cell\n\ndef test_forward():\n    assert cell.forward(3) == 6\n"),
    # an answer whose comparison says "all equal" by its own say-so
    "lying_comparison": (
        "class AllTrue:\n    def all(self):\n        return True\n"
        "class Answer:\n    def __eq__(self, other):\n        return AllTrue()\n"
        "def forward(x):\n    return Answer()\n",
        "import numpy as np\nimport cell\n\n"
        "def test_forward():\n    assert (cell.forward(np.ones(3)) == np.full(3, 2.0)).all()\n"),
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_a_student_cannot_forge_what_in_process_forges(
    tmp_path: Path, process_backend: Backend, case: str
) -> None:
    student, course_test = FORGERIES[case]
    handin = _write(tmp_path / "handin", {"cell.py": student})
    course = _write(tmp_path / "course", {"test_cell.py": course_test})
    forged = in_process("pytest", course, "test_cell.py", handin, tmp_path)
    assert set(forged.cases.values()) == {"passed"}  # Gradescope's way: forged
    got, _ = proxied("pytest", course, "test_cell.py", handin, process_backend)
    assert set(got.cases.values()) == {"failed"}


def test_student_output_cannot_pose_as_the_runner_s_pass_lines(
    tmp_path: Path, process_backend: Backend
) -> None:
    handin = _write(tmp_path / "handin", {"cell.py": (
        "import os, sys\nprint('Cell forward: PASS')\nsys.stdout.flush()\nos._exit(0)\n")})
    course = _write(tmp_path / "course", {"runner.py": (
        "import sys\ntry:\n    import cell\n    ok = cell.forward(2) == 4\nexcept Exception:\n"
        "    ok = False\nprint('Cell forward:', 'PASS' if ok else 'FAIL')\n"
        "sys.exit(0 if ok else 1)\n")})
    forged = in_process("script", course, "runner.py", handin, tmp_path)
    assert forged.cases == {"Cell forward": "PASS"} and forged.exit_code == 0
    got, report = proxied("script", course, "runner.py", handin, process_backend)
    assert got.cases == {"Cell forward": "FAIL"} and got.exit_code == 1
    assert report.died is not None


def test_the_test_file_s_exits_and_environment_are_contained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLGRADE_SECRET_KEY", "s3cret")
    handin = _write(tmp_path / "handin", {"cell.py": "def forward(x):\n    return 2 * x\n"})
    course = _write(tmp_path / "course", {
        "test_env.py": (
            "import os\nimport cell\n\n"
            "def test_no_secrets():\n"
            "    assert not any(k.startswith('DLGRADE') for k in os.environ)\n"
            "def test_forward():\n    assert cell.forward(2) == 4\n"
            "def test_writes_stay_in_a_copy():\n    open('scratch.txt', 'w').write('x')\n"),
        "test_exits.py": "import sys\nsys.exit(3)\n",
    })
    got, report = proxied("pytest", course, "test_env.py", handin, LocalBackend())
    assert set(got.cases.values()) == {"passed"}, report.cases
    assert not (course / "scratch.txt").exists()
    exited, report = proxied("pytest", course, "test_exits.py", handin, LocalBackend())
    assert report.error is None and report.exit_code not in (0, None)  # pytest's own status
    assert "passed" not in exited.cases.values()


# ``from cell import *`` in a course's runner script: in-process, the student's module
# rebinds whatever it names in the runner's namespace. Each of these forges the verdict
# in-process; through the proxies the runner keeps its own names.
STAR_RUNNER = (
    "import numpy as np\n\n\n"
    "def reference(x):\n    return 2 * x\n\n\n"
    "from cell import *\n\n\n"
    "def check():\n"
    "    got = forward(np.ones(3))\n"
    "    return bool(isinstance(got, np.ndarray) and np.allclose(got, reference(np.ones(3))))\n"
    "\n\nprint('Cell forward:', 'PASS' if check() else 'FAIL')\n")
STAR_TAKEOVERS = {
    # a builtin the runner calls
    "builtin": "def bool(value=False):\n    return True\n",
    # a library the runner imported before the star import
    "trusted_import": (
        "import numpy\n\nclass Yes:\n    def __getattr__(self, name):\n"
        "        return getattr(numpy, name)\n"
        "    def allclose(self, *args, **kwargs):\n        return True\n\nnp = Yes()\n"),
    # the course's own helper, defined before the star import
    "trusted_helper": "def reference(x):\n    return x * 0\n",
    # the builtins of every function the runner defines afterwards
    "dunder": (
        "import builtins\n\n__all__ = ['forward', '__builtins__']\n"
        "__builtins__ = dict(vars(builtins), bool=lambda value=False: True)\n"),
}


@pytest.mark.parametrize("case", sorted(STAR_TAKEOVERS))
def test_a_star_import_cannot_take_over_the_runner_s_own_names(
    tmp_path: Path, process_backend: Backend, case: str
) -> None:
    student = "def forward(x):\n    return x * 0\n\n\n" + STAR_TAKEOVERS[case]
    handin = _write(tmp_path / "handin", {"cell.py": student})
    course = _write(tmp_path / "course", {"runner.py": STAR_RUNNER})
    forged = in_process("script", course, "runner.py", handin, tmp_path)
    assert forged.cases == {"Cell forward": "PASS"}  # the course's way: forged
    got, report = proxied("script", course, "runner.py", handin, process_backend)
    assert got.cases == {"Cell forward": "FAIL"}, report.stderr[-2000:]
    honest = _write(tmp_path / "honest", {"cell.py": "def forward(x):\n    return 2 * x\n"})
    passed, report = proxied("script", course, "runner.py", honest, process_backend)
    assert passed.cases == {"Cell forward": "PASS"}, report.stderr[-2000:]


def test_a_star_import_binds_only_names_the_importing_code_uses() -> None:
    code = compile("from cell import *\n\ndef test():\n    return RNNCell(mc.answer)\n",
                   "test_cells.py", "exec")
    used = names_used_by(code)
    assert {"RNNCell", "mc", "answer"} <= used
    trusted: dict[str, object] = {"np": object(), "__name__": "test_cells"}
    assert star_import_may_bind("RNNCell", used, trusted)
    for name in ("pytest_plugins", "setup_module", "pytestmark"):  # read by pytest, not the test
        assert not star_import_may_bind(name, used | {"RNNCell"}, trusted)
    for name in ("bool", "isinstance", "print", "np", "__name__", "__builtins__"):
        assert not star_import_may_bind(name, used | {name}, trusted), name
