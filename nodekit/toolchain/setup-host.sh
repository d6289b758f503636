#!/usr/bin/env bash
# Debian packages the setup needs on this machine: the Docker engine,
# mmdebstrap (node image), dpkg-dev (site bundles' apt index), shellcheck
# (actionlint's checks of workflow scripts), mosquitto (the equipment agents'
# tests start their own broker on loopback; its service is left stopped), npm
# (fetches the SARIF schema the policy tests validate against), graphviz
# (`nodekit graph`, the report's picture), chromium (the report's browser
# test, headless). Go comes with
# the machine. Installs only what is missing; apt-get update runs only when
# something is.
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v shellcheck >/dev/null || need+=(shellcheck)
test -x /usr/sbin/mosquitto || need+=(mosquitto)
command -v npm >/dev/null || need+=(npm)
command -v dot >/dev/null || need+=(graphviz)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "host: docker.io, mmdebstrap, dpkg-dev, shellcheck, mosquitto, npm, graphviz, chromium present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "host: needs root to install ${need[*]} (or install them yourself)" >&2
  exit 1
fi
echo "host: installing ${need[*]}"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
