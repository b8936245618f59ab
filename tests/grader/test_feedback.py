"""grader/feedback.py and its use by the runner: a SyntaxError is reported once with the
student's file, line and caret; tracebacks lose importlib frames and sandbox paths."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.feedback import clean_traceback, syntax_errors
from grader.grade import grade_directory
from grader.spec import load_spec
from sandbox.backend import LocalBackend

ASSIGNMENT = Path(__file__).resolve().parents[2] / "assignments/mytorch-cnn"


def test_syntax_error_names_file_line_and_caret(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "ok.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "bad.py").write_text("def f(x)\n    return x\n")
    found = syntax_errors(tmp_path, ["pkg/ok.py", "pkg/bad.py", "notes.txt"])
    assert list(found) == ["pkg/bad.py"]
    message = found["pkg/bad.py"]
    assert message.startswith('  File "pkg/bad.py", line 1')
    assert "    def f(x)\n" in message and "^" in message
    assert message.splitlines()[-1].startswith("SyntaxError: expected ':'")
    assert str(tmp_path) not in message


def test_clean_traceback_drops_importlib_and_sandbox_paths() -> None:
    text = ('  File "/sandbox/handin/hw2/hw2.py", line 3, in <module>\n'
            "    from mytorch.conv import Conv1D\n"
            '  File "<frozen importlib._bootstrap>", line 1176, in _find_and_load\n'
            '  File "<frozen importlib._bootstrap_external>", line 940, in exec_module\n'
            '  File "/opt/runtime/lib/python3.11/site-packages/numpy/core/numeric.py", '
            "line 9, in f\n"
            "    return g()\n"
            "ModuleNotFoundError: No module named 'mytorch.conv'\n")
    cleaned = clean_traceback(text, ["hw2/hw2.py", "mytorch/conv.py"])
    assert "importlib" not in cleaned and "/sandbox" not in cleaned and "/opt" not in cleaned
    assert '  File "hw2/hw2.py", line 3, in <module>' in cleaned
    assert '  File "…/numpy/core/numeric.py", line 9, in f' in cleaned
    assert cleaned.endswith("No module named 'mytorch.conv'")


def test_a_syntax_error_is_shown_once_and_its_tests_are_not_run(tmp_path: Path) -> None:
    handin = tmp_path / "handin"
    shutil.copytree(ASSIGNMENT / "solution", handin)
    conv = handin / "mytorch" / "conv.py"
    lines = conv.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("def forward"))
    lines[at] = lines[at].rstrip().rstrip(":")  # the colon forgotten
    conv.write_text("\n".join(lines) + "\n")
    spec = load_spec(ASSIGNMENT)
    result = grade_directory(spec, handin, LocalBackend(), seed=1)
    assert result.output.count('File "mytorch/conv.py"') == 1
    assert f"line {at + 1}" in result.output and "^" in result.output
    failed = [t for t in result.tests if t.score < t.max_score]
    assert failed and all("mytorch/conv.py does not compile" in t.output for t in failed)
    assert not any("importlib" in t.output or str(handin) in t.output for t in result.tests)
    passed = [t.name for t in result.tests if t.score == t.max_score]
    assert "Multiple choice" in passed  # mc.py does not import conv.py
