#!/usr/bin/env bash
# The chaos run (examples/src/bin/chaos.rs): the release example server in inbox mode, stopped
# every 2 s (SIGKILL, or SIGTERM with --signal term) and started again on the same inbox while
# 32 senders deliver 10,000 distinct events, each retried until it is answered 2xx; the stops
# go on until the inbox is drained. It prints acknowledged, lost, duplicate runs, stops, dead
# letters and wall time, and exits non-zero on a lost delivery, a duplicate no stop explains,
# any duplicate after a graceful stop, or more duplicates after one kill than the workers.
# With --store postgres the deliveries are charge.captured events, which the server's
# exactly-once handler (it takes the app's transaction) books in the table captured_charges of
# the run's schema, which has no unique constraint; beside it the `*` handler is the plain one
# whose runs are counted as above. At the end the run counts the table's rows per event, prints
# `rows: lost X, duplicated Y` and exits non-zero on any lost or duplicated row.
#
#   scripts/chaos.sh                                   # SQLite, SIGKILL
#   scripts/chaos.sh --signal term                     # SQLite, SIGTERM
#   scripts/chaos.sh --store redis --redis-url redis://127.0.0.1:6379/   # two replicas
#   scripts/chaos.sh --store postgres --postgres-url postgres://postgres@127.0.0.1:PORT/nextgen_test
#                                                      # two replicas, a fresh schema per run
#   scripts/chaos.sh --smoke                           # seconds: what CI runs
#
# Every other argument goes to the chaos binary (`--help` lists them). --store redis needs a
# running redis-server, --store postgres a running PostgreSQL (its URL names the database, no
# schema: each run makes `chaos_<pid>_<ms>` there, so runs never see each other's entries, and
# drops it when it passed; the URL may also come from NEXTGEN_TEST_POSTGRES_URL): the script
# starts neither.
# `scripts/postgres.sh start DIR` starts a throwaway PostgreSQL and prints its URL.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

args=()
for arg in "$@"; do
    case $arg in
        --smoke) args+=(--deliveries 300 --senders 8 --stop-every-ms 300 --min-stops 3) ;;
        *) args+=("$arg") ;;
    esac
done

cargo build --release -q -p nextgen-examples --bin server --bin chaos
exec "$root/target/release/chaos" --server "$root/target/release/server" "${args[@]}"
