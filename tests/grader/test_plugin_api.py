"""grader.api, the plug-in interface: interface look-ups that say what is missing, and
dataset registration without a global side effect on other names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader import api, data, datasets
from grader.grade import grade_directory
from grader.spec import load_spec
from sandbox.backend import LocalBackend

SPEC = '''slug = "api-hw"
title = "API"
[[tests]]
name = "Construct"
check = "api.construct"
points = 1
[[tests]]
name = "Raises"
check = "api.raises"
points = 1
[[tests]]
name = "Missing module"
check = "api.missing_module"
points = 1
'''

CHECKS = '''from grader.api import check, construct, student_class, student_module
from .helpers import ARGS


@check("api.construct")
def construct_check(ctx):
    construct(ctx, student_class(ctx, "layer", "Layer"), *ARGS)


@check("api.raises")
def raises(ctx):
    student_class(ctx, "layer", "Layer").new(-1)


@check("api.missing_module")
def missing(ctx):
    student_module(ctx, "nowhere")
'''

LAYER = '''class Layer:
    def __init__(self, size):
        if size < 0:
            raise ValueError("size must be positive")
'''


def _grade(tmp_path: Path, layer: str) -> dict[str, str]:
    folder = tmp_path / "api-hw"
    (folder / "handin").mkdir(parents=True)
    (folder / "spec.toml").write_text(SPEC, encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS, encoding="utf-8")
    (folder / "helpers.py").write_text("ARGS = (3, 4)\n", encoding="utf-8")
    (folder / "handin/layer.py").write_text(layer, encoding="utf-8")
    result = grade_directory(load_spec(folder), folder / "handin", LocalBackend())
    return {t.name: t.output for t in result.tests}


def test_a_wrong_signature_and_a_missing_module_are_named_not_raised(tmp_path: Path) -> None:
    messages = _grade(tmp_path, LAYER)
    assert messages["Construct"].startswith("layer.Layer(3, 4) does not match the "
                                            "assignment's signature")
    assert messages["Raises"].startswith("Your code raised ValueError")
    assert "size must be positive" in messages["Raises"]
    assert messages["Missing module"].startswith("Your handin has no module nowhere")


def test_a_missing_class_is_named(tmp_path: Path) -> None:
    messages = _grade(tmp_path, "class Other:\n    pass\n")
    assert messages["Construct"].startswith("Your layer has no Layer")


def test_register_dataset_refuses_a_second_loader_under_a_taken_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "_PROCESS", {})
    def loader() -> data.Dataset:
        raise AssertionError("not loaded in this test")

    def other() -> data.Dataset:
        raise AssertionError("not loaded in this test")

    api.register_dataset("api_test_set", loader)
    api.register_dataset("api_test_set", loader)  # the same loader again: fine
    with pytest.raises(ValueError, match="already registered"):
        api.register_dataset("api_test_set", other)
    with pytest.raises(ValueError, match="already registered"):
        api.register_dataset("digits", loader)
    assert datasets.known()["api_test_set"] is loader


def test_expect_array_is_the_context_s_comparison() -> None:
    assert api.compare_array("x", np.ones(2), np.ones(2), api.VALUES) is None


def test_built_in_checks_get_the_same_mismatch_sentences() -> None:
    from grader.interface import mismatch
    from sandbox.session import StudentException

    no_class = StudentException("AttributeError", "module 'conv' has no attribute 'Conv1d'",
                                "AttributeError: ...\n", "reading conv.Conv1d")
    assert mismatch(no_class) == ("Your conv has no Conv1d (the assignment's interface asks "
                                  "for conv.Conv1d).")
    no_module = StudentException("ModuleNotFoundError", "No module named 'mytorch'",
                                 '  File "<frozen importlib._bootstrap>", line 1\n',
                                 "import mytorch.conv")
    assert mismatch(no_module).startswith("Your handin has no module mytorch.conv")
    signature = StudentException("TypeError", "__init__() takes 2 positional arguments",
                                 "TypeError: ...\n", "conv.Conv1d()")
    assert mismatch(signature).startswith("conv.Conv1d() does not match")
    inside = StudentException("AttributeError", "'NoneType' object has no attribute 'x'",
                              '  File "/submission/conv.py", line 3, in forward\n',
                              "reading conv.Conv1d")
    assert mismatch(inside) is None


COURSE_DATASET = '''
import numpy as np
from grader.api import register_dataset
from grader.data import Dataset


def loader():
    x = np.full((2, 1), {value}, dtype=np.float32)
    return Dataset("course_set", x, np.arange(2), x, np.arange(2), 2)


register_dataset("course_set", loader)
'''


def _course_folder(root: Path, name: str, checks: str | None) -> Path:
    folder = root / name
    folder.mkdir()
    if checks is not None:
        (folder / "checks.py").write_text(checks)
    return folder


def test_a_dataset_a_folder_registers_is_that_folder_s_own(tmp_path: Path) -> None:
    """Two assignments may register the same name with their own loaders, and one that
    registers nothing does not see either: no registration changes another folder."""
    from grader.registry import load_folder_checks

    first = _course_folder(tmp_path, "first", COURSE_DATASET.format(value=1.0))
    second = _course_folder(tmp_path, "second", COURSE_DATASET.format(value=2.0))
    plain = _course_folder(tmp_path, "plain", None)
    load_folder_checks(first)
    load_folder_checks(second)
    assert datasets.load("course_set", first).x_train[0, 0] == 1.0
    assert datasets.load("course_set", second).x_train[0, 0] == 2.0
    for elsewhere in (plain, None):
        assert "course_set" not in datasets.known(elsewhere)
        with pytest.raises(data.DataError, match="no dataset called 'course_set'"):
            datasets.load("course_set", elsewhere)


def test_a_folder_cannot_replace_a_built_in_dataset(tmp_path: Path) -> None:
    from grader.registry import load_folder_checks

    folder = _course_folder(tmp_path, "taker", COURSE_DATASET.format(value=0.0).replace(
        'register_dataset("course_set"', 'register_dataset("digits"'))
    with pytest.raises(ValueError, match="'digits' is already registered"):
        load_folder_checks(folder)
    assert datasets.known(folder)["digits"] is data.digits


def test_mlp_cifar10_s_stand_in_is_registered_for_its_folder_only(tmp_path: Path) -> None:
    from grader.registry import load_folder_checks
    from grader.spec import builtin_assignments

    pytest.importorskip("torch")
    folders = builtin_assignments()
    load_folder_checks(folders["mlp-cifar10"])
    assert "mnist5k_rgb32" in datasets.known(folders["mlp-cifar10"])
    for slug, folder in folders.items():
        if slug != "mlp-cifar10":
            load_folder_checks(folder)
            assert "mnist5k_rgb32" not in datasets.known(folder), slug
