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
#
#   scripts/bench-inbox.sh [DURATION_SECONDS=10] [CONNECTIONS=64]
#   scripts/bench-inbox.sh --smoke  # CI: debug servers, 1 s per route, 4 connections, 500
#                                   # events; fails unless every answer is 2xx (scripts/lib.sh)
#
# Every request carries a new event id (NEXTGEN_LOAD_EVENTS, default 200000, distinct
# deliveries), so each answer of an inbox route is one committed row. The inbox servers run
# with NEXTGEN_INBOX_WORKERS=0: this measures taking deliveries in, not handling them.
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
trap 'stop_redis; cleanup' EXIT

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

echo "== floor: a plain rusqlite group-commit writer, $connections producers"
bench_profile=()
((smoke == 0)) || bench_profile=(--profile dev) # smoke: no optimized build
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
for name in full normal redis; do
    [[ -f $work/wrk-$name.out ]] || continue
    sent=$(load_value "$work/wrk-$name.out" requests)
    if (( smoke == 0 && sent > events )); then
        echo "warning: $name sent $sent requests for $events distinct events: the rest were duplicates, which write nothing; raise NEXTGEN_LOAD_EVENTS or shorten the run" >&2
    fi
done
if ((smoke)); then
    for name in bare inline full normal redis; do
        [[ ! -f $work/wrk-$name.out ]] || smoke_check "$name"
    done
    [[ -n $floor ]] || { echo "smoke: the floor bench printed no FLOOR line" >&2; exit 1; }
    echo "smoke: floor ok ($floor rows/s)"
fi
