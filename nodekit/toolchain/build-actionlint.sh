#!/usr/bin/env bash
# Build actionlint (the GitHub Actions workflow linter, used by `make lint` on
# examples/gitops/github-actions.yml) from its Go module, through the Go module
# proxy, into $NODEKIT_CACHE/actionlint/<version>/actionlint. Idempotent: a
# finished build is detected by its stamp and reused. Progress goes to stderr;
# the last line on stdout is the binary's path.
# actionlint runs shellcheck on `run:` scripts when shellcheck is on PATH
# (Debian: apt-get install shellcheck); without it those checks are skipped.
set -euo pipefail
version=v1.7.12
module=github.com/rhysd/actionlint/cmd/actionlint
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
dest="$cache/actionlint/$version"
bin="$dest/actionlint"
stamp="$dest/.complete"
say() { echo "actionlint: $*" >&2; }
die() { echo "actionlint: $*" >&2; exit 1; }

if [ -f "$stamp" ] && [ -x "$bin" ]; then
  say "$version already built in $dest"
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || die "the Go toolchain is missing (install golang)"
export GOTOOLCHAIN=local
mkdir -p "$dest"
rm -f "$stamp"
start=$(date +%s)
say "building $module@$version"
# `go install mod@version` ignores any go.mod around it: the module's own
# go.mod and go.sum decide, checked against the checksum database.
GOBIN="$dest" go install -trimpath \
  -ldflags "-s -w -X github.com/rhysd/actionlint.version=$version" "$module@$version"
[ -x "$bin" ] || die "go install did not produce $bin"
"$bin" -version >&2
touch "$stamp"
say "built in $(( $(date +%s) - start )) s into $dest"
echo "$bin"
