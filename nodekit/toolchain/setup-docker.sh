#!/usr/bin/env bash
# Make sure a Docker engine runs here: install Debian's docker.io when dockerd
# is missing, start dockerd in the background when it is not answering.
# Idempotent; the daemon's log goes to $NODEKIT_CACHE/dockerd.log.
set -euo pipefail
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
mkdir -p "$cache"
if ! command -v dockerd >/dev/null; then
  echo "docker: installing Debian's docker.io"
  if [ "$(id -u)" -ne 0 ]; then echo "docker: needs root to install docker.io" >&2; exit 1; fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
fi
if docker info >/dev/null 2>&1; then
  echo "docker: engine running"
  exit 0
fi
echo "docker: starting dockerd (log: $cache/dockerd.log)"
# setsid: the daemon outlives the shell (and make) that started it.
setsid nohup dockerd >>"$cache/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "docker: engine running"; exit 0; fi
  sleep 0.5
done
echo "docker: dockerd did not answer within 30 s; see $cache/dockerd.log" >&2
tail -20 "$cache/dockerd.log" >&2
exit 1
