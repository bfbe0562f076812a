# Shared by scripts/load.sh, scripts/bench-http.sh and scripts/bench-inbox.sh: wrk, the release
# example server, and signed deliveries. Source it from a script that has `set -euo pipefail`.
#
# Smoke mode (`--smoke` as a script's first argument, which sets smoke=1 here): what CI runs so
# that the scripts cannot rot. The server and trigger are the debug build (no release build),
# each wrk run lasts 1 s on 4 connections over a few hundred events (bench-inbox.sh's floor
# bench is the dev-profile build too), and `smoke_check` fails
# the script when a run sent nothing or got an answer other than 2xx. The figures it prints
# mean nothing.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
smoke=${smoke:-0}
profile=release
((smoke == 0)) || profile=debug
work=$(mktemp -d)
server_pid=

cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Installs wrk (Debian package) when it is missing; checks for python3 and curl.
need_tools() {
    if ! command -v wrk >/dev/null 2>&1; then
        echo "== installing wrk"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
    command -v python3 >/dev/null || { echo "python3 is needed to sign the requests" >&2; exit 2; }
    command -v curl >/dev/null || { echo "curl is needed to probe the server" >&2; exit 2; }
}

# Builds the example server in release mode and starts it on a free loopback port with a
# fresh secret (kept across restarts), and with the environment given as arguments
# (`start_server NEXTGEN_INBOX_SQLITE=/tmp/x`). Sets: secret, base (http://127.0.0.1:PORT),
# server_pid. `stop_server` stops it. It serves the unauthenticated benchmark routes (`/echo`,
# `/floor`, `/ledger`), which the server only serves with NEXTGEN_BENCH_ROUTES=1. Its log is
# $work/server.log, or $server_log when set: several servers can then run at once (the caller
# keeps their pids; `stop_server` only knows the last).
start_server() {
    if [[ -z ${server_built:-} ]]; then
        echo "== building the example server ($profile)"
        local build=(--release)
        ((smoke == 0)) || build=()
        (cd "$root" && cargo build "${build[@]}" -q -p nextgen-examples --bin server && cargo build "${build[@]}" -q -p nextgen-cli --bin nextgen)
        server_built=1
    fi
    local port
    target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    secret=${secret:-whsec_load_$(python3 -c 'import secrets; print(secrets.token_hex(16))')}
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    base=http://127.0.0.1:$port
    echo "== starting the server on 127.0.0.1:$port${*:+ with $*}"
    env HOST=127.0.0.1 PORT=$port RUST_LOG=warn NEXTGEN_WEBHOOK_SECRET=$secret NEXTGEN_BENCH_ROUTES=1 "$@" \
        "$target_dir/$profile/server" >"${server_log:-$work/server.log}" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "$base/healthz" >/dev/null 2>&1 && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "the server exited:" >&2
            cat "${server_log:-$work/server.log}" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "the server did not answer /healthz" >&2
    exit 1
}

stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}

# Signs $1 distinct charge.succeeded deliveries into $work/requests.tsv, checks the first
# is accepted (a wrong signature would otherwise show as 100% non-2xx), and sets: requests,
# body_bytes.
sign_deliveries() {
    requests=$work/requests.tsv
    echo "== signing $1 distinct charge.succeeded deliveries"
    # The samples of nextgen_events::testing, signed by `nextgen trigger`: one source of events.
    NEXTGEN_WEBHOOK_SECRET=$secret "$target_dir/$profile/nextgen" trigger charge.succeeded \
        --write "$requests" --count "$1" >/dev/null
    body_bytes=$(head -n 1 "$requests" | cut -f2- | tr -d '\n' | wc -c)
    head -n 1 "$requests" | cut -f2- | tr -d '\n' >"$work/first.json"
    local status
    status=$(curl -sS -o "$work/first.out" -w '%{http_code}' -X POST "$base/webhook" \
        -H 'Content-Type: application/json' -H "NextGen-Signature: $(head -n 1 "$requests" | cut -f1)" \
        --data-binary "@$work/first.json")
    if [[ $status != 200 ]]; then
        echo "a signed delivery was answered $status, not 200:" >&2
        cat "$work/first.out" >&2
        exit 1
    fi
}

# Runs wrk with scripts/load.lua against path $1 for $2 seconds on $3 connections; the output
# goes to $work/wrk-<name>.out, where <name> is $4.
run_wrk() {
    echo "== wrk -t2 -c$3 -d${2}s --latency -s scripts/load.lua $base$1"
    NEXTGEN_LOAD_REQUESTS=$requests NEXTGEN_LOAD_PATH=$1 wrk -t2 -c"$3" -d"${2}s" --latency \
        -s "$root/scripts/load.lua" "$base$1" | tee "$work/wrk-$4.out"
}

# A LOAD line's value from a wrk output file: `load_value FILE KEY`.
load_value() { awk -v key="$2" '$1 == "LOAD" && $2 == key { print $3 }' "$1"; }

# Smoke mode: fails unless the wrk run named $1 sent requests and every answer was 2xx.
smoke_check() {
    local out=$work/wrk-$1.out sent bad
    sent=$(load_value "$out" requests)
    bad=$(load_value "$out" non2xx)
    if [[ -z $sent || $sent -eq 0 || $bad != 0 ]]; then
        echo "smoke: the $1 run sent ${sent:-no} requests, ${bad:-?} answered other than 2xx:" >&2
        cat "$out" >&2
        tail -n 20 "$work/server.log" >&2 || true
        exit 1
    fi
    echo "smoke: $1 ok ($sent requests, all 2xx)"
}
