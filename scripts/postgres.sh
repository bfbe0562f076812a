#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: its data, log, options and Unix socket all live
# in a directory the caller made (mktemp -d), the server listens on a free loopback port with
# trust authentication (no password) and fsync on, and nothing outlives `stop`. .ci/run starts
# one for the whole run; tests that restart or stop the server start one of their own
# (nextgen_tests::services::PostgresCluster).
#
#   dir=$(mktemp -d)
#   url=$(scripts/postgres.sh start "$dir")   # postgres://postgres@127.0.0.1:PORT/nextgen_test
#   scripts/postgres.sh restart "$dir"        # immediate stop (a crash, no checkpoint), start again
#   scripts/postgres.sh stop-server "$dir"    # fast stop, keeping $dir: the server is down
#   scripts/postgres.sh start-again "$dir"    # the same data on the same port again
#   scripts/postgres.sh stop "$dir"           # fast stop (if running) and remove $dir
#
# `start` installs the Debian package `postgresql` when no server binaries are found (as root
# only), runs initdb in $dir/data (--no-sync: only initdb's own files skip the flush; the server
# keeps fsync on), starts the server on a random port in 20000-59999 (another one if that is
# taken), creates the database `nextgen_test` and prints its URL: the only line on stdout, all
# else goes to stderr. The options are kept in $dir/options and the URL in $dir/url, so that
# `restart` and `start-again` use the same port and socket directory. The server log is
# $dir/postgres.log.
#
# initdb and the server refuse to run as root: as root, the script runs them as the `postgres`
# user (runuser) and gives $dir to it, so $dir must be reachable by that user (under /tmp, say).
# As any other user, it runs them directly, and $dir must be writable.
set -euo pipefail

# A file `stop` looks for before it removes a directory, so that a wrong argument cannot make
# it delete anything this script did not set up.
marker=.nextgen-postgres

usage() {
    echo "usage: $0 start|restart|stop-server|start-again|stop DIR" >&2
    exit 2
}

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

# The newest /usr/lib/postgresql/*/bin with the server binaries (Debian's layout), else the
# directory of a pg_ctl on PATH; empty when there is none.
find_bin() {
    local candidate found=""
    while IFS= read -r candidate; do
        if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/postgres" ]; then
            found=$candidate
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    if [ -z "$found" ] && command -v pg_ctl >/dev/null 2>&1; then
        found=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
        [ -x "$found/initdb" ] || found=""
    fi
    echo "$found"
}

# Installs the Debian package `postgresql` unless the server binaries are there. Concurrent
# callers (tests starting clusters in parallel) take turns on a lock, so only one runs apt-get.
install_postgres() {
    [ -n "$(find_bin)" ] && return 0
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and only root can install it (apt-get install postgresql)"
    (
        exec 9>/tmp/nextgen-postgres-install.lock
        flock 9
        [ -n "$(find_bin)" ] && exit 0
        echo "installing postgresql" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends postgresql >&2
    )
    [ -n "$(find_bin)" ] || die "installed postgresql but found no initdb/pg_ctl/postgres"
}

# Runs a server binary as the user that may run it: `postgres` when we are root, else us. From
# / so that a working directory the postgres user cannot read does not matter.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# True when something already listens on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[ $# -eq 2 ] || usage
command=$1
[ -n "$2" ] || usage
[ -d "$2" ] || die "$2 is not a directory (make it first, with mktemp -d)"
dir=$(cd "$2" && pwd -P)
[ "$dir" != / ] || die "refusing to use / as the cluster directory"
data=$dir/data
log=$dir/postgres.log

# pg_ctl runs the server through the shell with the options as one string: no blanks or quotes.
case $dir in
    *[[:space:]\"\'\\\$\`]*) die "$dir: the directory's path must not contain blanks, quotes, \\, \$ or \`" ;;
esac
# The Unix socket $dir/.s.PGSQL.PORT must fit in sun_path (107 bytes and a NUL).
[ $((${#dir} + 16)) -le 107 ] || die "$dir: path too long for the server's Unix socket (at most 91 bytes)"

case $command in
    start)
        [ -z "$(ls -A "$dir")" ] || die "$dir is not empty: start needs a fresh directory"
        touch "$dir/$marker"
        install_postgres
        bin=$(find_bin)
        if [ "$(id -u)" -eq 0 ]; then
            id postgres >/dev/null 2>&1 || die "no postgres user to run the server as"
            chown postgres: "$dir"
            runuser -u postgres -- test -w "$dir" \
                || die "the postgres user cannot write $dir (is a parent directory closed to it?)"
        else
            [ -w "$dir" ] || die "$dir is not writable"
        fi

        # C.UTF-8 where the system has it (glibc spells it C.utf8 in `locale -a`), else C.
        locale=C
        case $'\n'"$(locale -a 2>/dev/null || true)"$'\n' in
            *$'\n'[Cc].[Uu][Tt][Ff]8$'\n'* | *$'\n'[Cc].[Uu][Tt][Ff]-8$'\n'*) locale=C.UTF-8 ;;
        esac
        as_pg "$bin/initdb" -D "$data" -A trust -U postgres --no-sync -E UTF8 --locale="$locale" >&2 \
            || die "initdb failed"

        port=""
        for _ in $(seq 1 20); do
            candidate=$((20000 + RANDOM % 40000))
            port_in_use "$candidate" && continue
            options="-c listen_addresses=127.0.0.1 -p $candidate -k $dir -c fsync=on -c max_connections=200"
            logged=0
            [ ! -f "$log" ] || logged=$(wc -c <"$log")
            # -w waits until the server accepts connections, or notices that it exited: when
            # the port was taken after the check above, the loop tries another one.
            if as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -o "$options" start >&2; then
                port=$candidate
                break
            fi
            attempt_log=$(tail -c +$((logged + 1)) "$log" 2>/dev/null || true)
            [[ $attempt_log == *"already in use"* ]] || break
            echo "port $candidate was taken, trying another one" >&2
        done
        if [ -z "$port" ]; then
            cat "$log" >&2 2>/dev/null || true
            die "could not start PostgreSQL (its log is above)"
        fi
        # Written by us (root or not), read back by restart and start-again.
        echo "$options" >"$dir/options"
        url="postgres://postgres@127.0.0.1:$port/nextgen_test"
        echo "$url" >"$dir/url"
        "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres nextgen_test >&2 \
            || die "could not create the database nextgen_test"
        echo "$url"
        ;;
    restart | start-again)
        [ -f "$dir/options" ] && [ -d "$data" ] || die "$dir holds no cluster made by '$0 start'"
        bin=$(find_bin)
        [ -n "$bin" ] || die "PostgreSQL is not installed"
        options=$(cat "$dir/options")
        if [ "$command" = restart ]; then
            # -m immediate: the server stops as if it crashed and recovers from the WAL at start.
            as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -m immediate -o "$options" restart >&2 \
                || { tail -n 20 "$log" >&2 || true; die "could not restart the server (log above)"; }
        else
            # A postmaster that just stopped may still hold its port or lock file for a moment:
            # a few tries, half a second apart.
            started=""
            for _ in 1 2 3 4 5; do
                if as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -o "$options" start >&2; then
                    started=1
                    break
                fi
                sleep 0.5
            done
            [ -n "$started" ] || { tail -n 20 "$log" >&2 || true; die "could not start the server again (log above)"; }
        fi
        ;;
    stop-server)
        [ -d "$data" ] || die "$dir holds no cluster made by '$0 start'"
        bin=$(find_bin)
        [ -n "$bin" ] || die "PostgreSQL is not installed"
        as_pg "$bin/pg_ctl" -D "$data" -w -m fast stop >&2 || die "could not stop the server"
        ;;
    stop)
        if [ -f "$dir/$marker" ]; then
            bin=$(find_bin)
            if [ -n "$bin" ] && [ -f "$data/postmaster.pid" ]; then
                as_pg "$bin/pg_ctl" -D "$data" -w -m fast stop >&2 || true
            fi
            rm -rf "$dir"
        elif [ -z "$(ls -A "$dir")" ]; then
            rmdir "$dir"
        else
            die "$dir was not set up by '$0 start': not removing it"
        fi
        ;;
    *) usage ;;
esac
