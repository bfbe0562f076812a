#!/usr/bin/env bash
# Writes the `envelope` target's sample seeds, fuzz/corpus/envelope/sample_<event type>: one
# body per catalog type, from the shared samples (`nextgen_events::testing::sample`, through
# `nextgen trigger --write`), so the fuzz seeds come from the same place as every other sample.
# The hand-written seeds beside them (01_..., 02_...) cover what samples do not: broken JSON,
# arrays, unknown types.
#
#   fuzz/seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p nextgen-cli --bin nextgen
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
trigger="$target_dir/debug/nextgen trigger"
out=fuzz/corpus/envelope
written=$(mktemp)
trap 'rm -f "$written"' EXIT

for event_type in $($trigger --list | tail -n +2 | awk '{ print $1 }'); do
    $trigger "$event_type" --write "$written" --secret whsec_fuzz_seeds >/dev/null
    # The body only: the envelope target reads bodies, not signatures.
    cut -f2- "$written" | tr -d '\n' >"$out/sample_$event_type"
done
echo "wrote $(ls "$out"/sample_* | wc -l) sample seeds to $out"
