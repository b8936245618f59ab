#!/usr/bin/env bash
# Sets up the project and runs the whole test suite: lint, types, import layers, pytest.
# Private Redis and Postgres servers are started for the tests and stopped on exit
# (scripts/services.sh; set DLGRADE_TEST_REDIS_URL / DLGRADE_TEST_DATABASE_URL to use your own).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python scripts/mypy_courses.py  # each assignments/<slug>/'s checks.py and helpers
.venv/bin/lint-imports
source scripts/services.sh
trap stop_test_services EXIT
start_test_services
bash scripts/start-dockerd.sh  # a Docker engine for the docker-marked tests
# docker-compose runs docker-compose.yml (tests/test_deployment.py, tests/fullstack) and
# debootstrap makes the images' Debian base (scripts/build_images.py); without them those
# tests fail in CI.
missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         "${missing[@]}" >/dev/null; }; } || echo "test.sh: could not install ${missing[*]}" >&2
fi
.venv/bin/python -m pytest "$@"
