"""compare_array, layer by layer: present -> type -> shape -> dtype -> finite -> allclose."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.compare import GRADIENTS, VALUES, Mismatch, Tolerance, compare_array, describe

EXPECTED = np.arange(6, dtype=np.float64).reshape(2, 3)
WANTED = "numpy.ndarray float64 of shape (2, 3)"


def mismatch(got: object, expected: np.ndarray = EXPECTED, **kwargs: object) -> Mismatch:
    result = compare_array("y", got, expected, **kwargs)  # type: ignore[arg-type]
    assert result is not None, "expected a mismatch"
    return result


class Tagged:
    """Stands in for a sandbox Remote: only ``type_name`` is known on this side."""

    type_name = "mytorch.conv.Conv1D"


class MyArray(np.ndarray):
    pass


# present


def test_none_is_reported_as_missing_with_the_expected_type() -> None:
    result = mismatch(None)
    assert result.layer == "present"
    assert result.message == f"y is None: expected {WANTED}. Did you forget to return it?"


# type


@pytest.mark.parametrize(
    ("got", "name"),
    [
        (EXPECTED.tolist(), "list"),
        (1.5, "float"),
        (np.float64(1.5), "float64"),
        ("text", "str"),
        (Tagged(), "Conv1D"),
        (EXPECTED.view(MyArray), "MyArray"),
        (np.ma.masked_array(EXPECTED), "MaskedArray"),
    ],
    ids=["list", "float", "numpy-scalar", "str", "remote", "subclass", "masked"],
)
def test_wrong_type_names_what_was_got(got: object, name: str) -> None:
    result = mismatch(got)
    assert result.layer == "type"
    assert result.message == f"y: expected {WANTED}, got {name}"


def test_describe_keeps_the_short_remote_name_and_describes_plain_arrays() -> None:
    assert describe(Tagged()) == "Conv1D"
    assert describe(np.zeros((4,), dtype=np.int32)) == "numpy.ndarray int32 of shape (4,)"
    assert describe(None) == "None"


# shape


@pytest.mark.parametrize(
    "shape", [(3,), (1, 3), (2, 1), (3, 2), (2, 3, 1), (6,), ()], ids=str
)
def test_every_other_shape_fails_even_when_it_broadcasts(shape: tuple[int, ...]) -> None:
    got = np.zeros(shape)
    result = mismatch(got)
    assert result.layer == "shape"
    assert result.message == f"y: shape {shape} != expected (2, 3)"


def test_broadcastable_shape_with_equal_values_still_fails() -> None:
    # np.allclose(row, EXPECTED_rows) would say True: the shape layer must stop it.
    expected = np.ones((2, 3))
    assert np.allclose(np.ones(3), expected)
    assert mismatch(np.ones(3), expected).layer == "shape"
    assert mismatch(np.ones((1, 3)), expected).layer == "shape"


def test_zero_dimensional_arrays() -> None:
    expected = np.array(2.0)
    assert compare_array("s", np.array(2.0), expected) is None
    bad = compare_array("s", np.array(3.0), expected)
    assert bad is not None and bad.layer == "values"
    assert "at []" in bad.message
    wrong = compare_array("s", np.array([2.0]), expected)
    assert wrong == Mismatch("shape", "s: shape (1,) != expected ()")
    scalar = compare_array("s", 2.0, expected)
    assert scalar == Mismatch("type", "s: expected numpy.ndarray float64 of shape (), got float")


def test_empty_arrays_match_and_other_empty_shapes_do_not() -> None:
    assert compare_array("e", np.zeros((0, 3)), np.zeros((0, 3))) is None
    result = compare_array("e", np.zeros((3, 0)), np.zeros((0, 3)))
    assert result == Mismatch("shape", "e: shape (3, 0) != expected (0, 3)")


# dtype


@pytest.mark.parametrize(
    ("got", "dtype"),
    [
        (EXPECTED.astype(np.complex128), "complex128"),
        (EXPECTED.astype(object), "object"),
        (EXPECTED.astype(str), "<U32"),
        (EXPECTED.astype(bool), "bool"),
    ],
    ids=["complex", "object", "str", "bool"],
)
def test_non_real_dtypes_fail_where_floats_are_expected(got: np.ndarray, dtype: str) -> None:
    result = mismatch(got)
    assert result.layer == "dtype"
    assert result.message == f"y: dtype {dtype} cannot hold real numbers (expected float64)"


def test_floats_fail_where_integers_are_expected() -> None:
    expected = np.array([1, 2, 3])
    result = mismatch(np.array([1.0, 2.0, 3.0]), expected)
    assert result.layer == "dtype"
    assert result.message == "y: dtype float64 is not an integer type (expected int64)"


def test_bool_expectations_accept_bool_only() -> None:
    expected = np.array([True, False])
    assert compare_array("m", np.array([True, False]), expected) is None
    result = mismatch(np.array([1, 0]), expected)
    assert result == Mismatch("dtype", "y: dtype int64 is not bool")
    flipped = mismatch(np.array([True, True]), expected)
    assert flipped.layer == "values"
    assert "1 of 2 elements differ" in flipped.message


def test_integer_arrays_are_accepted_for_float_expectations_when_equal() -> None:
    assert compare_array("y", np.arange(6).reshape(2, 3), EXPECTED) is None
    assert compare_array("y", np.arange(6, dtype=np.uint8).reshape(2, 3), EXPECTED) is None
    assert compare_array("y", EXPECTED.astype(np.float32), EXPECTED) is None


def test_integer_arrays_with_different_values_fail_on_values() -> None:
    got = np.arange(6).reshape(2, 3)
    got[1, 1] = 9
    result = mismatch(got)
    assert result.layer == "values"
    assert "at [1, 1]: got 9, expected 4" in result.message


# finite


@pytest.mark.parametrize(("bad", "word"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_non_finite_values_are_located_and_counted(bad: float, word: str) -> None:
    got = EXPECTED.copy()
    got[1, 2] = bad
    got[0, 1] = bad
    result = mismatch(got)
    assert result.layer == "finite"
    assert result.message == f"y: output contains {word} at [0, 1] (2 non-finite values in all)"


def test_finite_layer_names_the_first_bad_value_and_counts_both_kinds() -> None:
    got = EXPECTED.copy()
    got[0, 2] = np.inf
    got[1, 0] = np.nan
    result = mismatch(got)
    assert result.message == "y: output contains inf at [0, 2] (2 non-finite values in all)"


def test_non_finite_values_that_the_reference_also_has_are_fine() -> None:
    expected = np.array([[np.nan, 1.0], [np.inf, -np.inf]])
    assert compare_array("y", expected.copy(), expected) is None


def test_inf_matching_the_reference_next_to_a_wrong_value_reports_the_wrong_value() -> None:
    # inf - inf is computed for the matching element; it must not warn or be reported.
    result = compare_array("y", np.array([np.inf, 1.0]), np.array([np.inf, 2.0]))
    assert result is not None and result.layer == "values"
    assert "largest error 1 at [1]: got 1, expected 2" in result.message


# values


def test_value_mismatch_says_where_by_how_much_and_how_many() -> None:
    got = EXPECTED.copy()
    got[0, 2] += 0.5
    got[1, 1] -= 1.25
    result = mismatch(got)
    assert result.layer == "values"
    assert result.message == (
        "y: values differ from the reference: 2 of 6 elements differ "
        "(rtol=1e-05, atol=1e-08); largest error 1.25 at [1, 1]: got 2.75, expected 4"
    )


def test_hidden_tests_leave_out_values() -> None:
    expected = np.full((2, 3), 789.25)
    got = expected.copy()
    got[1, 0] = 123.456
    result = mismatch(got, expected, detailed=False)
    assert result.layer == "values"
    assert result.message == (
        "y: values differ from the reference: 1 of 6 elements differ (rtol=1e-05, atol=1e-08)"
    )
    assert "123" not in result.message and "789" not in result.message
    assert "got" not in result.message and "expected" not in result.message
    assert not re.search(r"\[1, 0\]", result.message)


def test_tolerances_are_reported_as_used() -> None:
    got = EXPECTED + 1.0
    result = mismatch(got, tolerance=GRADIENTS)
    assert "6 of 6 elements differ (rtol=0.0001, atol=1e-06)" in result.message


@pytest.mark.parametrize(
    ("got", "matches"), [(1.5, True), (0.5, True), (1.5000001, False), (0.4999999, False)]
)
def test_absolute_tolerance_boundary_is_inclusive(got: float, matches: bool) -> None:
    tolerance = Tolerance(rtol=0.0, atol=0.5)
    result = compare_array("v", np.array([got]), np.array([1.0]), tolerance)
    assert (result is None) is matches


@pytest.mark.parametrize(
    ("got", "expected", "matches"),
    [(2.5, 2.0, True), (1.5, 2.0, True), (2.5000001, 2.0, False), (2.0, 2.5, True),
     (1.874, 2.5, False)],
)
def test_relative_tolerance_is_relative_to_the_reference(
    got: float, expected: float, matches: bool
) -> None:
    tolerance = Tolerance(rtol=0.25, atol=0.0)
    result = compare_array("v", np.array([got]), np.array([expected]), tolerance)
    assert (result is None) is matches


def test_default_value_tolerance_boundary() -> None:
    assert VALUES == Tolerance(rtol=1e-5, atol=1e-8)
    expected = np.array([1000.0])
    assert compare_array("v", expected + 0.9e-2, expected) is None
    assert compare_array("v", expected + 1.1e-2, expected) is not None


# properties

FLOATS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)
FINITE = hnp.arrays(
    dtype=np.float64,
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    elements=st.floats(-1e6, 1e6),
)


@settings(max_examples=60, deadline=None)
@given(FLOATS)
def test_any_array_matches_itself_including_nan_and_inf(array: np.ndarray) -> None:
    assert compare_array("x", array.copy(), array) is None
    assert compare_array("x", array.copy(), array, detailed=False) is None


@settings(max_examples=60, deadline=None)
@given(FINITE, st.floats(-0.5, 0.5))
def test_perturbations_within_tolerance_match(expected: np.ndarray, share: float) -> None:
    # share of the allowed error, at most half of it so float rounding cannot cross over
    allowed = VALUES.atol + VALUES.rtol * np.abs(expected)
    got = np.asarray(expected + share * allowed)
    assert compare_array("x", got, expected) is None


@settings(max_examples=60, deadline=None)
@given(FINITE.filter(lambda a: a.size > 0), st.data())
def test_a_perturbation_beyond_tolerance_is_found_where_it_is(
    expected: np.ndarray, data: st.DataObject
) -> None:
    flat = data.draw(st.integers(0, expected.size - 1))
    index = np.unravel_index(flat, expected.shape)
    got = expected.copy()
    got[index] += 3 * (VALUES.atol + VALUES.rtol * abs(expected[index])) + 1e-3
    result = compare_array("x", got, expected)
    assert result is not None and result.layer == "values"
    assert f"1 of {expected.size} elements differ" in result.message
    assert f"at {[int(i) for i in index]}" in result.message
