#!/usr/bin/env bash
# Sets up the project and runs the whole service in one process: `dlgrade serve` (web UI,
# API, SQLite under ./dlgrade-data, built-in grading worker, the best sandbox this machine
# offers, a demo course). It prints the URL and the demo staff/student logins; Ctrl-C stops.
# It installs only what the service needs (scripts/install.sh worker: PyTorch's CPU build
# unless a GPU is found, no test tools) into .venv, editable. Extra arguments go to
# `dlgrade serve` (e.g. --port 9000, --data-dir /srv/dlgrade).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v unshare >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq util-linux >/dev/null  # the process sandbox
fi
DLGRADE_EDITABLE=${DLGRADE_EDITABLE:-1} bash scripts/install.sh worker
exec .venv/bin/dlgrade serve "$@"
