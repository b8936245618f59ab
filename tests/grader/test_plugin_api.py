"""grader.api, the plug-in interface: interface look-ups that say what is missing, and
dataset registration without a global side effect on other names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader import api, data
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


def test_register_dataset_refuses_a_second_loader_under_a_taken_name() -> None:
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
    del data.LOADERS["api_test_set"]


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
