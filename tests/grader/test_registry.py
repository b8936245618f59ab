"""The check registry: names from spec.toml to trusted check functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import registry
from grader.spec import AssignmentSpec

CHECKS_PY = '''\
from grader.registry import check


@check("course.always_half")
def always_half(ctx):
    return 0.5
'''


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers into a copy, so nothing leaks into the real registry."""
    registry.load_builtin_checks()  # imported into the real registry before copying
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_FOLDER_CHECKS", {})
    monkeypatch.setattr(registry, "_LATEST", {})
    yield


def test_registering_a_check_makes_it_findable() -> None:
    @registry.check("test.one")
    def one(ctx: object) -> None:
        return None

    assert registry.lookup("test.one") is one
    assert "test.one" in registry.known_checks()


def test_registering_the_same_function_again_is_harmless() -> None:
    def one(ctx: object) -> None:
        return None

    registry.check("test.same")(one)
    assert registry.check("test.same")(one) is one


def test_duplicate_registration_raises() -> None:
    registry.check("test.dup")(lambda ctx: None)
    with pytest.raises(ValueError, match="check 'test.dup' is registered twice"):
        registry.check("test.dup")(lambda ctx: 1.0)


def test_builtin_names_cannot_be_taken_over() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        registry.check("torch.module_compare")(lambda ctx: None)


def test_lookup_of_an_unknown_check_lists_the_known_ones() -> None:
    with pytest.raises(KeyError) as caught:
        registry.lookup("torch.nope")
    message = caught.value.args[0]
    assert message.startswith("no check called 'torch.nope'; known: ")
    assert "torch.module_compare" in message
    assert "course.pytest" in message


def test_every_check_named_by_the_builtin_spec_exists(mytorch_spec: AssignmentSpec) -> None:
    own = registry.load_folder_checks(mytorch_spec.folder)  # assignments/mytorch-cnn/checks.py
    assert {test.check for test in mytorch_spec.tests} <= set(own)
    assert "mytorch_cnn.cnn_model" in own  # registered by its networks.py, a helper module
    assert not set(own) & set(registry.known_checks()), "the course's checks are not built in"
    assert registry.known_checks() == sorted(registry.known_checks())


def test_checks_py_run_again_registers_its_helpers_checks_again(
        mytorch_spec: AssignmentSpec) -> None:
    first = registry.load_folder_checks(mytorch_spec.folder)
    registry._FOLDER_CHECKS.clear()  # as in a new process: checks.py runs again
    again = registry.load_folder_checks(mytorch_spec.folder)
    assert set(again) == set(first) and "mytorch_cnn.scanning_mlp" in again


def test_a_folder_module_is_the_one_its_checks_import(mytorch_spec: AssignmentSpec) -> None:
    models = registry.folder_module(mytorch_spec.folder, "models")
    networks = registry.folder_module(mytorch_spec.folder, "networks")
    assert networks.ReferenceCNN is models.ReferenceCNN  # one module, imported once
    assert models.__file__ == str((mytorch_spec.folder / "models.py").resolve())
    with pytest.raises(ModuleNotFoundError, match="nope"):
        registry.folder_module(mytorch_spec.folder, "nope")


def test_load_folder_checks_registers_a_course_check(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS_PY, encoding="utf-8")
    registry.load_folder_checks(tmp_path)
    check = registry.lookup("course.always_half")
    assert check(None) == 0.5  # type: ignore[arg-type]


def test_load_folder_checks_twice_does_not_register_twice(tmp_path: Path) -> None:
    # The runner loads the folder's checks for every handin it grades.
    (tmp_path / "checks.py").write_text(CHECKS_PY, encoding="utf-8")
    registry.load_folder_checks(tmp_path)
    first = registry.lookup("course.always_half")
    registry.load_folder_checks(tmp_path)
    assert registry.lookup("course.always_half") is first


def test_two_folders_may_each_define_one_name(tmp_path: Path) -> None:
    # Two stored versions of one uploaded assignment (or two courses) in one worker:
    # each test finds its own folder's check, and neither version breaks the other.
    for name, fraction in (("a", "0.5"), ("b", "0.25")):
        (tmp_path / name).mkdir()
        source = CHECKS_PY.replace("0.5", fraction)
        (tmp_path / name / "checks.py").write_text(source, encoding="utf-8")
    registry.load_folder_checks(tmp_path / "a")
    registry.load_folder_checks(tmp_path / "b")
    assert registry.lookup("course.always_half", tmp_path / "a")(None) == 0.5  # type: ignore[arg-type]
    assert registry.lookup("course.always_half", tmp_path / "b")(None) == 0.25  # type: ignore[arg-type]


def test_a_folder_cannot_take_over_a_builtin_name(tmp_path: Path) -> None:
    source = CHECKS_PY.replace("course.always_half", "torch.accuracy")
    (tmp_path / "checks.py").write_text(source, encoding="utf-8")
    with pytest.raises(ValueError, match="check 'torch.accuracy' is registered twice"):
        registry.load_folder_checks(tmp_path)
    assert registry.lookup("torch.accuracy").__module__ == "grader.checks.accuracy"


def test_folder_checks_do_not_become_builtins(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS_PY, encoding="utf-8")
    assert set(registry.load_folder_checks(tmp_path)) == {"course.always_half"}
    assert "course.always_half" not in registry.known_checks()


def test_a_folder_without_checks_py_is_fine(tmp_path: Path) -> None:
    before = registry.known_checks()
    registry.load_folder_checks(tmp_path)
    assert registry.known_checks() == before
