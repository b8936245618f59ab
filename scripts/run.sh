#!/usr/bin/env bash
# Sets up the project and demonstrates the grader: grades the built-in reference handin
# of mytorch-cnn in the process sandbox and prints the per-test table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/dlgrade assignments
.venv/bin/dlgrade check mytorch-cnn reference/assignments/mytorch-cnn/solution "$@"
