#!/usr/bin/env bash
# Build the Pulumi CLI and its Python language host from their Go modules
# (through the Go module proxy), install them with the helper scripts from the
# sdk module into $NODEKIT_CACHE/pulumi/<version>/bin. Idempotent: a finished
# build is detected by its stamp and reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
dest="$cache/pulumi/$PULUMI_VERSION-langhost-$PULUMI_LANGHOST_SDK_VERSION"
stamp="$dest/.complete"
if [ -f "$stamp" ]; then
  echo "pulumi: $PULUMI_VERSION already built in $dest"
  exit 0
fi
command -v go >/dev/null || { echo "pulumi: the Go toolchain is missing (install golang)" >&2; exit 1; }
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
modcache=$(go env GOMODCACHE)
build="$cache/pulumi/build"
mkdir -p "$dest/bin" "$build/cli" "$build/langhost"
start=$(date +%s)

# --- the CLI: module github.com/pulumi/pulumi/pkg/v3, command cmd/pulumi.
# Its go.mod replaces sdk/v3 with a relative path, so `go install mod@ver`
# refuses it: a small build module requires it and repeats the replaces.
echo "pulumi: fetching github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION"
go mod download github.com/pulumi/pulumi/pkg/v3@"$PULUMI_VERSION" github.com/pulumi/pulumi/sdk/v3@"$PULUMI_VERSION"
pkgmod="$modcache/github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION/go.mod"
sdkdir="$modcache/github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION"
goline=$(grep -m1 '^go ' "$pkgmod")
{
  echo "module nodekit.local/pulumi-cli"
  echo "$goline"
  echo "require github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION"
  echo "require github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION"
  # every replace of pkg/v3 that points at another module version (not a path)
  grep -E '^replace .* => [^.].* v[0-9]' "$pkgmod" || true
} > "$build/cli/go.mod"
cat > "$build/cli/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
( cd "$build/cli" && go mod tidy >/dev/null 2>&1 || go mod download all )
echo "pulumi: building the CLI (several minutes on 2 cores)"
( cd "$build/cli" && go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$dest/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi )

# --- the Python language host, from the last sdk/v3 release that carries it.
echo "pulumi: building the Python language host from sdk/v3@$PULUMI_LANGHOST_SDK_VERSION"
go mod download github.com/pulumi/pulumi/sdk/v3@"$PULUMI_LANGHOST_SDK_VERSION"
lhmod="$modcache/github.com/pulumi/pulumi/sdk/v3@$PULUMI_LANGHOST_SDK_VERSION/go.mod"
{
  echo "module nodekit.local/pulumi-langhost"
  grep -m1 '^go ' "$lhmod"
  echo "require github.com/pulumi/pulumi/sdk/v3 $PULUMI_LANGHOST_SDK_VERSION"
  grep -E '^replace .* => [^.].* v[0-9]' "$lhmod" || true
} > "$build/langhost/go.mod"
cat > "$build/langhost/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"
GO
( cd "$build/langhost" && go mod tidy >/dev/null 2>&1 || go mod download all )
( cd "$build/langhost" && go build -trimpath -ldflags "-s -w" \
    -o "$dest/bin/pulumi-language-python" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python )

# --- helper scripts, from the sdk module that matches the CLI.
install -m 0755 "$sdkdir/python/cmd/pulumi-language-python-exec" "$dest/bin/"
install -m 0755 "$sdkdir/python/dist/pulumi-resource-pulumi-python" "$dest/bin/"
"$dest/bin/pulumi" version
touch "$stamp"
ln -sfn "$dest" "$cache/pulumi/current"
echo "pulumi: built in $(( $(date +%s) - start )) s into $dest"
