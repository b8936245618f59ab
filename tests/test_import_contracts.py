"""The import contracts of pyproject.toml hold (import-linter, as ``lint-imports`` runs
them), and the code the sandbox gets of dlgrade (``sandbox.backend.AGENT_FILES``, copied
alone into every sandbox) imports nothing of dlgrade but itself."""

from __future__ import annotations

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

from sandbox.backend import AGENT_FILES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("grader", "sandbox", "reference", "dlgrade", "web", "tasks", "store", "migrations")


def test_the_import_contracts_hold() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_sandbox_s_copy_of_dlgrade_imports_only_itself() -> None:
    graph = grimp.build_graph(*PACKAGES)
    agent = {f"sandbox.{Path(name).stem}" for name in AGENT_FILES}
    for module in sorted(agent):
        outside = graph.find_modules_directly_imported_by(module) - agent - {"sandbox"}
        assert not outside, f"{module} imports {sorted(outside)}, which the sandbox lacks"
