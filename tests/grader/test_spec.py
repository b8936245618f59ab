"""Assignment specs: the built-in one loads; broken ones say where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.spec import (
    BUILTIN_ROOT,
    AssignmentSpec,
    SpecError,
    builtin_assignments,
    load_spec,
    resolve_assignment,
)

MINIMAL = """\
slug = "demo"
title = "Demo"

[[tests]]
name = "first"
check = "demo.first"
points = 4

[[tests]]
name = "second"
check = "demo.second"
points = 6
"""


def write_spec(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(text, encoding="utf-8")
    return folder


def spec_error(folder: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(folder)
    return str(caught.value)


def test_builtin_spec_loads_with_its_tests_and_points(mytorch_spec: AssignmentSpec) -> None:
    assert mytorch_spec.slug == "mytorch-cnn"
    assert len(mytorch_spec.tests) == 10  # every test of both handout versions
    assert mytorch_spec.max_score == 100
    assert [len(mytorch_spec.with_variant(v).tests) for v in ("spring-2020", "spring-2021")] == [
        8, 10]
    assert mytorch_spec.variant == "auto"
    names = [t.name for t in mytorch_spec.tests]
    assert len(set(names)) == len(names)
    assert names[0] == "Multiple choice" and names[-1] == "CNN model"
    assert {t.visibility for t in mytorch_spec.tests} == {"visible"}
    assert mytorch_spec.folder == BUILTIN_ROOT / "mytorch-cnn"
    assert mytorch_spec.policy.forbidden_imports == ("torch", "tensorflow", "jax", "keras")
    assert mytorch_spec.policy.allow_in == ("hw2/hw2.py",)
    assert mytorch_spec.submission.python_path == ("mytorch", "hw2", "")
    assert "mytorch/conv.py" in mytorch_spec.submission.required_files
    assert mytorch_spec.tests[-1].timeout_s == 180


def test_builtin_assignments_lists_mytorch() -> None:
    builtins = builtin_assignments()
    assert "mytorch-cnn" in builtins
    assert all((folder / "spec.toml").is_file() for folder in builtins.values())


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, MINIMAL))
    assert spec.max_score == 10
    assert spec.folder == tmp_path.resolve()
    assert spec.tests[0].visibility == "visible"
    assert spec.tests[0].timeout_s == 60
    assert spec.sandbox.memory_mb == 4096
    assert spec.public_data is None
    (tmp_path / "public_data").mkdir()
    assert spec.public_data == tmp_path.resolve() / "public_data"


def test_missing_spec_toml_names_the_folder(tmp_path: Path) -> None:
    message = spec_error(tmp_path)
    assert message == f"{tmp_path}: no spec.toml found (every assignment folder needs one)"


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    write_spec(tmp_path, 'slug = "demo"\ntitle = \n')
    message = spec_error(tmp_path)
    assert message.startswith(f"{tmp_path / 'spec.toml'}: not valid TOML: ")
    assert "line 2" in message


def test_non_utf8_spec_is_reported_as_invalid_toml(tmp_path: Path) -> None:
    tmp_path.joinpath("spec.toml").write_bytes(b'title = "\xff"\n')
    assert "not valid TOML" in spec_error(tmp_path)


@pytest.mark.parametrize(
    ("edit", "location", "reason"),
    [
        (("points = 6", "points = 6\npointz = 1"), "tests.1.pointz", "Extra inputs are not"),
        (('title = "Demo"', 'title = "Demo"\ncolour = "red"'), "colour", "Extra inputs"),
        (("points = 6", "points = -1"), "tests.1.points", "greater than or equal to 0"),
        (('slug = "demo"', 'slug = "Demo Course"'), "slug", "should match pattern"),
        (('name = "second"', 'name = "first"'), "tests", "repeated: first"),
        (('name = "second"', 'name = ""'), "tests.1.name", "at least 1 character"),
        (("points = 4", 'points = 4\nvisibility = "secret"'), "tests.0.visibility", "Input should"),
        (('title = "Demo"', 'title = "Demo"\n[sandbox]\nmemory_mb = 1'), "sandbox.memory_mb",
         "greater than or equal to 256"),
    ],
    ids=["unknown-test-key", "unknown-top-key", "negative-points", "bad-slug",
         "duplicate-names", "empty-name", "bad-visibility", "tiny-memory"],
)
def test_invalid_fields_name_the_file_and_the_location(
    tmp_path: Path, edit: tuple[str, str], location: str, reason: str
) -> None:
    write_spec(tmp_path, MINIMAL.replace(*edit))
    message = spec_error(tmp_path)
    first, *details = message.splitlines()
    assert first == f"{tmp_path / 'spec.toml'}:"
    assert len(details) == 1, message
    assert details[0].startswith(f"  {location}: ")
    assert reason in details[0]


@pytest.mark.parametrize("bad", ["/etc/passwd", "../secret.py", "mytorch/../../x.py"])
def test_test_file_patterns_must_be_relative(tmp_path: Path, bad: str) -> None:
    write_spec(tmp_path, MINIMAL.replace("points = 6", f"points = 6\nfiles = ['ok.py', '{bad}']"))
    message = spec_error(tmp_path)
    assert message.splitlines()[1:] == [
        f"  tests.1.files: Value error, {bad!r}: file patterns must be relative to the handin"
    ]


@pytest.mark.parametrize("bad", ["/abs.py", "../up.py"])
def test_required_files_must_be_relative(tmp_path: Path, bad: str) -> None:
    table = f'[submission]\nrequired_files = ["{bad}"]'
    text = MINIMAL.replace('title = "Demo"', f'title = "Demo"\n{table}')
    write_spec(tmp_path, text)
    lines = spec_error(tmp_path).splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("  submission.required_files: Value error, ")
    assert bad in lines[1]


def test_relative_patterns_with_dots_in_names_are_fine(tmp_path: Path) -> None:
    text = MINIMAL.replace("points = 6", "points = 6\nfiles = ['a..b.py', './hw2/*.py']")
    assert load_spec(write_spec(tmp_path, text)).tests[1].files == ("a..b.py", "./hw2/*.py")


def test_empty_tests_is_an_error(tmp_path: Path) -> None:
    write_spec(tmp_path, 'slug = "demo"\ntitle = "Demo"\ntests = []\n')
    lines = spec_error(tmp_path).splitlines()
    assert lines[1:] == ["  tests: Value error, an assignment needs at least one [[tests]] table"]


def test_missing_tests_is_an_error(tmp_path: Path) -> None:
    write_spec(tmp_path, 'slug = "demo"\ntitle = "Demo"\n')
    assert spec_error(tmp_path).splitlines()[1:] == ["  tests: Field required"]


def test_an_invalid_only_test_is_reported_once_not_as_an_empty_list(tmp_path: Path) -> None:
    write_spec(tmp_path, 'slug = "demo"\ntitle = "Demo"\n[[tests]]\nname = "a"\ncheck = "c"\n')
    assert spec_error(tmp_path).splitlines()[1:] == ["  tests.0.points: Field required"]


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = MINIMAL.replace("points = 4", "points = -4").replace('slug = "demo"', 'slug = "-x"')
    write_spec(tmp_path, text)
    locations = [line.split(":")[0].strip() for line in spec_error(tmp_path).splitlines()[1:]]
    assert locations == ["slug", "tests.0.points"]


def test_folder_in_the_toml_cannot_redirect_the_spec(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, 'folder = "/etc"\n' + MINIMAL))
    assert spec.folder == tmp_path.resolve()


def test_resolve_builtin_by_slug() -> None:
    assert resolve_assignment("mytorch-cnn").max_score == 100


def test_resolve_unknown_name_lists_the_builtins() -> None:
    with pytest.raises(SpecError) as caught:
        resolve_assignment("no-such-assignment")
    message = str(caught.value)
    assert message.startswith("no assignment called 'no-such-assignment' (built-in: ")
    assert "mytorch-cnn" in message


def test_resolve_a_folder_path(tmp_path: Path) -> None:
    folder = write_spec(tmp_path / "my-course", MINIMAL)
    spec = resolve_assignment(str(folder))
    assert spec.slug == "demo"
    assert spec.folder == folder.resolve()


def test_resolve_a_folder_without_spec_says_so(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no spec.toml found"):
        resolve_assignment(str(tmp_path))


# ------------------------------------------------------------------------------ leaderboard

LEADERBOARD = """
[[leaderboard]]
name = "Accuracy"
test = "second"
metric = "accuracy"
"""


def test_a_leaderboard_entry_names_a_test_and_defaults_to_desc(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path / "demo", MINIMAL + LEADERBOARD))
    (entry,) = spec.leaderboard
    assert (entry.name, entry.test, entry.metric, entry.order) == (
        "Accuracy", "second", "accuracy", "desc")


def test_mlp_cifar10_puts_held_out_accuracy_on_the_leaderboard() -> None:
    spec = resolve_assignment("mlp-cifar10")
    (entry,) = spec.leaderboard
    assert entry.test == spec.tests[-1].name and spec.tests[-1].check == "torch.accuracy"
    assert (entry.metric, entry.order) == ("accuracy", "desc")


@pytest.mark.parametrize("extra, message", [
    (LEADERBOARD.replace('"second"', '"third"'),
     "  (top level): Value error, leaderboard.0.test: 'third' is not the name of a test in "
     "this assignment"),
    (LEADERBOARD + LEADERBOARD,
     "  (top level): Value error, leaderboard names must be unique; repeated: Accuracy"),
    (LEADERBOARD + 'order = "up"\n',
     "  leaderboard.0.order: Input should be 'asc' or 'desc'"),
    (LEADERBOARD.replace('metric = "accuracy"', ""), "  leaderboard.0.metric: Field required"),
])
def test_a_broken_leaderboard_says_what_to_fix(tmp_path: Path, extra: str, message: str) -> None:
    folder = write_spec(tmp_path / "demo", MINIMAL + extra)
    assert spec_error(folder).splitlines()[1:] == [message]


def test_runtime_and_import_path_are_read(tmp_path: Path) -> None:
    text = MINIMAL.replace('title = "Demo"\n', 'title = "Demo"\n[runtime]\nnumpy = "1.26.4"\n'
                           '[submission]\npython_path = ["", "mytorch"]\n')
    spec = load_spec(write_spec(tmp_path, text))
    assert spec.runtime is not None and (spec.runtime.numpy, spec.runtime.torch) == (
        "1.26.4", None)
    assert spec.submission.python_path == ("", "mytorch")
    assert load_spec(write_spec(tmp_path / "plain", MINIMAL)).runtime is None


@pytest.mark.parametrize("bad", ["../up", "/abs", "a/../b", "./x", "a//b", "a\\\\b"])
def test_import_path_folders_stay_inside_the_handin(tmp_path: Path, bad: str) -> None:
    text = MINIMAL.replace('title = "Demo"\n',
                           f'title = "Demo"\n[submission]\npython_path = ["{bad}"]\n')
    assert "python_path" in spec_error(write_spec(tmp_path, text))


@pytest.mark.parametrize("bad", ['numpy = ">=1.26"', 'numpy = "1.26.4"\ntorch = "latest"',
                                 'torch = "2.13.0"', 'numpy = "1.26.4"\nscipy = "1.0"'])
def test_runtime_versions_are_exact_releases(tmp_path: Path, bad: str) -> None:
    text = MINIMAL.replace('title = "Demo"\n', f'title = "Demo"\n[runtime]\n{bad}\n')
    assert "runtime" in spec_error(write_spec(tmp_path, text))
