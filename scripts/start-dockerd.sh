#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the Docker sandbox and its tests. Idempotent:
# nothing happens when `docker info` already works. Otherwise, as root, it installs
# docker.io with apt if dockerd is missing, starts dockerd in the background (log in
# /tmp/dlgrade-dockerd.log) and waits until it answers. It never fails the caller: when
# no engine can be had it says why and exits 0, and the `docker` tests then skip (or,
# with CI=true, fail). Afterwards: `dlgrade sandbox build-local` builds the image.
set -uo pipefail
log=/tmp/dlgrade-dockerd.log
up() { docker info >/dev/null 2>&1; }
up && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "start-dockerd: no Docker engine answers and we are not root; start one yourself." >&2
  exit 0
fi
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  echo "start-dockerd: installing docker.io with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y docker.io >/tmp/dlgrade-apt-docker.log 2>&1 \
    || { apt-get update >>/tmp/dlgrade-apt-docker.log 2>&1 \
         && apt-get install -y docker.io >>/tmp/dlgrade-apt-docker.log 2>&1; } \
    || { echo "start-dockerd: apt-get install docker.io failed (see /tmp/dlgrade-apt-docker.log)" >&2; exit 0; }
fi
if ! pgrep -x dockerd >/dev/null; then
  (setsid dockerd >"$log" 2>&1 </dev/null &)
fi
for _ in $(seq 1 60); do
  up && { echo "start-dockerd: dockerd is up (log: $log)" >&2; exit 0; }
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; last lines of $log:" >&2
tail -n 15 "$log" >&2 || true
exit 0
