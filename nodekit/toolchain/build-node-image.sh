#!/usr/bin/env bash
# Build the node base image from Debian packages (no registry is reachable):
# mmdebstrap with this machine's own apt sources, then `docker import`.
# Tagged with a hash of its recipe; rebuilt only when the recipe changes.
# Prints the image reference on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
pkgs="$here/image-packages.txt"
tag=$(cat "$0" "$pkgs" "$here/versions.env" | sha256sum | cut -c1-12)
ref="$NODE_IMAGE_REPO:$tag"
if docker image inspect "$ref" >/dev/null 2>&1; then
  echo "image: $ref present"
  echo "$ref"
  exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
  echo "image: installing mmdebstrap"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null
fi
include=$(grep -vE '^\s*(#|$)' "$pkgs" | paste -sd, -)
# The machine's own Debian sources (deb822 or one-line), nothing else.
sources=$(mktemp --suffix=.sources)
work=$(mktemp -d)
trap 'rm -rf "$sources" "$work"' EXIT
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$sources"
else
  sources="${sources%.sources}.list"; grep -E '^deb ' /etc/apt/sources.list > "$sources"
fi
# Each container makes its own SSH host keys at first boot, ed25519 and ECDSA:
# an RSA key took 1-3 s of CPU per host on the path of every node's first boot,
# for clients older than OpenSSH 6.5 (2014). Real machines (target ssh) keep theirs.
echo "image: building $ref with mmdebstrap ($NODE_IMAGE_SUITE)"
start=$(date +%s)
mmdebstrap --quiet --variant=minbase --include="$include" \
  --customize-hook='chroot "$1" systemctl mask getty@tty1.service console-getty.service systemd-udevd.service systemd-udevd-kernel.socket systemd-udevd-control.socket systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer' \
  --customize-hook='chroot "$1" systemctl enable ssh.service' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='printf "[Unit]\nDescription=SSH host keys\nBefore=ssh.service\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N \"\" -f /etc/ssh/ssh_host_ed25519_key\nExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N \"\" -f /etc/ssh/ssh_host_ecdsa_key\n[Install]\nWantedBy=multi-user.target\n" > "$1"/etc/systemd/system/ssh-keygen.service; chroot "$1" systemctl enable ssh-keygen.service' \
  --customize-hook=': > "$1"/etc/machine-id; rm -f "$1"/etc/apt/sources.list.d/* "$1"/etc/apt/sources.list; rm -rf "$1"/var/lib/apt/lists/*' \
  "$NODE_IMAGE_SUITE" "$work/rootfs.tar" "$sources" >"$work/mmdebstrap.log" 2>&1 || { cat "$work/mmdebstrap.log" >&2; exit 1; }
docker import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=docker' \
  --change "LABEL io.nodekit.recipe=$tag" \
  "$work/rootfs.tar" "$ref" >/dev/null
docker tag "$ref" "$NODE_IMAGE_REPO:latest"
echo "image: built $ref in $(( $(date +%s) - start )) s"
echo "$ref"
