#!/usr/bin/env bash
# The inbox route's throughput against its floor, in one run on one machine:
#
#   bare      POST /echo: reads the body and answers 200, nothing else
#   inline    POST /webhook, inline mode, in-memory store (handlers before the answer)
#   full      POST /webhook, SQLite inbox, synchronous=FULL (the default): 200 after the commit
#   normal    the same with synchronous=NORMAL
#   redis     POST /webhook, Redis inbox (appendonly yes, appendfsync always), when the server
#             supports NEXTGEN_INBOX_REDIS and redis-server is installed
#   floor     the same rows written by a plain rusqlite group-commit writer fed by as many
#             producers as connections, no HTTP (nextgen-events/benches/inbox_floor.rs)
#   postgres  POST /webhook, PostgreSQL inbox (NEXTGEN_INBOX_URL=postgres://...?schema=<fresh>):
#             200 after the COMMIT of the batch the delivery was appended in
#   pg floor  the same rows (one in nextgen_inbox, one in nextgen_inbox_bodies, the same ~1 KiB
#             body) written by plain sqlx from as many producers as connections, each on its
#             own connection, one transaction and so one commit per row, no HTTP, in a fresh
#             schema of the same PostgreSQL server (nextgen-events/benches/postgres_floor.rs)
#   drain     handled per second by 4 workers per replica (NEXTGEN_INBOX_WORKERS=4), 1 replica
#             and then 3, each from a PostgreSQL inbox preloaded with NEXTGEN_BENCH_DRAIN_EVENTS
#             deliveries (default 20000) through the route with no workers; timed from the
#             moment every replica answers /healthz until `nextgen inbox stats` counts them all
#             handled. NEXTGEN_BENCH_DRAIN_EVENTS=0 skips it.
#
#   scripts/bench-inbox.sh [DURATION_SECONDS=10] [CONNECTIONS=64]
#   scripts/bench-inbox.sh --smoke  # CI: debug servers, 1 s per route, 4 connections, 500
#                                   # events, a drain of 200; fails unless every answer is 2xx
#                                   # (scripts/lib.sh) and every drained delivery is handled
#
# Every request carries a new event id (NEXTGEN_LOAD_EVENTS, default 200000, distinct
# deliveries), so each answer of an inbox route is one committed row. The inbox servers run
# with NEXTGEN_INBOX_WORKERS=0: this measures taking deliveries in, not handling them (the
# drain measures that).
#
# Which PostgreSQL: NEXTGEN_BENCH_POSTGRES_URL=postgres://USER@HOST:PORT/DB (no ?schema=) names
# a server to use; the runs get fresh schemas (nextgen_bench_*, nextgen_floor_*), dropped at the
# end (the route's and the drain's with psql, when it is on PATH). Without it, when PostgreSQL is
# installed, a throwaway cluster is started with scripts/postgres.sh (fsync on, the server's
# defaults otherwise: synchronous_commit on) in a fresh directory under /tmp (at the start, idle
# until the PostgreSQL rows), and stopped and removed at the end. When PostgreSQL is not
# installed, or NEXTGEN_BENCH_POSTGRES_URL=off, the PostgreSQL rows are skipped and the reason
# printed. The server, wrk, the floor and PostgreSQL all share the machine: on 2 cores, what one
# takes the others lack.
set -euo pipefail

smoke=0
if [[ ${1:-} == --smoke ]]; then
    smoke=1
    shift
fi
duration=${1:-10}
connections=${2:-64}
events=${NEXTGEN_LOAD_EVENTS:-200000}
if ((smoke)); then
    duration=1 connections=4 events=${NEXTGEN_LOAD_EVENTS:-500}
fi
[[ $duration =~ ^[0-9]+$ && $duration -gt 0 && $duration -le 60 ]] ||
    { echo "usage: $0 [DURATION_SECONDS=10, at most 60] [CONNECTIONS=64]" >&2; exit 2; }

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tools

redis_pid=
stop_redis() {
    if [[ -n $redis_pid ]]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=
    fi
}

# PostgreSQL: the URL (empty when skipped, with the reason in pg_skipped), the throwaway
# cluster's directory when this script started one, the schemas made, the drain's replicas.
pg_url= pg_skipped= pg_dir= pg_schemas=() replica_pids=() preload_pid=
stop_replicas() {
    local pid
    for pid in "${replica_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${replica_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    replica_pids=()
}
stop_postgres() {
    if [[ -n $preload_pid ]]; then
        kill "$preload_pid" 2>/dev/null || true
        wait "$preload_pid" 2>/dev/null || true
        preload_pid=
    fi
    stop_replicas
    if [[ -n $pg_dir ]]; then
        "$root/scripts/postgres.sh" stop "$pg_dir" 2>/dev/null || true
        pg_dir=
    elif [[ -n $pg_url && ${#pg_schemas[@]} -gt 0 ]]; then
        # Stopped first: a server still connected would hold the schema's tables.
        stop_server
        local list
        list=$(IFS=,; echo "${pg_schemas[*]}")
        if command -v psql >/dev/null; then
            psql "$pg_url" -XAtq -c "DROP SCHEMA IF EXISTS $list CASCADE" >/dev/null 2>&1 ||
                echo "note: could not drop the schemas $list from $pg_url" >&2
        else
            echo "note: no psql to drop the schemas $list from $pg_url: drop them yourself" >&2
        fi
    fi
    pg_schemas=()
}
trap 'stop_redis; stop_postgres; cleanup' EXIT

drain_events=${NEXTGEN_BENCH_DRAIN_EVENTS:-20000}
((smoke == 0)) || drain_events=${NEXTGEN_BENCH_DRAIN_EVENTS:-200}
[[ $drain_events =~ ^[0-9]+$ && $drain_events -le $events ]] ||
    { echo "NEXTGEN_BENCH_DRAIN_EVENTS must be a number of at most NEXTGEN_LOAD_EVENTS ($events)" >&2; exit 2; }
# How long the drain of one replica count may take before the script gives up.
drain_timeout=${NEXTGEN_BENCH_DRAIN_TIMEOUT:-600}

# Whether the server binaries are there, as scripts/postgres.sh looks for them.
pg_installed() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
        { command -v pg_ctl >/dev/null && command -v initdb >/dev/null; }
}
case ${NEXTGEN_BENCH_POSTGRES_URL:-} in
    off) pg_skipped="NEXTGEN_BENCH_POSTGRES_URL=off" ;;
    *\?schema=* | *\&schema=*)
        echo "NEXTGEN_BENCH_POSTGRES_URL must name the database only: the runs make their own schemas" >&2
        exit 2 ;;
    postgres://* | postgresql://*) pg_url=$NEXTGEN_BENCH_POSTGRES_URL ;;
    '')
        if pg_installed; then
            pg_dir=$(mktemp -d /tmp/nextgen-bench-pg.XXXXXX)
            echo "== starting a throwaway PostgreSQL cluster in $pg_dir"
            if ! pg_url=$("$root/scripts/postgres.sh" start "$pg_dir" 2>"$work/postgres-start.log"); then
                cat "$work/postgres-start.log" >&2
                echo "could not start a PostgreSQL cluster (scripts/postgres.sh, log above)" >&2
                exit 1
            fi
        else
            pg_skipped="PostgreSQL is not installed (no initdb; apt-get install postgresql) and NEXTGEN_BENCH_POSTGRES_URL is not set"
        fi ;;
    *)
        echo "NEXTGEN_BENCH_POSTGRES_URL must be a postgres:// URL or \`off\`" >&2
        exit 2 ;;
esac

bench_profile=()
((smoke == 0)) || bench_profile=(--profile dev) # smoke: no optimized build

start_server
sign_deliveries "$events"
run_wrk /echo "$duration" "$connections" bare
run_wrk /webhook "$duration" "$connections" inline
stop_server

for sync in full normal; do
    start_server NEXTGEN_INBOX_SQLITE="$work/inbox-$sync.sqlite3" NEXTGEN_INBOX_WORKERS=0 \
        NEXTGEN_INBOX_DURABILITY=$sync
    run_wrk /webhook "$duration" "$connections" "$sync"
    stop_server
done

if command -v redis-server >/dev/null && grep -q NEXTGEN_INBOX_REDIS "$root/examples/src/bin/server/main.rs"; then
    redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync always --dir "$work" >"$work/redis.log" 2>&1 &
    redis_pid=$!
    sleep 0.5
    start_server NEXTGEN_INBOX_REDIS="redis://127.0.0.1:$redis_port/" NEXTGEN_INBOX_WORKERS=0
    run_wrk /webhook "$duration" "$connections" redis
    stop_server
    stop_redis
fi

# --- PostgreSQL: the route, its floor, the drain -------------------------------------------
# The URL of the inbox in schema $1.
pg_inbox_url() {
    local separator='?'
    [[ $pg_url != *\?* ]] || separator='&'
    printf '%s%sschema=%s' "$pg_url" "$separator" "$1"
}
# `pg_counts SCHEMA`: the inbox's counts as the operator tool reads them, `pending handled dead`.
pg_counts() {
    "$target_dir/$profile/nextgen" inbox --postgres "$pg_url" --schema "$1" stats --json |
        python3 -c "import json, sys; s = json.load(sys.stdin); print(s['pending'], s['handled'], s['dead'])"
}
now() { date +%s.%N; }

# `drain REPLICAS`: preloads $drain_events deliveries into a fresh schema through the route
# (no workers), then starts REPLICAS servers with 4 workers each on it and times the drain.
# Writes $work/drain-REPLICAS.out: `DRAIN handled_per_second <n>` and the counts.
drain() {
    local replicas=$1 schema url pending handled dead started t0 h0 t1 i
    schema=nextgen_bench_drain${replicas}_$suffix
    pg_schemas+=("$schema")
    url=$(pg_inbox_url "$schema")
    echo "== drain, $replicas replica(s) x 4 workers: preloading $drain_events deliveries into $schema"
    start_server NEXTGEN_INBOX_URL="$url" NEXTGEN_INBOX_WORKERS=0
    # wrk cycles through exactly these deliveries (a second sending of one is a duplicate,
    # which writes nothing) until the inbox holds them all.
    NEXTGEN_LOAD_REQUESTS=$work/drain.tsv NEXTGEN_LOAD_PATH=/webhook wrk -t2 -c"$connections" -d60s \
        -s "$root/scripts/load.lua" "$base/webhook" >"$work/wrk-preload-$replicas.out" 2>&1 &
    preload_pid=$!
    started=$SECONDS
    until read -r pending _ _ < <(pg_counts "$schema") && ((pending >= drain_events)); do
        if ! kill -0 "$preload_pid" 2>/dev/null || ((SECONDS - started > 70)); then
            echo "the preload stopped at $pending of $drain_events deliveries:" >&2
            cat "$work/wrk-preload-$replicas.out" >&2
            exit 1
        fi
        sleep 0.2
    done
    kill "$preload_pid" 2>/dev/null || true
    wait "$preload_pid" 2>/dev/null || true
    preload_pid=
    stop_server

    for i in $(seq 1 "$replicas"); do
        server_log=$work/server-drain-$replicas-$i.log
        start_server NEXTGEN_INBOX_URL="$url" NEXTGEN_INBOX_WORKERS=4
        replica_pids+=("$server_pid")
        server_pid=
    done
    unset server_log
    t0=$(now)
    read -r _ h0 _ < <(pg_counts "$schema")
    started=$SECONDS
    while :; do
        read -r _ handled dead < <(pg_counts "$schema") || true
        ((${handled:-0} + ${dead:-0} < drain_events)) || break
        if ((SECONDS - started > drain_timeout)); then
            echo "the drain did not finish in ${drain_timeout}s: $handled handled, $dead dead of $drain_events" >&2
            tail -n 20 "$work/server-drain-$replicas-1.log" >&2 || true
            exit 1
        fi
        sleep 0.25
    done
    t1=$(now)
    stop_replicas
    {
        echo "DRAIN deliveries $drain_events"
        echo "DRAIN handled_before_timing $h0"
        echo "DRAIN handled $handled"
        echo "DRAIN dead $dead"
        python3 -c "
timed, seconds = $drain_events - $h0, $t1 - $t0
print(f'DRAIN seconds {seconds:.2f}')
print(f'DRAIN handled_per_second {timed / seconds:.0f}' if timed >= 50 else 'DRAIN handled_per_second too-few-to-time')"
    } | tee "$work/drain-$replicas.out"
}

if [[ -n $pg_url ]]; then
    echo "== PostgreSQL at $pg_url"
    suffix=$(date +%s)_$$
    route_schema=nextgen_bench_route_$suffix
    pg_schemas+=("$route_schema")
    start_server NEXTGEN_INBOX_URL="$(pg_inbox_url "$route_schema")" NEXTGEN_INBOX_WORKERS=0
    run_wrk /webhook "$duration" "$connections" postgres
    stop_server
    read -r pg_rows _ _ < <(pg_counts "$route_schema")
    echo "rows in $route_schema: $pg_rows"

    echo "== pg floor: plain sqlx, $connections producers, one transaction per row"
    (cd "$root" && cargo bench -q "${bench_profile[@]}" -p nextgen-events --features postgres --bench postgres_floor -- \
        "$pg_url" "$duration" "$connections") | tee "$work/pg-floor.out"
    pg_floor=$(awk '$1 == "FLOOR" { print $3 }' "$work/pg-floor.out")

    if ((drain_events > 0)); then
        head -n "$drain_events" "$requests" >"$work/drain.tsv"
        drain 1
        drain 3
    fi
fi

echo "== floor: a plain rusqlite group-commit writer, $connections producers"
(cd "$root" && cargo bench -q "${bench_profile[@]}" -p nextgen-events --features sqlite --bench inbox_floor -- \
    "$duration" "$connections" full) | tee "$work/floor.out"
floor=$(awk '$1 == "FLOOR" { print $3 }' "$work/floor.out")

echo
echo "== results: $(nproc) cores, ${duration}s per route, $connections connections, ${body_bytes}-byte bodies"
for name in bare inline full normal redis; do
    [[ -f $work/wrk-$name.out ]] || continue
    printf '%-8s %10s requests/s   (non-2xx: %s)\n' "$name" \
        "$(load_value "$work/wrk-$name.out" rps)" "$(load_value "$work/wrk-$name.out" non2xx)"
done
printf '%-8s %10s rows/s\n' floor "$floor"
python3 -c "print(f'full / floor: {$(load_value "$work/wrk-full.out" rps) / $floor:.3f}   (target >= 0.7)')"
if [[ -n $pg_url ]]; then
    printf '%-8s %10s requests/s   (non-2xx: %s; %s rows in its inbox)\n' postgres \
        "$(load_value "$work/wrk-postgres.out" rps)" "$(load_value "$work/wrk-postgres.out" non2xx)" "$pg_rows"
    printf '%-8s %10s rows/s\n' "pg floor" "$pg_floor"
    python3 -c "print(f'postgres / pg floor: {$(load_value "$work/wrk-postgres.out" rps) / $pg_floor:.3f}   (target >= 0.8)')"
    for replicas in 1 3; do
        [[ -f $work/drain-$replicas.out ]] || continue
        printf 'drain, %s replica(s) x 4 workers: %s handled/s   (%s deliveries in %s s, %s dead)\n' "$replicas" \
            "$(awk '$2 == "handled_per_second" { print $3 }' "$work/drain-$replicas.out")" "$drain_events" \
            "$(awk '$2 == "seconds" { print $3 }' "$work/drain-$replicas.out")" \
            "$(awk '$2 == "dead" { print $3 }' "$work/drain-$replicas.out")"
    done
else
    echo "postgres, pg floor, drain: skipped: $pg_skipped"
fi
for name in full normal redis postgres; do
    [[ -f $work/wrk-$name.out ]] || continue
    sent=$(load_value "$work/wrk-$name.out" requests)
    if (( smoke == 0 && sent > events )); then
        echo "warning: $name sent $sent requests for $events distinct events: the rest were duplicates, which write nothing; raise NEXTGEN_LOAD_EVENTS or shorten the run" >&2
    fi
done
if ((smoke)); then
    for name in bare inline full normal redis postgres; do
        [[ ! -f $work/wrk-$name.out ]] || smoke_check "$name"
    done
    [[ -n $floor ]] || { echo "smoke: the floor bench printed no FLOOR line" >&2; exit 1; }
    echo "smoke: floor ok ($floor rows/s)"
    if [[ -n $pg_url ]]; then
        [[ -n $pg_floor ]] || { echo "smoke: the pg floor bench printed no FLOOR line" >&2; exit 1; }
        echo "smoke: pg floor ok ($pg_floor rows/s)"
        for replicas in 1 3; do
            [[ -f $work/drain-$replicas.out ]] || continue
            if [[ $(awk '$2 == "dead" { print $3 }' "$work/drain-$replicas.out") != 0 ]]; then
                echo "smoke: the drain with $replicas replica(s) left dead letters" >&2
                exit 1
            fi
            echo "smoke: drain with $replicas replica(s) ok ($drain_events handled)"
        done
    else
        echo "smoke: postgres skipped: $pg_skipped"
    fi
fi
