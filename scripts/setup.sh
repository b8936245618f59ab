#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs dlgrade for the tests: the worker's packages
# (PyTorch's CPU build unless a GPU is found, scripts/install.sh), editable, plus the
# development tools. Idempotent: a second run only re-checks the install.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v unshare >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq util-linux >/dev/null
fi
exec bash scripts/install.sh dev
