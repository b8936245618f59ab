"""[defaults] laid under every test, and [submission] python_path validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.spec import SpecError, load_spec

SPEC = '''slug = "defaults-hw"
title = "Defaults"
[submission]
python_path = ["", "mytorch"]
[defaults]
timeout_s = 30
visibility = "hidden"
[defaults.params]
values_rtol = 1e-3
module = "a"
[[tests]]
name = "Inherits"
check = "c.one"
points = 1
[[tests]]
name = "Overrides"
check = "c.two"
points = 1
timeout_s = 5
visibility = "visible"
params = { module = "b" }
'''


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "spec.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_lie_under_each_test_and_its_own_keys_win(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, SPEC))
    inherits, overrides = spec.tests
    assert inherits.timeout_s == 30 and inherits.visibility == "hidden"
    assert inherits.params == {"values_rtol": 1e-3, "module": "a"}
    assert overrides.timeout_s == 5 and overrides.visibility == "visible"
    assert overrides.params == {"values_rtol": 1e-3, "module": "b"}
    assert spec.submission.python_path == ("", "mytorch")


def test_a_misspelt_default_and_an_escaping_path_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="timeout"):
        load_spec(_write(tmp_path, SPEC.replace("timeout_s = 30", "timeout = 30")))
    with pytest.raises(SpecError, match="relative to the handin"):
        load_spec(_write(tmp_path, SPEC.replace('"mytorch"]', '"../x"]')))


def test_another_spec_file_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "spec-other.toml").write_text(SPEC.replace("Defaults", "Other"), "utf-8")
    assert load_spec(tmp_path, "spec-other.toml").title == "Other"
    with pytest.raises(SpecError, match="no spec-none.toml"):
        load_spec(tmp_path, "spec-none.toml")
