"""Training curves drawn with matplotlib as SVG: loss and held-out accuracy on their
own axes (two panels over the same epochs), with ticks, labels and a grid.

Rendered on the server (no JavaScript library, nothing from a CDN) and served as an
image (``<img src=...svg>``), also for the live partial curve while a test runs: the
results page swaps the image when a new epoch is reported. Uses matplotlib's object
API with the SVG canvas only (no pyplot, no global state), so it is safe in threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

LOSS_KEYS = ("train_loss", "loss")
ACCURACY_KEYS = ("held_out_accuracy", "accuracy")
INK, LOSS, ACCURACY, GRID = "#1d232b", "#2457c5", "#1d7a3a", "#dde1e6"
RC: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": "dlgrade", "font.size": 9.0}
# Served as an image: its styles are inline in matplotlib's SVG; no script can run in it.
IMAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


def _pick(curves: Mapping[str, Sequence[float | None]],
          keys: tuple[str, ...]) -> list[float | None]:
    for key in keys:
        if key in curves:
            return [v if v is None or math.isfinite(v) else None for v in curves[key]]
    return []


def _points(values: Sequence[float | None]) -> tuple[list[int], list[float]]:
    kept = [(i + 1, v) for i, v in enumerate(values) if v is not None]
    return [e for e, _ in kept], [v for _, v in kept]


def curves_svg(curves: Mapping[str, Sequence[float | None]], *, epochs: int | None = None,
               threshold: float | None = None, title: str = "") -> bytes:
    """Two panels: the training loss (as the student's code reported it) and held-out
    accuracy (0–100 %, with the passing ``threshold`` as a dashed line), per epoch;
    ``epochs`` fixes the x axis (a live curve shows the epochs still to come)."""
    loss, accuracy = _pick(curves, LOSS_KEYS), _pick(curves, ACCURACY_KEYS)
    last = max(epochs or 0, len(loss), len(accuracy), 1)
    import matplotlib

    with matplotlib.rc_context(RC):  # type: ignore[arg-type, unused-ignore]
        figure = Figure(figsize=(6.4, 3.4), dpi=100, layout="constrained")
        FigureCanvasSVG(figure)
        top, bottom = figure.subplots(2, 1, sharex=True)
        x, y = _points(loss)
        top.plot(x, y, marker="o", color=LOSS, linewidth=1.8, markersize=4)
        top.set_ylabel("training loss")
        x, y = _points(accuracy)
        bottom.plot(x, y, marker="o", color=ACCURACY, linewidth=1.8, markersize=4)
        bottom.set_ylim(0, 1)
        bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        bottom.set_ylabel("held-out accuracy")
        if threshold is not None:
            bottom.axhline(threshold, color="#b3261e", linestyle="--", linewidth=1)
            bottom.annotate(f"pass {threshold:.0%}", (1, threshold), xycoords=("axes fraction",
                            "data"), xytext=(-4, 3), textcoords="offset points", ha="right",
                            color="#b3261e", fontsize=8)
        bottom.set_xlabel("epoch")
        bottom.set_xlim(0.7, last + 0.3)
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        for axes in (top, bottom):
            axes.grid(True, color=GRID, linewidth=0.8)
            axes.tick_params(colors=INK)
            for side in ("top", "right"):
                axes.spines[side].set_visible(False)
        if title:
            figure.suptitle(title, fontsize=10)
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def describe(curves: Mapping[str, Sequence[float | None]]) -> str:
    """A sentence for the image's alt text: the last loss and accuracy."""
    loss = [v for v in _pick(curves, LOSS_KEYS) if v is not None]
    accuracy = [v for v in _pick(curves, ACCURACY_KEYS) if v is not None]
    parts = [f"{max(len(loss), len(accuracy))} epochs"]
    if loss:
        parts.append(f"training loss from {loss[0]:.3g} to {loss[-1]:.3g}")
    if accuracy:
        parts.append(f"held-out accuracy last {accuracy[-1]:.1%}")
    return "Training curves: " + ", ".join(parts) + "."
