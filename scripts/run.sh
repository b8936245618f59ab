#!/usr/bin/env bash
# Sets up the project and runs the whole service in one process: `dlgrade serve` (web UI,
# API, SQLite under ./dlgrade-data, built-in grading worker, the best sandbox this machine
# offers, a demo course). It prints the URL and the demo staff/student logins; Ctrl-C stops.
# Extra arguments go to `dlgrade serve` (e.g. --port 9000, --data-dir /srv/dlgrade).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dlgrade serve "$@"
