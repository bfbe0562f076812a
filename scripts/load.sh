#!/usr/bin/env bash
# Load test of the example server's webhook endpoint with wrk.
#
#   scripts/load.sh [DURATION_SECONDS=60] [CONNECTIONS=64]
#   scripts/load.sh --smoke     # CI: debug build, 1 s, 4 connections, 200 events; fails unless
#                               # every answer is 2xx (see scripts/lib.sh)
#
# 1. installs wrk with apt-get when it is missing;
# 2. builds the example server in release mode and starts it on a free loopback port, with
#    RUST_LOG=warn (so logging does not dominate) and a fresh NEXTGEN_WEBHOOK_SECRET;
# 3. signs NEXTGEN_LOAD_EVENTS (default 10000) distinct charge.succeeded deliveries at the
#    current time (`nextgen trigger --write`: wrk's Lua has no HMAC);
# 4. runs `wrk -t2 -c$CONNECTIONS -d${DURATION}s --latency -s scripts/load.lua` against
#    POST /webhook, cycling through the signed deliveries;
# 5. prints requests/s, latency percentiles, non-2xx responses, socket errors, the status
#    codes seen, the server's resident memory before and after, and how many charges the
#    server's handler recorded; then stops the server (also on Ctrl-C or failure).
#
# The signatures are valid for the 300 s replay window, so keep DURATION well under 5 min.
# Each event id is sent many times: after its first delivery the server's idempotency store
# answers it without running the handlers again (a redelivery), so the run measures
# verification and envelope parsing for every request, and the handlers for the first pass.
set -euo pipefail

smoke=0
if [[ ${1:-} == --smoke ]]; then
    smoke=1
    shift
fi
duration=${1:-60}
connections=${2:-64}
events=${NEXTGEN_LOAD_EVENTS:-10000}
if ((smoke)); then
    duration=1 connections=4 events=${NEXTGEN_LOAD_EVENTS:-200}
fi
[[ $duration =~ ^[0-9]+$ && $duration -gt 0 ]] || { echo "usage: $0 [DURATION_SECONDS=60] [CONNECTIONS=64]" >&2; exit 2; }
[[ $connections =~ ^[0-9]+$ && $connections -ge 2 ]] || { echo "CONNECTIONS must be 2 or more (wrk -t2)" >&2; exit 2; }
if ((duration > 240)); then
    echo "DURATION must be at most 240 s: the deliveries are signed once, and the replay window is 300 s" >&2
    exit 2
fi

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tools
start_server

rss() { awk '/^VmRSS:/ { print $2 " " $3 }' "/proc/$server_pid/status"; }
hwm() { awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$server_pid/status"; }
rss_before=$(rss)

sign_deliveries "$events"
run_wrk /webhook "$duration" "$connections" load
out=$work/wrk-load.out

rss_after=$(rss)
rss_peak=$(hwm)
ledger=$(curl -fsS "$base/ledger" || echo '?')
alive=yes
kill -0 "$server_pid" 2>/dev/null || alive=no
warnings=$(grep -c . "$work/server.log" || true)

echo
echo "== results: ${duration}s, $connections connections, 2 wrk threads, $events distinct events, ${body_bytes}-byte bodies"
echo "requests:        $(load_value "$out" requests) in $(load_value "$out" duration_s) s"
echo "requests/s:      $(load_value "$out" rps)"
echo "latency p50:     $(load_value "$out" p50_ms) ms"
echo "latency p90:     $(load_value "$out" p90_ms) ms"
echo "latency p99:     $(load_value "$out" p99_ms) ms"
echo "latency p99.9:   $(load_value "$out" p99.9_ms) ms   (max $(load_value "$out" max_ms) ms, mean $(load_value "$out" mean_ms) ms)"
echo "non-2xx:         $(load_value "$out" non2xx)"
echo "socket errors:   $(awk '$1 == "LOAD" && $2 == "socket_errors" { print $3, $4, $5, $6 }' "$out")"
echo "statuses:        $(awk '$1 == "LOAD" && $2 == "statuses" { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' "$out")"
echo "server VmRSS:    before $rss_before, after $rss_after (peak VmHWM $rss_peak)"
echo "ledger:          $ledger   (charges whose handler ran: one per distinct event expected)"
echo "server alive:    $alive; server log lines at RUST_LOG=warn: $warnings"
if ((warnings > 0)); then
    echo "first server log lines:"
    head -n 5 "$work/server.log"
fi
((smoke == 0)) || smoke_check load
