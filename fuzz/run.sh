#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after another, with one
# libFuzzer process and one job, then prints per target: executions, corpus size, crashes.
#
#   fuzz/run.sh SECONDS [TARGET...]        e.g. fuzz/run.sh 600, fuzz/run.sh 60 header
#
# Seeds are read from fuzz/corpus/<target>/ and never written to: what libFuzzer finds goes to
# fuzz/work/corpus/<target>/ (kept between runs), crashes to fuzz/artifacts/<target>/, each
# target's full output to fuzz/work/logs/<target>.log.
#
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass the nightly-only
# flags it needs (-Zsanitizer=address, ...). A build that fails on a Rust error (the library
# being edited) is retried every 30 s for 5 min; one that fails otherwise is taken for a
# missing sanitizer, and the target is built and run with --sanitizer none. With CI set (as
# .ci/run runs), a Rust error is not waited out: the build fails at once (exit 2).
#
# FUZZ_FEATURES=strict also checks the invariants known to fail today (see README.md).
#
# Exit status: 0 when no target crashed, 1 when one did, 2 for a usage or build error.
set -uo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]   (targets: $(cd "$(dirname "${BASH_SOURCE[0]}")/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//' | tr '\n' ' '))" >&2
    exit 2
}

[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift
targets=("$@")
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$fuzz_dir" || exit 2
# Every target in fuzz_targets/ by default, so a new one is never left out.
if [[ ${#targets[@]} -eq 0 ]]; then
    for file in fuzz_targets/*.rs; do
        file=${file#fuzz_targets/}
        targets+=("${file%.rs}")
    done
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked || {
        echo "error: could not install cargo-fuzz" >&2
        exit 2
    }
fi

mkdir -p work/logs
echo "== $(rustc --version), $(cargo fuzz --version) (RUSTC_BOOTSTRAP=1: no nightly toolchain needed)"
summary=()
crashed=0

for target in "${targets[@]}"; do
    if [[ ! -f fuzz_targets/$target.rs ]]; then
        echo "error: no fuzz target \`$target\` (fuzz_targets/$target.rs)" >&2
        exit 2
    fi
    seeds=corpus/$target
    corpus=work/corpus/$target
    artifacts=artifacts/$target
    log=work/logs/$target.log
    mkdir -p "$seeds" "$corpus" "$artifacts"

    build_args=()
    [[ -z ${FUZZ_FEATURES:-} ]] || build_args=(--features "$FUZZ_FEATURES")
    echo "== building $target"
    built=
    sanitizer=address
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if cargo fuzz build "${build_args[@]}" "$target" >"$log" 2>&1; then
            built=yes
            break
        fi
        # A Rust error in the library (someone is editing it) is waited out; anything else is
        # taken for a toolchain without sanitizer support.
        grep -A1 -E '^error\[E[0-9]+\]' "$log" | grep -E '^ *--> ' | grep -qv 'fuzz_targets/' || break
        if [[ -n ${CI:-} ]]; then
            echo "error: $target does not build (the library has a Rust error); see $log" >&2
            grep -m 20 -E '^error|-->' "$log" >&2
            exit 2
        fi
        echo "   the library does not compile right now (attempt $attempt, see $log); retrying in 30s"
        sleep 30
    done
    if [[ -z $built ]]; then
        echo "   the sanitizer build failed (see $log); retrying with --sanitizer none"
        build_args+=(--sanitizer none)
        sanitizer=none
        if ! cargo fuzz build "${build_args[@]}" "$target" >>"$log" 2>&1; then
            echo "error: $target does not build; see $log" >&2
            tail -n 20 "$log" >&2
            exit 2
        fi
    fi

    before=$(find "$artifacts" -type f | wc -l)
    echo "== fuzzing $target for ${seconds}s (log: fuzz/$log)"
    # One process, one job; new inputs go to the first corpus directory only.
    cargo fuzz run "${build_args[@]}" "$target" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >>"$log" 2>&1
    status=$?

    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$')
    [[ -n $runs ]] || runs=$(grep -oE '^Done [0-9]+ runs' "$log" | tail -n 1 | grep -oE '[0-9]+')
    [[ -n $runs ]] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[bKMG]?b' "$log" | tail -n 1 | sed 's/corp: //')
    corp_entries=${corp%%/*}
    corp_bytes=${corp#*/}
    files=$(find "$corpus" -type f | wc -l)
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
    after=$(find "$artifacts" -type f | wc -l)

    if [[ $status -ne 0 || $after -gt $before ]]; then
        crashed=1
        artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
        message=$(grep -A1 -m1 'panicked at' "$log" | tr '\n' ' ')
        [[ -n $message ]] || message=$(grep -m1 -E 'ERROR: (libFuzzer|AddressSanitizer)' "$log")
        verdict="CRASH (exit $status): ${artifact:-no artifact written}; ${message:-see the log}"
    else
        verdict="no crash"
    fi
    line=$(printf '%-16s executions: %-11s exec/s: %-7s corpus: %s entries, %s (%s files in fuzz/%s)  sanitizer: %s  %s' \
        "$target" "${runs:-?}" "${rate:-?}" "${corp_entries:-?}" "${corp_bytes:-?}" "$files" "$corpus" "$sanitizer" "$verdict")
    echo "   $line"
    summary+=("$line")
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$crashed"
