"""Trusted reference cells for this assignment's checks (NumPy; never in the sandbox),
and the known-bug variants the checks compare a wrong answer with to give a hint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRU_WEIGHTS = ("Wrx", "Wzx", "Wnx", "Wrh", "Wzh", "Wnh", "brx", "bzx", "bnx", "brh", "bzh", "bnh")


def sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


@dataclass(frozen=True)
class RNNWeights:
    W_ih: np.ndarray
    W_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, d: int, h: int) -> RNNWeights:
        return cls(rng.standard_normal((h, d)), rng.standard_normal((h, h)),
                   rng.standard_normal(h), rng.standard_normal(h))


def rnn_forward(w: RNNWeights, x: np.ndarray, h: np.ndarray, *, bias_hh: bool = True,
                ) -> np.ndarray:
    """x (N, d), h (N, h) -> h_t (N, h)."""
    h_t: np.ndarray = np.tanh(x @ w.W_ih.T + w.b_ih + h @ w.W_hh.T + (w.b_hh if bias_hh else 0.0))
    return h_t


def rnn_backward(w: RNNWeights, delta: np.ndarray, h_t: np.ndarray, x: np.ndarray,
                 h: np.ndarray, *, average: bool = True) -> dict[str, np.ndarray]:
    """The returned dx, dh and the four parameter gradients (batch-averaged)."""
    scale = delta.shape[0] if average else 1
    dz = (1.0 - h_t * h_t) * delta
    return {"dx": dz @ w.W_ih, "dh": dz @ w.W_hh, "dW_ih": dz.T @ x / scale,
            "dW_hh": dz.T @ h / scale, "db_ih": dz.sum(0) / scale, "db_hh": dz.sum(0) / scale}


def gru_forward(w: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, *,
                variant: str = "") -> np.ndarray:
    """x (d,), h (h,) -> h_t (h,); ``variant`` is a known bug ("bias_outside_reset",
    "swapped_update")."""
    r = sigmoid(w["Wrx"] @ x + w["brx"] + w["Wrh"] @ h + w["brh"])
    z = sigmoid(w["Wzx"] @ x + w["bzx"] + w["Wzh"] @ h + w["bzh"])
    if variant == "bias_outside_reset":
        n = np.tanh(w["Wnx"] @ x + w["bnx"] + r * (w["Wnh"] @ h) + w["bnh"])
    else:
        n = np.tanh(w["Wnx"] @ x + w["bnx"] + r * (w["Wnh"] @ h + w["bnh"]))
    h_t: np.ndarray = z * n + (1 - z) * h if variant == "swapped_update" else (1 - z) * n + z * h
    return h_t


def gru_backward(w: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, delta: np.ndarray,
                 *, variant: str = "") -> dict[str, np.ndarray]:
    """dx, dh and d<weight> for each of GRU_WEIGHTS; ``variant`` "dz_sign" flips dz."""
    r = sigmoid(w["Wrx"] @ x + w["brx"] + w["Wrh"] @ h + w["brh"])
    z = sigmoid(w["Wzx"] @ x + w["bzx"] + w["Wzh"] @ h + w["bzh"])
    hidden = w["Wnh"] @ h + w["bnh"]
    n = np.tanh(w["Wnx"] @ x + w["bnx"] + r * hidden)
    dn = delta * (1 - z) * (1 - n * n)
    dz = delta * ((n - h) if variant == "dz_sign" else (h - n)) * z * (1 - z)
    dr = dn * hidden * r * (1 - r)
    grads = {"dWnx": np.outer(dn, x), "dbnx": dn, "dWnh": np.outer(dn * r, h), "dbnh": dn * r,
             "dWzx": np.outer(dz, x), "dbzx": dz, "dWzh": np.outer(dz, h), "dbzh": dz,
             "dWrx": np.outer(dr, x), "dbrx": dr, "dWrh": np.outer(dr, h), "dbrh": dr}
    grads["dx"] = w["Wnx"].T @ dn + w["Wzx"].T @ dz + w["Wrx"].T @ dr
    grads["dh"] = delta * z + w["Wnh"].T @ (dn * r) + w["Wzh"].T @ dz + w["Wrh"].T @ dr
    return grads
