#!/usr/bin/env bash
# Fetch the SARIF 2.1.0 JSON schema (the tests validate `nodekit policy check
# --format sarif` against it) from the package that ships it: Microsoft's SARIF
# multitool on npm. Kept in $NODEKIT_CACHE/sarif/sarif-2.1.0.json, checked by
# its sha256. Idempotent; the last line on stdout is the schema's path.
set -euo pipefail
package=@microsoft/sarif-multitool-linux@5.7.0
sha256=1c49a0f2b60444c71bb14878e21e0d882198eff4c539861b133093ad89ed798c
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
dest="$cache/sarif"
schema="$dest/sarif-2.1.0.json"
say() { echo "sarif-schema: $*" >&2; }
die() { echo "sarif-schema: $*" >&2; exit 1; }

if [ -f "$schema" ] && echo "$sha256  $schema" | sha256sum -c --status; then
  say "already in $schema"
  echo "$schema"
  exit 0
fi
command -v npm >/dev/null || die "npm is missing (apt-get install npm)"
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "fetching $package from the npm registry"
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/sarif-2.1.0.json
echo "$sha256  $work/package/sarif-2.1.0.json" | sha256sum -c --status \
  || die "the schema in $package does not have the expected sha256"
mv "$work/package/sarif-2.1.0.json" "$schema"
echo "$schema"
