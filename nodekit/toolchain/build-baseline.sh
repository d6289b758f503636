#!/usr/bin/env bash
# The baseline: a minimal, freshly installed Debian 12 (baseline-packages.txt),
# built with mmdebstrap from this machine's apt sources (no registry needed).
# Two products, tagged with a hash of the recipe, rebuilt only when it changes:
#   $NODEKIT_CACHE/baseline/<tag>/status   its dpkg status: site bundles are
#                                          resolved against it (no Docker needed)
#   $BASELINE_IMAGE_REPO:<tag>             a Docker image of it (when an engine
#                                          runs): the test hosts of the ssh target
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
pkgs="$here/baseline-packages.txt"
tag=$(cat "$0" "$pkgs" "$here/versions.env" | sha256sum | cut -c1-12)
status="$cache/baseline/$tag/status"
ref="$BASELINE_IMAGE_REPO:$tag"
engine=no
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=yes; fi
if [ -f "$status" ] && { [ $engine = no ] || docker image inspect "$ref" >/dev/null 2>&1; }; then
  echo "baseline: $tag present"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "baseline: mmdebstrap missing (make setup installs it)" >&2; exit 1; }
include=$(grep -vE '^\s*(#|$)' "$pkgs" | paste -sd, -)
sources=$(mktemp --suffix=.sources)
work=$(mktemp -d)
trap 'rm -rf "$sources" "$work"' EXIT
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$sources"
else
  sources="${sources%.sources}.list"; grep -E '^deb ' /etc/apt/sources.list > "$sources"
fi
echo "baseline: building $tag with mmdebstrap ($NODE_IMAGE_SUITE: $include)"
start=$(date +%s)
mmdebstrap --quiet --variant=minbase --include="$include" \
  --customize-hook='chroot "$1" systemctl mask getty@tty1.service console-getty.service systemd-udevd.service systemd-udevd-kernel.socket systemd-udevd-control.socket systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer' \
  --customize-hook='chroot "$1" systemctl enable ssh.service' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='printf "[Unit]\nDescription=SSH host keys\nBefore=ssh.service\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n[Install]\nWantedBy=multi-user.target\n" > "$1"/etc/systemd/system/ssh-keygen.service; chroot "$1" systemctl enable ssh-keygen.service' \
  --customize-hook=': > "$1"/etc/machine-id; rm -f "$1"/etc/apt/sources.list.d/* "$1"/etc/apt/sources.list; rm -rf "$1"/var/lib/apt/lists/*' \
  "$NODE_IMAGE_SUITE" "$work/rootfs.tar" "$sources" >"$work/mmdebstrap.log" 2>&1 || { cat "$work/mmdebstrap.log" >&2; exit 1; }
mkdir -p "$(dirname "$status")"
tar -xOf "$work/rootfs.tar" ./var/lib/dpkg/status > "$status.tmp" && mv "$status.tmp" "$status"
if [ $engine = yes ]; then
  docker import --change 'CMD ["/sbin/init"]' --change 'ENV container=docker' \
    --change "LABEL io.nodekit.recipe=$tag" "$work/rootfs.tar" "$ref" >/dev/null
fi
echo "baseline: built $tag in $(( $(date +%s) - start )) s"
