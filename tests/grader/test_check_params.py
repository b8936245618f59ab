"""Typed check params (grader.params): each check's model validates every test's params
when the spec is checked, with a sentence naming the test, the key and the check; the
check reads the validated instance as ``ctx.params``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field

from grader import params, registry
from grader.context import CheckContext
from grader.params import CheckParams, ParamsError, Tolerances, check_params
from grader.spec import AssignmentSpec, SpecError, builtin_assignments, load_spec

BUILTIN = '''\
slug = "typed"
title = "Typed"

[[tests]]
name = "Course tests"
check = "course.pytest"
points = 1
[tests.params]
{params}
'''

FOLDER_CHECKS = '''\
from pydantic import Field

from grader.api import CheckParams, Tolerances, check


class Scaled(Tolerances):
    factor: float = Field(gt=0, description="what the answer is multiplied by")
    trials: int = Field(3, ge=1, description="draws of the input")


@check("typed.scaled", params=Scaled)
def scaled(ctx):
    return None if isinstance(ctx.params, Scaled) else 0.0


@check("typed.untyped")
def untyped(ctx):
    return None if ctx.params.get("anything") == 1 else 0.0
'''

FOLDER = '''\
slug = "typed"
title = "Typed"

[[tests]]
name = "Scaled"
check = "typed.scaled"
points = 1
[tests.params]
{params}
'''

SCALED_KEYS = "factor, gradients_atol, gradients_rtol, trials, values_atol, values_rtol"


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    registry.load_builtin_checks()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_FOLDER_CHECKS", {})
    monkeypatch.setattr(registry, "_LATEST", {})
    yield


def spec_in(folder: Path, text: str, checks: str | None = None) -> AssignmentSpec:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(text, encoding="utf-8")
    if checks is not None:
        (folder / "checks.py").write_text(checks, encoding="utf-8")
    return load_spec(folder)


def problems_of(folder: Path, text: str, checks: str | None = None) -> list[str]:
    return params.problems(spec_in(folder, text, checks))


# -------------------------------------------------------------------------- a built-in check


def test_a_builtin_check_with_fitting_params_loads(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, BUILTIN.format(params='file = "test_a.py"\nselect = ["x*"]'))
    assert check_params(spec) is spec


def test_a_builtin_check_names_an_unknown_key_and_what_it_takes(tmp_path: Path) -> None:
    found = problems_of(tmp_path, BUILTIN.format(params='file = "test_a.py"\nselct = ["x"]'))
    assert found == [
        'tests.0 ("Course tests", check "course.pytest"): params.selct is not a parameter of '
        "this check (did you mean select?); it takes: args, file, folder, modules, partial, "
        "plugins, run_timeout_s, select"]


def test_a_builtin_check_names_a_wrong_type(tmp_path: Path) -> None:
    found = problems_of(tmp_path, BUILTIN.format(params='file = "test_a.py"\npartial = [1]'))
    assert found == [
        'tests.0 ("Course tests", check "course.pytest"): params.partial: Input should be a '
        "valid boolean (got [1])"]


def test_a_builtin_check_names_a_missing_required_key(tmp_path: Path) -> None:
    found = problems_of(tmp_path, BUILTIN.format(params='select = ["x"]'))
    assert found == [
        'tests.0 ("Course tests", check "course.pytest"): params.file is required by this '
        "check and missing (the course's test file, relative to folder)"]


def test_check_params_raises_one_spec_error_naming_the_file(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, BUILTIN.format(params='select = ["x"]'))
    with pytest.raises(SpecError) as caught:
        check_params(spec)
    assert str(caught.value) == (
        f"{tmp_path.resolve() / 'spec.toml'}:\n"
        '  tests.0 ("Course tests", check "course.pytest"): params.file is required by this '
        "check and missing (the course's test file, relative to folder)")


# -------------------------------------------------------------------------- a folder's check


def test_a_folder_check_with_fitting_params_loads(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, FOLDER.format(params="factor = 2\nvalues_rtol = 1e-3"),
                   FOLDER_CHECKS)
    assert check_params(spec) is spec


def test_a_folder_check_names_an_unknown_key(tmp_path: Path) -> None:
    found = problems_of(tmp_path, FOLDER.format(params="factor = 2\nvlaues_rtol = 1e-3"),
                        FOLDER_CHECKS)
    assert found == [
        'tests.0 ("Scaled", check "typed.scaled"): params.vlaues_rtol is not a parameter of '
        f"this check (did you mean values_rtol?); it takes: {SCALED_KEYS}"]


def test_a_folder_check_names_a_wrong_type(tmp_path: Path) -> None:
    found = problems_of(tmp_path, FOLDER.format(params='factor = 2\ntrials = "many"'),
                        FOLDER_CHECKS)
    assert found == [
        'tests.0 ("Scaled", check "typed.scaled"): params.trials: Input should be a valid '
        "integer, unable to parse string as an integer (got 'many')"]


def test_a_folder_check_names_a_value_out_of_range(tmp_path: Path) -> None:
    found = problems_of(tmp_path, FOLDER.format(params="factor = -1"), FOLDER_CHECKS)
    assert found == [
        'tests.0 ("Scaled", check "typed.scaled"): params.factor: Input should be greater '
        "than 0 (got -1)"]


def test_a_folder_check_names_a_missing_required_key(tmp_path: Path) -> None:
    found = problems_of(tmp_path, FOLDER.format(params="trials = 2"), FOLDER_CHECKS)
    assert found == [
        'tests.0 ("Scaled", check "typed.scaled"): params.factor is required by this check '
        "and missing (what the answer is multiplied by)"]


def test_the_check_reads_the_validated_model_and_an_untyped_one_a_dict(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, FOLDER.format(params="factor = 2") + '''
[[tests]]
name = "Untyped"
check = "typed.untyped"
points = 1
params = { anything = 1 }
''', FOLDER_CHECKS)
    registry.load_folder_checks(spec.folder)
    typed, untyped = (CheckContext(spec, test, np.random.default_rng(0), _no_session)
                      for test in spec.tests)
    assert typed.params.factor == 2.0 and typed.params.trials == 3
    assert typed.tolerance("values").rtol == Tolerances().values_rtol
    assert untyped.params == {"anything": 1}
    for ctx, test in ((typed, spec.tests[0]), (untyped, spec.tests[1])):
        assert registry.lookup(test.check, spec.folder)(ctx) is None


def test_params_that_do_not_fit_are_a_params_error_when_read(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, FOLDER.format(params="factor = 2\nextra = 1"), FOLDER_CHECKS)
    registry.load_folder_checks(spec.folder)
    ctx = CheckContext(spec, spec.tests[0], np.random.default_rng(0), _no_session)
    with pytest.raises(ParamsError, match="params.extra is not a parameter of this check"):
        ctx.params  # noqa: B018


def test_a_model_is_strict_and_frozen() -> None:
    class Model(CheckParams):
        n: int = Field(1, description="n")

    assert Model.model_config["extra"] == "forbid"
    with pytest.raises(ValueError, match="frozen"):
        Model().n = 2  # type: ignore[misc]


def _no_session() -> object:
    raise AssertionError("no sandbox in these tests")


# -------------------------------------------------------------------------- defaults, versions


def test_a_defaults_key_goes_only_to_the_checks_that_take_it(tmp_path: Path) -> None:
    text = '''\
slug = "typed"
title = "Typed"
[defaults.params]
values_rtol = 1e-3
file = "test_a.py"

[[tests]]
name = "Scaled"
check = "typed.scaled"
points = 1
params = { factor = 2 }

[[tests]]
name = "Course tests"
check = "course.pytest"
points = 1
'''
    spec = spec_in(tmp_path, text, FOLDER_CHECKS)
    assert check_params(spec) is spec
    registry.load_folder_checks(spec.folder)
    scaled, course = (params.typed(test, spec.folder) for test in spec.tests)
    assert scaled.values_rtol == 1e-3 and course.file == "test_a.py"


def test_a_defaults_key_no_check_takes_is_named(tmp_path: Path) -> None:
    text = FOLDER.format(params="factor = 2").replace(
        "[[tests]]", "[defaults.params]\nvalues_rtl = 1e-3\n\n[[tests]]", 1)
    assert problems_of(tmp_path, text, FOLDER_CHECKS) == [
        "defaults.params.values_rtl is not a parameter of any test's check (did you mean "
        "values_rtol?)"]


def test_a_handout_version_s_params_are_validated_too(tmp_path: Path) -> None:
    text = FOLDER.format(params="factor = 2") + '''
[[variants]]
name = "spring"
[variants.tests."Scaled"]
params = { factor = "double" }
'''
    assert problems_of(tmp_path, text, FOLDER_CHECKS) == [
        'tests.0 ("Scaled", check "typed.scaled", handout version "spring"): params.factor: '
        "Input should be a valid number, unable to parse string as a number (got 'double')"]


def test_an_unknown_check_is_named(tmp_path: Path) -> None:
    text = FOLDER.format(params="factor = 2").replace("typed.scaled", "typed.scaeld")
    assert problems_of(tmp_path, text, FOLDER_CHECKS) == [
        "Test 'Scaled' uses check 'typed.scaeld', which is neither built in nor defined in "
        "checks.py."]


# -------------------------------------------------------------------------- a wrapping check

WRAPPING = FOLDER_CHECKS + '''

class Gate(CheckParams):
    needs: str = Field(description="a word")
    then: str = Field(description="the check to run next")


@check("typed.gate", params=Gate, wraps="then")
def gate(ctx):
    return ctx.run_wrapped()
'''


def test_a_wrapping_check_validates_the_rest_against_the_wrapped_one(tmp_path: Path) -> None:
    text = FOLDER.format(params='needs = "x"\nthen = "typed.scaled"\nfactor = 2\ntrails = 1')
    text = text.replace('check = "typed.scaled"', 'check = "typed.gate"')
    assert problems_of(tmp_path, text, WRAPPING) == [
        'tests.0 ("Scaled", check "typed.gate"): params.trails is not a parameter of this '
        f"check (did you mean trials?); it takes: needs, then, and for typed.scaled: "
        f"{SCALED_KEYS}"]
    fixed = spec_in(tmp_path, text.replace("trails", "trials"), WRAPPING)
    registry.load_folder_checks(fixed.folder)
    ctx = CheckContext(fixed, fixed.tests[0], np.random.default_rng(0), _no_session)
    assert ctx.params.needs == "x"
    assert registry.lookup("typed.gate", fixed.folder)(ctx) is None  # Scaled reached


# -------------------------------------------------------------------------- the built-ins


@pytest.mark.parametrize("slug", sorted(builtin_assignments()))
def test_every_builtin_spec_and_handout_version_fits_its_checks(slug: str) -> None:
    folder = builtin_assignments()[slug]
    for path in sorted(folder.glob("spec*.toml")):
        spec = load_spec(folder, path.name)
        assert params.problems(spec) == [], path.name
        for version in [spec, *(spec.with_variant(v.name) for v in spec.variants)]:
            for test in version.tests:
                params.typed(test, folder)  # each reads as its check declared it
