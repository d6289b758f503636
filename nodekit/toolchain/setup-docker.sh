#!/usr/bin/env bash
# Make sure a Docker engine runs here: start dockerd in the background when it
# is not answering (setup-host.sh installs Debian's docker.io).
# Idempotent; the daemon's log goes to $NODEKIT_CACHE/dockerd.log.
set -euo pipefail
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
mkdir -p "$cache"
command -v dockerd >/dev/null || { echo "docker: dockerd missing; run setup-host.sh" >&2; exit 1; }
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
