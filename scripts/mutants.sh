#!/usr/bin/env bash
# Mutation testing with cargo-mutants on the files users trust most: the signature scheme, the
# actix module (body reading and answers), the configuration, the idempotency stores (the
# in-memory one, the SQLite one and the Redis one, against a real redis-server), dispatch, the
# inbox (its trait, retry policy and workers) and its SQLite and Redis implementations.
#
#   scripts/mutants.sh                                   # every covered file, one after another
#   scripts/mutants.sh nextgen-events/src/signature.rs   # only these files
#
# Each file is mutated on its own, and each of its mutants is tested only with the test targets
# that exercise that file (listed in `tests_for` below), so a run stays as short as it can.
# Results go to mutants.out/<file>/mutants.out/ (outcomes.json, missed.txt, caught.txt, ...);
# a per-file caught / missed / timeout / unviable table is printed at the end. Mutants known to
# be equivalent (no behaviour can tell them apart) are excluded, with the reason, in
# mutants.toml. The script exits non-zero when any mutant was missed (or the run failed).
#
# It installs cargo-mutants when it is missing, and starts a throwaway redis-server (installing
# the Debian package when missing, as .ci/run does) when the Redis store or inbox is in scope. Extra
# cargo-mutants options can be given in MUTANTS_ARGS (e.g. "--iterate"), and MUTANTS_JOBS sets how
# many mutants build and test at once (default 1).
# It is slow: every mutant is a rebuild and a test run. Expect about an hour per large file.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ALL_FILES=(
    nextgen-events/src/signature.rs
    nextgen-events/src/config/mod.rs
    nextgen-events/src/dispatch/mod.rs
    nextgen-events/src/dispatch/claims.rs
    nextgen-events/src/idempotency/mod.rs
    nextgen-events/src/idempotency/memory.rs
    nextgen-events/src/actix.rs
    nextgen-events/src/redis/store.rs
    nextgen-events/src/redis/connection.rs
    nextgen-events/src/redis/inbox.rs
    nextgen-events/src/inbox/mod.rs
    nextgen-events/src/inbox/retry.rs
    nextgen-events/src/inbox/stored.rs
    nextgen-events/src/inbox/workers.rs
    nextgen-events/src/sqlite/mod.rs
    nextgen-events/src/sqlite/store.rs
    nextgen-events/src/sqlite/inbox.rs
    nextgen-events/src/sqlite/writer.rs
    nextgen-events/src/sqlite/lock.rs
)

# The test targets that exercise a file, as `cargo test` arguments. nextgen-events' own tests
# are in nextgen-events/tests/, the end-to-end ones in tests/tests/ (package nextgen-tests).
# macro_ui (trybuild) is never run: the macro crate is not mutated, and it compiles for minutes.
tests_for() {
    case "$1" in
    */signature.rs)
        echo "--test signature --test config --test http --test hostile --test delivery --test hardening" ;;
    */config/mod.rs)
        echo "--test config --test signature --test http --test hostile --test delivery --test idempotency --test handlers --test hardening" ;;
    */dispatch/mod.rs)
        echo "--test handlers --test idempotency --test delivery --test http --test hostile --test hygiene --test parsing --test duplicate_names --test envelope" ;;
    */idempotency/*.rs)
        echo "--test idempotency --test handlers --test delivery --test http --test long_running" ;;
    # The claim protocol: its unit tests (the in-process event and object locks), the claims
    # of dispatch, the object claims and turns of `latest_only` handlers, the lease metrics,
    # and the inbox's workers, which hold their entries' leases through its `hold_while`.
    */dispatch/claims.rs)
        echo "--lib --test idempotency --test handlers --test delivery --test http --test long_running --test latest_only --test object_locks --test metrics --test inbox" ;;
    */actix.rs)
        echo "--test http --test hostile --test hygiene --test handlers --test delivery --test duplicate_names --test idempotency" ;;
    */redis/store.rs | */redis/connection.rs)
        echo "--lib --test redis" ;;
    */redis/inbox.rs)
        echo "--lib --test redis_inbox" ;;
    */inbox/*.rs)
        echo "--lib --test inbox --test inbox_lifecycle --test inbox_tamper --test latest_only --test metrics" ;;
    */sqlite/lock.rs)
        echo "--lib --test inbox_lifecycle --test inbox" ;;
    # inbox_lifecycle and inbox_tamper: `recover` and the recovery gate; sqlite: the store the
    # inbox shares its database with.
    */sqlite/inbox.rs)
        echo "--test inbox --test latest_only --test inbox_lifecycle --test inbox_tamper --test sqlite" ;;
    */sqlite/*.rs)
        echo "--test sqlite --test inbox --test inbox_lifecycle --test inbox_tamper --test latest_only" ;;
    *)
        echo "no test selection for $1: add it to tests_for in $0" >&2
        return 1 ;;
    esac
}

files=("$@")
[ ${#files[@]} -gt 0 ] || files=("${ALL_FILES[@]}")
for file in "${files[@]}"; do
    [ -f "$file" ] || { echo "no such file: $file" >&2; exit 2; }
    tests_for "$file" >/dev/null
done

# --- cargo-mutants ---------------------------------------------------------------------------
if ! cargo mutants --version >/dev/null 2>&1; then
    echo "installing cargo-mutants"
    cargo install --locked cargo-mutants
fi
echo "$(cargo mutants --version)"

# --- a throwaway redis-server, when the Redis store is in scope (as in .ci/run) --------------
needs_redis=false
for file in "${files[@]}"; do
    case "$file" in */redis.rs | */redis/*.rs) needs_redis=true ;; esac
done

redis_pid=""
redis_dir=""
stop_redis() {
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    [ -z "$redis_dir" ] || rm -rf "$redis_dir"
}
trap stop_redis EXIT

# True when something already listens on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if $needs_redis; then
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        echo "installing redis-server"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    fi
    redis_dir="$(mktemp -d)"
    redis_port=""
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" && continue
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$redis_dir" >"$redis_dir/redis.log" 2>&1 &
        redis_pid=$!
        for _ in $(seq 1 100); do
            if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]; then
                redis_port=$port
                break 2
            fi
            kill -0 "$redis_pid" 2>/dev/null || break # it exited: the port was taken
            sleep 0.1
        done
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=""
    done
    if [ -z "$redis_port" ]; then
        echo "could not start redis-server on a free loopback port:" >&2
        cat "$redis_dir/redis.log" >&2 || true
        exit 1
    fi
    export NEXTGEN_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/"
    echo "redis-server at $NEXTGEN_TEST_REDIS_URL"
fi

# --- one cargo-mutants run per file ----------------------------------------------------------
# Mutated copies of the tree build into a target directory of their own: cargo tells a package's
# builds apart by its path relative to the workspace, not by the tree, so a mutant built into
# the tree's own target directory could be taken as up to date by a later build of the real
# tree (whose sources are older), and its tests would run against the mutant.
# With more than one job, each of cargo-mutants' copies must build into its own target directory
# (the one inside the copy, its default): copies sharing one would each find the other's mutant
# up to date, and test a binary built from another mutant.
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# Builds are incremental whatever the caller's CARGO_INCREMENTAL: a mutant changes one function
# of one crate, and an incremental build reuses the rest of it.
jobs="${MUTANTS_JOBS:-1}"
if [ "$jobs" -gt 1 ]; then
    mutants_env=(env -u CARGO_TARGET_DIR CARGO_INCREMENTAL=1)
else
    mutants_env=(env "CARGO_TARGET_DIR=$target_dir/mutants" CARGO_INCREMENTAL=1)
fi
out_dir() { echo "mutants.out/$(echo "${1#nextgen-events/src/}" | tr '/' '_' | sed 's/\.rs$//')"; }

status=0
for file in "${files[@]}"; do
    out="$(out_dir "$file")"
    mkdir -p "$out"
    read -r -a test_args <<<"$(tests_for "$file")"
    features=()
    case "$file" in
    */redis/*.rs) features=(--features "nextgen-events/redis nextgen-tests/redis") ;;
    # nextgen-tests enables sqlite by default; named here so the mutated build has it too.
    */sqlite/*.rs | */inbox/*.rs) features=(--features "nextgen-events/sqlite nextgen-tests/sqlite") ;;
    esac
    echo
    echo "=== $file: tests ${test_args[*]}"
    # The baseline, run here: cargo-mutants' own baseline tests only the mutated package, even
    # with --test-package, so it cannot run the nextgen-tests targets. Its time sets the
    # timeout of each mutant's test run (five times it, at least 30 s).
    cargo test -p nextgen-events -p nextgen-tests "${features[@]}" --no-run "${test_args[@]}"
    start=$(date +%s)
    if ! cargo test -p nextgen-events -p nextgen-tests "${features[@]}" "${test_args[@]}" \
        >"$out/baseline.log" 2>&1; then
        cat "$out/baseline.log" >&2
        echo "the unmutated tree fails its tests: no mutant of $file tested" >&2
        status=1
        continue
    fi
    timeout=$(( ($(date +%s) - start) * 5 ))
    [ "$timeout" -ge 30 ] || timeout=30
    echo "baseline passed; test timeout ${timeout} s"
    # shellcheck disable=SC2086 # MUTANTS_ARGS is a list of options
    "${mutants_env[@]}" cargo mutants --config mutants.toml --package nextgen-events --file "$file" \
        --test-workspace=false --test-package nextgen-events,nextgen-tests \
        --baseline=skip --timeout "$timeout" \
        "${features[@]}" --output "$out" --jobs "$jobs" ${MUTANTS_ARGS:-} \
        -- "${test_args[@]}" || status=$?
done

# --- summary ---------------------------------------------------------------------------------
echo
python3 - "$root" "${files[@]}" <<'EOF'
import json, sys, os, subprocess
root, files = sys.argv[1], sys.argv[2:]
def out_dir(f):
    rel = f.removeprefix("nextgen-events/src/").removesuffix(".rs").replace("/", "_")
    return os.path.join(root, "mutants.out", rel, "mutants.out", "outcomes.json")
row = "{:<40} {:>6} {:>6} {:>6} {:>7} {:>8}"
print(row.format("file", "total", "caught", "missed", "timeout", "unviable"))
missed = []
for f in files:
    path = out_dir(f)
    if not os.path.exists(path):
        print(f"{f:<40} (no outcomes: the run did not finish)")
        continue
    data = json.load(open(path))
    counts = {k: data.get(k, 0) for k in ("caught", "missed", "timeout", "unviable")}
    total = data.get("total_mutants", sum(counts.values()))
    print(row.format(f, total, counts["caught"], counts["missed"], counts["timeout"], counts["unviable"]))
    for outcome in data.get("outcomes", []):
        scenario = outcome.get("scenario")
        if isinstance(scenario, dict) and outcome.get("summary") == "MissedMutant":
            m = scenario.get("Mutant", {})
            missed.append(m.get("name", str(m)))
if missed:
    print("\nmissed:")
    for m in missed:
        print("  " + m)
EOF
exit "$status"
