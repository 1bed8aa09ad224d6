#!/usr/bin/env bash
# Runs every benchmark in one process with PostgreSQL and mosquitto as the peers, on loopback.
# Installs PostgreSQL and mosquitto from Debian's packages if missing (the benchmark starts its own
# mosquitto with a generated configuration) and runs a private, throwaway
# cluster (fsync and synchronous_commit on, as shipped) in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! [ -x /usr/sbin/mosquitto ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql mosquitto >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
port=55432
data=$(mktemp -d /tmp/lockergrid-bench-pg.XXXXXX)
chown postgres "$data"
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$bin/initdb" -D "$data" --auth=trust -U postgres >/dev/null
as_pg "$bin/pg_ctl" -D "$data" -l "$data/log" -w \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
trap 'as_pg "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null; rm -rf "$data"' EXIT

cargo build --release --locked -p lockergrid-benches -p lockergrid-gateway --bin lockergrid-bench --bin lockergrid
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $("$bin/postgres" --version), $(/usr/sbin/mosquitto -h | head -n 1)"
target/release/lockergrid-bench --postgres "host=127.0.0.1 port=$port user=postgres" "$@"
