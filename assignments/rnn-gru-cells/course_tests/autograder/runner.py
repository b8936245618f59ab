"""Local autograder for HW3P1 (RNNCell, GRUCell, multiple choice).

Run from the handout's root:  python autograder/runner.py
Prints one line per section, "<section>: PASS" or "<section>: FAIL", then the scores as
JSON, and exits with status 0 only when every section passes.
"""
import json
import sys
import traceback

import numpy as np

sys.path.append("mytorch")
sys.path.append("hw3")

import mc  # noqa: E402
from gru_cell import *  # noqa: E402,F403
from rnn_cell import *  # noqa: E402,F403 - the handout's convention

DATA = "autograder/data"
CASES = ["small", "wide", "single"]
GRU_WEIGHTS = ["Wrx", "Wzx", "Wnx", "Wrh", "Wzh", "Wnh", "brx", "bzx", "bnx", "brh", "bzh", "bnh"]
SCORES = {"RNNCell forward": 5, "RNNCell backward": 10, "GRUCell forward": 10,
          "GRUCell backward": 15, "Multiple choice": 3}


def close(name, got, want):
    if not isinstance(got, np.ndarray):
        print(f"  {name}: expected a numpy array, got {type(got).__name__}")
        return False
    if got.shape != want.shape:
        print(f"  {name}: shape {got.shape}, expected {want.shape}")
        return False
    if not np.allclose(got, want, rtol=1e-5, atol=1e-8):
        print(f"  {name}: wrong values (largest error {np.abs(got - want).max():.3g})")
        return False
    return True


def rnn_cell(case):
    ref = np.load(f"{DATA}/rnn_{case}.npz")
    d, h = ref["W_ih"].shape[1], ref["W_ih"].shape[0]
    cell = RNNCell(d, h)  # noqa: F405
    cell.init_weights(ref["W_ih"], ref["W_hh"], ref["b_ih"], ref["b_hh"])
    return ref, cell


def test_rnn_forward():
    ok = True
    for case in CASES:
        ref, cell = rnn_cell(case)
        ok &= close(f"h_t ({case})", cell(ref["x"], ref["h0"]), ref["h_t"])
    return ok


def test_rnn_backward():
    ok = True
    for case in CASES:
        ref, cell = rnn_cell(case)
        dx, dh = cell.backward(ref["delta"], ref["h_t"], ref["x"], ref["h0"])
        ok &= close(f"dx ({case})", dx, ref["dx"]) and close(f"dh ({case})", dh, ref["dh"])
        for name in ("dW_ih", "dW_hh", "db_ih", "db_hh"):
            ok &= close(f"{name} ({case})", getattr(cell, name), ref[name])
    return ok


def gru_cell(case):
    ref = np.load(f"{DATA}/gru_{case}.npz")
    h, d = ref["Wrx"].shape
    cell = GRUCell(d, h)  # noqa: F405
    cell.init_weights(*(ref[name] for name in GRU_WEIGHTS))
    return ref, cell


def test_gru_forward():
    ok = True
    for case in CASES:
        ref, cell = gru_cell(case)
        ok &= close(f"h_t ({case})", cell(ref["x"], ref["h0"]), ref["h_t"])
    return ok


def test_gru_backward():
    ok = True
    for case in CASES:
        ref, cell = gru_cell(case)
        cell.forward(ref["x"], ref["h0"])
        dx, dh = cell.backward(ref["delta"])
        ok &= close(f"dx ({case})", dx, ref["dx"]) and close(f"dh ({case})", dh, ref["dh"])
        for name in GRU_WEIGHTS:
            ok &= close(f"d{name} ({case})", getattr(cell, f"d{name}"), ref[f"d{name}"])
    return ok


def test_mc():
    key = np.load(f"{DATA}/mc_key.npz")["answers"]
    answers = [mc.question_1, mc.question_2, mc.question_3]
    wrong = [i + 1 for i, (a, k) in enumerate(zip(answers, key)) if a != k]
    if wrong:
        print(f"  wrong answers: {wrong}")
    return not wrong


TESTS = [("RNNCell forward", test_rnn_forward), ("RNNCell backward", test_rnn_backward),
         ("GRUCell forward", test_gru_forward), ("GRUCell backward", test_gru_backward),
         ("Multiple choice", test_mc)]

scores = {}
for section, test in TESTS:
    try:
        passed = bool(test())
    except Exception:
        traceback.print_exc()
        passed = False
    print(f"{section}: {'PASS' if passed else 'FAIL'}")
    scores[section] = SCORES[section] if passed else 0

print(json.dumps({"scores": scores}))
sys.exit(0 if all(scores[s] == SCORES[s] for s in SCORES) else 1)
