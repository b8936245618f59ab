#!/usr/bin/env bash
# Runs ON the GPU machine, in ONE device-tool call (docs/gpu.md), after
# scripts/gpu-proof-prepare.sh ran here; carry [".devicekit", ".whl", ".gpuproof"]:
#   bash scripts/gpu-proof.sh
# Starts dockerd from .devicekit, installs the carried wheels for the CUDA PyTorch
# python (/opt/torch/.venv/bin/python3; the repository's .venv does not work there) and
# runs bench/gpu_proof.py (about 5 minutes, each step time-boxed; the whole run at most
# 8). Writes $OUT/gpu-proof.json and $OUT/gpu-proof.log.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-proof-out}
mkdir -p "$out"
exec > >(tee "$out/gpu-proof.log") 2>&1
python=/opt/torch/.venv/bin/python3
[ -x "$python" ] || python=python3
echo "gpu-proof: $(date -u +%FT%TZ) python=$python"
nvidia-smi -L || true
ls -l /dev/nvidia* || true
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || { echo "gpu-proof: wheel install failed"; exit 2; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 90 bash .devicekit/start-dockerd.sh || { echo "gpu-proof: dockerd did not start"; exit 3; }
if [ -x .gpuproof/docker-init ]; then  # dockerd looks docker-init up on its PATH
  cp .gpuproof/docker-init /tmp/devicekit/usr/bin/docker-init
fi
timeout 480 "$python" bench/gpu_proof.py --out "$out" "$@"
status=$?
echo "gpu-proof: exit status $status"
tail -5 /tmp/dockerd.log 2>/dev/null
exit $status
