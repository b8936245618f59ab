#!/usr/bin/env bash
# Run HERE (the machine without a GPU), once, from the root of the checkout that the
# session was started in (the device tool sends that checkout): builds what
# scripts/gpu-proof.sh needs on the GPU machine, all git-ignored (.git/info/exclude):
#   .devicekit/  a Docker engine (the workplace's device/prepare.sh, path in $DEVICEKIT_PREPARE)
#   .whl/        dlgrade's pure-Python needs missing there, as cp312 wheels
#   .gpuproof/   docker-init (tini), which the devicekit's engine lacks
# Then call the device tool with carry [".devicekit", ".whl", ".gpuproof"] (docs/gpu.md).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
prepare=${DEVICEKIT_PREPARE:-../shared/device/prepare.sh}
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for d in .whl .gpuproof .devicekit; do
  grep -qx "/$d/" "$exclude" 2>/dev/null || echo "/$d/" >> "$exclude"
done
bash "$prepare"
python=.venv/bin/python
[ -x "$python" ] || python=python3
rm -rf .whl && mkdir -p .whl
# Same versions as .venv; typing_extensions too, newer than the one there may be.
"$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing_extensions==4.16.0 docker==7.2.0 mlxtend==0.25.0
mkdir -p .gpuproof
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download tini >/dev/null && dpkg -x tini_*.deb x)
cp "$work/x/usr/bin/tini-static" .gpuproof/docker-init
chmod 755 .gpuproof/docker-init
du -sh .devicekit .whl .gpuproof || true
