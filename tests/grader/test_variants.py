"""Handout variants (grader.variants): spec validation, recognition and application."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import variants
from grader.grade import grade_directory
from grader.spec import SpecError, load_spec
from sandbox.backend import LocalBackend

SPEC = """\
slug = "demo"
title = "Demo"
{variant}

[[tests]]
name = "first"
check = "demo.first"
points = 4
params = {{ a = 1, b = 2 }}

[[tests]]
name = "extra"
check = "demo.extra"
points = 6

[[variants]]
name = "new"
title = "new handout"
recognise = [{{ file = "lib.py", defines = "Extra" }}]
[variants.tests.first]
points = 2
params = {{ b = 3 }}

[[variants]]
name = "old"
drop = ["extra"]
"""

CHECKS = """\
from grader.registry import check

@check("demo.first")
def first(ctx):
    return None if ctx.params == {"a": 1, "b": ctx.params["b"]} else 0.0

@check("demo.extra")
def extra(ctx):
    return None
"""


def folder(tmp_path: Path, variant: str = "") -> Path:
    root = tmp_path / "assignment"
    root.mkdir(exist_ok=True)
    (root / "spec.toml").write_text(SPEC.format(variant=variant))
    (root / "checks.py").write_text(CHECKS)
    return root


def handin(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "handin"
    path.mkdir(exist_ok=True)
    (path / "lib.py").write_text(source)
    return path


def test_each_variant_applies_its_points_params_and_drops(tmp_path: Path) -> None:
    spec = load_spec(folder(tmp_path))
    new, old = spec.with_variant("new"), spec.with_variant("old")
    assert [(t.name, t.points, t.params) for t in new.tests] == [
        ("first", 2, {"a": 1, "b": 3}), ("extra", 6, {})]
    assert [(t.name, t.points) for t in old.tests] == [("first", 4)]
    assert new.variant_title == "new handout" and old.variant_title == "old"
    assert spec.max_score == 8  # the most any version can give


def test_auto_recognises_the_handout_from_the_source(tmp_path: Path) -> None:
    spec = load_spec(folder(tmp_path))
    assert variants.choose(spec, handin(tmp_path, "class Extra:\n    pass\n")) == variants.Choice(
        "new", "recognised because lib.py defines Extra")
    assert variants.choose(spec, handin(tmp_path, "Extra = None  # a name, not a class\n"
                                        )).name == "new"
    fallback = variants.choose(spec, handin(tmp_path, "def other():\n    pass\n"))
    assert fallback == variants.Choice("old", "no other handout version was recognised")
    assert variants.choose(spec, handin(tmp_path, "class Extra(:\n")).name == "old"


def test_a_deployment_pins_its_handout_whatever_the_handin_holds(tmp_path: Path) -> None:
    pinned = load_spec(folder(tmp_path, variant='variant = "old"'))
    choice = variants.choose(pinned, handin(tmp_path, "class Extra:\n    pass\n"))
    assert choice is not None and choice.name == "old"
    assert load_spec(folder(tmp_path)).pinned("old").variant == "old"
    with pytest.raises(SpecError, match="no handout variant 'newest'"):
        load_spec(folder(tmp_path)).pinned("newest")


def test_grading_uses_the_chosen_version_and_says_so(tmp_path: Path) -> None:
    spec = load_spec(folder(tmp_path))
    result = grade_directory(spec, handin(tmp_path, "class Extra:\n    pass\n"), LocalBackend())
    assert [(t.name, t.score) for t in result.tests] == [("first", 2), ("extra", 6)]
    assert result.variant == "new"
    assert result.output == "Graded as the new handout (recognised because lib.py defines Extra)."
    assert any(line.startswith("variant=new") for line in result.staff_log)


@pytest.mark.parametrize(("change", "message"), [
    ('variant = "newest"', "'newest' is neither \"auto\" nor the name"),
    ('[[variants]]\nname = "old"', "variant names must be unique; repeated: old"),
    ('[[variants]]\nname = "x"\ndrop = ["nope"]', "names nope, which is not a test"),
    ('[[variants]]\nname = "x"\ndrop = ["first", "extra"]', "drops every test"),
    ('[[variants]]\nname = "Bad Name"', "variants.2.name"),
])
def test_broken_variants_say_what_to_fix(tmp_path: Path, change: str, message: str) -> None:
    root = folder(tmp_path)
    text = (root / "spec.toml").read_text()
    if change.startswith("variant ="):
        text = text.replace('title = "Demo"\n', f'title = "Demo"\n{change}\n')
    else:
        text += f"\n{change}\n"
    (root / "spec.toml").write_text(text)
    with pytest.raises(SpecError) as raised:
        load_spec(root)
    assert message in str(raised.value)


def test_a_spec_without_variants_is_graded_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    (root / "spec.toml").write_text('slug = "p"\ntitle = "P"\n[[tests]]\nname = "t"\n'
                                    'check = "p.t"\npoints = 1\n')
    spec = load_spec(root)
    assert variants.choose(spec, tmp_path) is None and spec.max_score == 1


OTHER = """
[[other_handouts]]
name = "fall"
recognise = [{ file = "nn/lib.py" }, { file = "lib.py", absent = true }]
message = "Your handin follows the fall handout, which this assignment does not grade."
"""


def test_another_semesters_handin_is_not_graded_and_says_which_it_is(tmp_path: Path) -> None:
    """A homework of another semester is refused with the spec's message (whatever the
    pinned variant), not graded 0 test by test for files it was never asked for."""
    root = folder(tmp_path, variant='variant = "old"')
    (root / "spec.toml").write_text((root / "spec.toml").read_text() + OTHER)
    spec = load_spec(root)
    fall = tmp_path / "fall"
    (fall / "nn").mkdir(parents=True)
    (fall / "nn" / "lib.py").write_text("class Extra:\n    pass\n")
    result = grade_directory(spec, fall, LocalBackend())
    message = ("Your handin follows the fall handout, which this assignment does not grade. "
               "(recognised because nn/lib.py exists and there is no lib.py)")
    assert result.rejected == message and result.score == 0
    assert [(t.name, t.output) for t in result.tests] == [("first", f"Not graded: {message}")]
    assert "other_handout=fall: not graded here" in result.staff_log
    # the same files beside a lib.py of this semester's: graded as usual
    (fall / "lib.py").write_text("class Extra:\n    pass\n")
    assert variants.other_handout(spec, fall) is None
    assert grade_directory(spec, fall, LocalBackend()).rejected is None


def test_a_rule_with_absent_says_nothing_else(tmp_path: Path) -> None:
    root = folder(tmp_path)
    text = OTHER.replace('absent = true', 'absent = true, defines = "Extra"')
    (root / "spec.toml").write_text((root / "spec.toml").read_text() + text)
    with pytest.raises(SpecError, match="absent = true cannot also say defines or lacks"):
        load_spec(root)
