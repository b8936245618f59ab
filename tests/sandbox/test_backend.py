"""The backend interface's pure helpers (sandbox/backend.py)."""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.backend import Mask, masks


def test_masks_follow_each_bind_that_shows_a_hidden_path(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "lib" / "pkg" / "data").mkdir(parents=True)
    labels = venv / "lib" / "pkg" / "data" / "labels.csv.gz"
    labels.write_bytes(b"x")
    folder = tmp_path / "datasets"
    folder.mkdir()
    binds = [(str(venv), "/opt/venv"), (str(tmp_path), str(tmp_path)), ("/usr", "/usr")]
    found = masks([str(labels), str(folder), "/nowhere/else"], binds)
    assert found == sorted([
        Mask("/opt/venv/lib/pkg/data/labels.csv.gz", False),
        Mask(str(labels), False),
        Mask(str(folder), True),
    ], key=lambda m: m.target)


def test_masks_match_whole_path_components_and_resolved_sources(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_text("x")
    link = tmp_path / "link"
    os.symlink(real, link)
    assert masks([str(real / "f")], [(str(link), "/mnt")]) == [Mask("/mnt/f", False)]
    assert masks([str(tmp_path / "realistic")], [(str(real), "/mnt")]) == []
