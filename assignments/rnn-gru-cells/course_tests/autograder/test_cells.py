"""The same homework as pytest tests, one per fixture file (pytest autograder/test_cells.py
from the handout's root, with mytorch/ on sys.path via conftest.py)."""
import gru_cell
import numpy as np
import pytest
import rnn_cell

CASES = ["small", "wide", "single"]
GATES = ["Wrx", "Wzx", "Wnx", "Wrh", "Wzh", "Wnh", "brx", "bzx", "bnx", "brh", "bzh", "bnh"]


@pytest.fixture(autouse=True)
def seeded():
    np.random.seed(11785)


def load(kind, case):
    return np.load(f"autograder/data/{kind}_{case}.npz")


@pytest.mark.parametrize("case", CASES)
def test_rnn_forward(case):
    ref = load("rnn", case)
    cell = rnn_cell.RNNCell(ref["x"].shape[1], ref["h0"].shape[1])
    cell.init_weights(ref["W_ih"], ref["W_hh"], ref["b_ih"], ref["b_hh"])
    h_t = cell.forward(ref["x"], ref["h0"])
    assert h_t.shape == ref["h_t"].shape
    assert np.allclose(h_t, ref["h_t"], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_rnn_backward(case):
    ref = load("rnn", case)
    cell = rnn_cell.RNNCell(ref["x"].shape[1], ref["h0"].shape[1])
    cell.init_weights(ref["W_ih"], ref["W_hh"], ref["b_ih"], ref["b_hh"])
    noise = np.random.randn(*ref["delta"].shape) * 0.0  # seeded, as course tests do
    dx, dh = cell.backward(ref["delta"] + noise, ref["h_t"], ref["x"], ref["h0"])
    assert np.linalg.norm(dx - ref["dx"]) < 1e-8
    assert np.linalg.norm(dh - ref["dh"]) < 1e-8
    for name in ("dW_ih", "dW_hh", "db_ih", "db_hh"):
        assert np.allclose(getattr(cell, name), ref[name]), name


@pytest.mark.parametrize("case", CASES)
def test_gru_forward(case):
    ref = load("gru", case)
    cell = gru_cell.GRUCell(ref["x"].shape[0], ref["h0"].shape[0])
    cell.init_weights(*(ref[g] for g in GATES))
    assert np.allclose(cell(ref["x"], ref["h0"]), ref["h_t"])


@pytest.mark.parametrize("case", CASES)
def test_gru_backward(case):
    ref = load("gru", case)
    cell = gru_cell.GRUCell(ref["x"].shape[0], ref["h0"].shape[0])
    cell.init_weights(*(ref[g] for g in GATES))
    cell.forward(ref["x"], ref["h0"])
    dx, dh = cell.backward(ref["delta"])
    assert np.allclose(dx, ref["dx"]) and np.allclose(dh, ref["dh"])
    for g in GATES:
        assert np.allclose(getattr(cell, f"d{g}"), ref[f"d{g}"]), f"d{g}"


def test_multiple_choice():
    import mc

    key = list(np.load("autograder/data/mc_key.npz")["answers"])
    assert [mc.question_1, mc.question_2, mc.question_3] == key
