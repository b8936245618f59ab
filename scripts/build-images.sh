#!/usr/bin/env bash
# Builds every dlgrade image here, with no image registry: the Debian base (debootstrap,
# reused while its inputs stay the same), the web and worker service images and the
# sandbox image. Arguments go to scripts/build_images.py (--torch cuda on a GPU host,
# --only, --runtimes); docs/deployment.md explains them. Needs root and a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/install.sh web >/dev/null
exec .venv/bin/python scripts/build_images.py "$@"
