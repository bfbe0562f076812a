#!/usr/bin/env bash
# The HTTP route's overhead: the example server's POST /webhook (verify, parse, dispatch to the
# charge.succeeded handlers) against its bare POST /echo (reads the same body within the same
# 1 MiB limit and answers 200 {"received": true}) and its POST /floor (the body read as /echo
# reads it, one signature check, one typed parse: the least any webhook route does), with the
# same signed bodies, the same connections and duration, one after the other on one server.
#
#   scripts/bench-http.sh [DURATION_SECONDS=20] [CONNECTIONS=64]
#   scripts/bench-http.sh --smoke   # CI: debug build, 1 s per run, 4 connections, 200 events;
#                                   # fails unless every answer is 2xx (see scripts/lib.sh)
#
# Each route is measured twice, alternating (echo, floor, webhook, echo, ...), and the better run
# of each counts, so that a slow moment of the machine does not decide the ratio.
# NEXTGEN_LOAD_EVENTS (default 10000) distinct events are cycled through: after its first
# delivery an event id is answered by the idempotency store without running the handlers
# again, as a redelivery is; verification and parsing run for every request.
set -euo pipefail

smoke=0
if [[ ${1:-} == --smoke ]]; then
    smoke=1
    shift
fi
duration=${1:-20}
connections=${2:-64}
events=${NEXTGEN_LOAD_EVENTS:-10000}
if ((smoke)); then
    duration=1 connections=4 events=${NEXTGEN_LOAD_EVENTS:-200}
fi
[[ $duration =~ ^[0-9]+$ && $duration -gt 0 && $duration -le 60 ]] ||
    { echo "usage: $0 [DURATION_SECONDS=20, at most 60] [CONNECTIONS=64]" >&2; exit 2; }
[[ $connections =~ ^[0-9]+$ && $connections -ge 2 ]] ||
    { echo "CONNECTIONS must be 2 or more (wrk -t2)" >&2; exit 2; }

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_tools
start_server
sign_deliveries "$events"

for round in 1 2; do
    run_wrk /echo "$duration" "$connections" "echo-$round"
    run_wrk /floor "$duration" "$connections" "floor-$round"
    run_wrk /webhook "$duration" "$connections" "webhook-$round"
    if ((smoke)); then
        for name in echo floor webhook; do smoke_check "$name-$round"; done
    fi
done

best() {
    for round in 1 2; do load_value "$work/wrk-$1-$round.out" rps; done | sort -g | tail -n 1
}
bad() {
    local total=0
    for round in 1 2; do total=$((total + $(load_value "$work/wrk-$1-$round.out" non2xx))); done
    echo "$total"
}
echo_rps=$(best echo)
floor_rps=$(best floor)
webhook_rps=$(best webhook)
echo
echo "== results: $(nproc) cores, ${duration}s x 2 per route, $connections connections, ${body_bytes}-byte bodies"
echo "bare POST /echo:     $echo_rps requests/s   (non-2xx: $(bad echo))"
echo "POST /floor:         $floor_rps requests/s   (non-2xx: $(bad floor))"
echo "POST /webhook:       $webhook_rps requests/s   (non-2xx: $(bad webhook))"
python3 -c "print(f'webhook / bare:      {$webhook_rps / $echo_rps:.3f}   (target >= 0.85)')"
python3 -c "print(f'floor / bare:        {$floor_rps / $echo_rps:.3f}   (what a route doing only the floor scores)')"
python3 -c "print(f'webhook / floor:     {$webhook_rps / $floor_rps:.3f}')"
