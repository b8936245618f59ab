#!/usr/bin/env bash
# Measures each role's install (scripts/install.sh) in a fresh virtualenv: wall time, the
# venv's size on disk, its package count and whether torch is in it. Prints one line per
# role. pip's cache is used as it is (PIP_NO_CACHE_DIR=1 for a cold download).
#   bash bench/install_sizes.sh [web worker dev]
set -euo pipefail
cd "$(dirname "$0")/.."
roles=("$@")
[ ${#roles[@]} -gt 0 ] || roles=(web worker dev)
work=$(mktemp -d /tmp/dlgrade-install-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$work" -xf -  # a clean copy: no .venv
mkdir -p "$work/src" && (cd "$work" && find . -mindepth 1 -maxdepth 1 ! -name src -exec mv {} src/ \;)
printf '%-7s %8s %8s %9s %s\n' role seconds MiB packages torch
for role in "${roles[@]}"; do
  venv="$work/venv-$role"
  start=$(date +%s.%N)
  DLGRADE_VENV="$venv" bash "$work/src/scripts/install.sh" "$role" >"$work/$role.log" 2>&1 \
    || { echo "$role: install failed"; tail -5 "$work/$role.log"; continue; }
  end=$(date +%s.%N)
  mib=$(du -sm "$venv" | cut -f1)
  count=$("$venv/bin/python" -m pip list --format=freeze 2>/dev/null | wc -l)
  torch=$("$venv/bin/python" -c 'import importlib.util as u; print("yes" if u.find_spec("torch") else "no")')
  printf '%-7s %8.1f %8s %9s %s\n' "$role" "$(python3 -c "print($end - $start)")" "$mib" "$count" "$torch"
  rm -rf "$venv"
done
