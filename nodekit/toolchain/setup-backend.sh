#!/usr/bin/env bash
# The state backend: a PostgreSQL cluster of its own for nodekit (Debian's
# postgresql, managed with postgresql-common's pg_createcluster/pg_ctlcluster,
# so it needs no systemd), listening on 127.0.0.1:$NODEKIT_BACKEND_PORT only,
# its Unix socket in a private directory. Ensures role `nodekit` (password
# generated once, kept in $NODEKIT_CACHE/backend/password) and databases
# `nodekit` and `nodekit_test` owned by it. Other clusters are left alone.
# Idempotent. Progress goes to stderr; stdout is one line:
#   NODEKIT_BACKEND=postgres://nodekit:<password>@127.0.0.1:<port>/nodekit?sslmode=disable
set -euo pipefail
cache=${NODEKIT_CACHE:-$HOME/.cache/nodekit}
port=${NODEKIT_BACKEND_PORT:-55432}
cluster=nodekit
sockdir=/var/run/postgresql-nodekit
say() { echo "backend: $*" >&2; }
die() { echo "backend: $*" >&2; exit 1; }

case $port in
  ''|*[!0-9]*) die "NODEKIT_BACKEND_PORT must be a number, not '$port'" ;;
esac
if [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
  die "NODEKIT_BACKEND_PORT must be in 1024..65535, not $port"
fi
[ "$(id -u)" -eq 0 ] || die "needs root (installs packages, manages a PostgreSQL cluster)"

# --- packages: Debian's postgresql (server, postgresql-common) and its client.
# (Installing postgresql also makes Debian create its default `main` cluster.)
servers() { ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null || true; }
if ! command -v pg_createcluster >/dev/null || ! command -v pg_isready >/dev/null \
   || ! command -v psql >/dev/null || [ -z "$(servers)" ]; then
  say "installing postgresql, postgresql-client"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    postgresql postgresql-client >/dev/null
  [ -n "$(servers)" ] || die "no PostgreSQL server under /usr/lib/postgresql after installing"
fi

# --- the major version: that of an existing nodekit cluster, else the newest installed.
ver=
for f in /etc/postgresql/*/"$cluster"/postgresql.conf; do
  [ -f "$f" ] && ver=$(basename "$(dirname "$(dirname "$f")")")
done
if [ -z "$ver" ]; then
  ver=$(servers | sed 's|^/usr/lib/postgresql/\([^/]*\)/.*|\1|' | sort -V | tail -n 1)
fi
[ -x "/usr/lib/postgresql/$ver/bin/postgres" ] \
  || die "cluster $ver/$cluster exists but postgresql-$ver is not installed"

# --- the private socket directory (under /var/run, so gone after a reboot).
install -d -m 0750 -o postgres -g postgres "$sockdir"

# --- the cluster.
# (Only our conf.d file may be left over from a pg_dropcluster: that is fine.)
if [ ! -f "/etc/postgresql/$ver/$cluster/postgresql.conf" ]; then
  say "creating cluster $ver/$cluster on 127.0.0.1:$port"
  pg_createcluster --quiet --port "$port" --socketdir "$sockdir" \
    --locale C.UTF-8 --encoding UTF8 \
    "$ver" "$cluster" >/dev/null
fi

# Settings: a conf.d file of this cluster (postgresql.conf includes conf.d last,
# so these win; postgresql-common's tools read it too). Not pg_conftool: it
# writes 127.0.0.1 unquoted (taken for a number), which postgres rejects.
# All of these need a restart when they change; the cluster is stopped
# *before* the file changes, since pg_ctlcluster finds a running server by the
# port and socket in the configuration.
confd=/etc/postgresql/$ver/$cluster/conf.d
conf=$confd/nodekit.conf
want="# Written by nodekit's setup-backend.sh (rewritten when it differs).
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
shared_buffers = 64MB
max_connections = 100"
running=0
pg_ctlcluster "$ver" "$cluster" status >/dev/null 2>&1 && running=1
if [ "$(cat "$conf" 2>/dev/null || true)" != "$want" ]; then
  if [ "$running" -eq 1 ]; then
    say "stopping cluster $ver/$cluster (settings change)"
    pg_ctlcluster "$ver" "$cluster" stop >&2
    running=0
  fi
  say "writing $conf"
  install -d -m 0755 -o postgres -g postgres "$confd"
  printf '%s\n' "$want" >"$conf.tmp"
  chown postgres:postgres "$conf.tmp"
  chmod 0644 "$conf.tmp"
  mv "$conf.tmp" "$conf"
fi

# pg_hba: password (scram) logins over TCP from 127.0.0.1. Debian's default
# has this line; put it first if it is not there (rules match top-down).
hba=/etc/postgresql/$ver/$cluster/pg_hba.conf
if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+scram-sha-256[[:space:]]*$' "$hba"; then
  say "adding 'host all all 127.0.0.1/32 scram-sha-256' to $hba"
  sed -i '1i host    all             all             127.0.0.1/32            scram-sha-256' "$hba"
  if [ "$running" -eq 1 ]; then
    say "reloading cluster $ver/$cluster (pg_hba.conf changed)"
    pg_ctlcluster "$ver" "$cluster" reload >&2
  fi
fi

# --- running?
if [ "$running" -ne 1 ]; then
  say "starting cluster $ver/$cluster"
  pg_ctlcluster "$ver" "$cluster" start >&2 \
    || die "cluster $ver/$cluster did not start; see /var/log/postgresql/postgresql-$ver-$cluster.log"
fi
ready=0
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$port" -t 1; then ready=1; break; fi
  sleep 0.5
done
if [ "$ready" -ne 1 ]; then
  echo "backend: cluster $ver/$cluster does not accept connections on 127.0.0.1:$port within 30 s" >&2
  tail -n 20 "/var/log/postgresql/postgresql-$ver-$cluster.log" >&2 2>/dev/null || true
  exit 1
fi

# --- the password: generated once (hex, so URL-safe), then reused.
mkdir -p "$cache/backend"
chmod 0700 "$cache/backend"
pwfile=$cache/backend/password
if [ ! -s "$pwfile" ]; then
  say "generating the nodekit role's password into $pwfile"
  (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$pwfile.tmp")
  mv "$pwfile.tmp" "$pwfile"
fi
chmod 0600 "$pwfile"
pw=$(cat "$pwfile")
case $pw in
  ''|*[!0-9a-zA-Z_-]*) die "$pwfile holds other than URL-safe characters; remove it to regenerate" ;;
esac

# --- role and databases, as the postgres superuser over the private socket.
# The SQL (with the password) goes through stdin, never a command line.
{
  echo "SET password_encryption = 'scram-sha-256';"
  echo "SELECT 'CREATE ROLE nodekit LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nodekit')\\gexec"
  printf "ALTER ROLE nodekit LOGIN PASSWORD '%s';\n" "$pw"
  for db in nodekit nodekit_test; do
    echo "SELECT 'CREATE DATABASE $db OWNER nodekit' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\\gexec"
    echo "ALTER DATABASE $db OWNER TO nodekit;"
  done
} | runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -d postgres >/dev/null \
  || die "could not set up role/databases in cluster $ver/$cluster"
say "cluster $ver/$cluster on 127.0.0.1:$port, databases nodekit, nodekit_test"

echo "NODEKIT_BACKEND=postgres://nodekit:$pw@127.0.0.1:$port/nodekit?sslmode=disable"
