# shellcheck shell=bash
# The end-to-end tier's machinery (sourced by Tests/e2e/run.sh): the Debian mirror taken from
# this host's apt sources, the cached minbase root, one long-lived namespace per scenario root,
# commands inside it, and the pass/fail bookkeeping. Every failure to set up is loud.

E2E_SUITE=${E2E_SUITE:-bookworm}
E2E_CACHE_DIR=${E2E_CACHE_DIR:-/var/cache/hearthminds-e2e}
E2E_WORK_BASE=${E2E_WORK_BASE:-/var/tmp}
# The PATH a root shell on a fresh Debian host has.
E2E_ROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILURES=()

e2e_log() { printf '%s\n' "$*"; }
e2e_note() { printf '   .. %s\n' "$*"; }
# A setup failure: the tier cannot run. Never a skip.
e2e_die() {
    E2E_DONE=1
    printf 'e2e: CANNOT RUN: %s\n' "$*" >&2
    printf 'e2e: %d passed, %d failed\n' "$E2E_PASSED" "$((E2E_FAILED + 1))"
    exit 2
}

e2e_pass() { E2E_PASSED=$((E2E_PASSED + 1)); printf 'PASS  %s\n' "$1"; }
e2e_fail() {
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILURES+=("$1")
    printf 'FAIL  %s\n' "$1"
    shift
    [ $# -gt 0 ] && printf '%s\n' "$@" | sed -e '/^$/d' -e 's/^/      /'
    return 0
}
# check NAME COMMAND...: one line per check; the command's output is shown on failure only.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        e2e_pass "$name"
    else
        e2e_fail "$name" "$(printf '%s' "$out" | tail -n 15)"
    fi
}

e2e_now_ms() { echo $(($(date +%s%N) / 1000000)); }
e2e_secs() { printf '%d.%02d' $(($1 / 1000)) $((($1 % 1000) / 10)); }

# --- preconditions ---------------------------------------------------------------------------

e2e_require() {
    [ "$(id -u)" -eq 0 ] || e2e_die "must run as root (debootstrap, unshare, chroot): sudo $0"
    local tool missing=()
    for tool in debootstrap unshare nsenter setpriv chroot mount tar mknod psql pg_isready flock ss curl findmnt; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ "${#missing[@]}" -eq 0 ] ||
        e2e_die "missing tools: ${missing[*]} (make setup installs them: debootstrap, util-linux, iproute2, curl, postgresql-client-15)"
}

# The Debian mirror of this host, from its apt sources: the deb822 `URIs:` of the entry whose
# Suites hold the host's codename (/etc/apt/sources.list.d/*.sources), else the first
# `deb URI <codename> ...` line of /etc/apt/sources.list(.d/*.list). E2E_MIRROR overrides.
e2e_host_codename() {
    local codename
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    printf '%s\n' "${codename:-$E2E_SUITE}"
}

e2e_mirror() {
    if [ -n "${E2E_MIRROR:-}" ]; then printf '%s\n' "$E2E_MIRROR"; return 0; fi
    local codename uri f
    codename=$(e2e_host_codename)
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # Stanzas are separated by blank lines; comments (#) are dropped.
        uri=$(awk -v want="$codename" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " want " ") && uris != "" && found == "") {
                    split(uris, u, " "); found = u[1]
                }
                types = ""; suites = ""; uris = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val); gsub(/[ \t]+/, " ", val)
                if (key == "types") types = val
                else if (key == "suites") suites = val
                else if (key == "uris") uris = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { flush(); if (found != "") print found }' "$f")
        if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # deb [opts] URI suite components...
        uri=$(awk -v want="$codename" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == want) { print $i; exit }
            }' "$f")
        if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
    done
    return 1
}

# --- the cached minbase root -------------------------------------------------------------------

e2e_arch() { dpkg --print-architecture; }

# Sets E2E_TARBALL to the cached pristine minbase tarball, building it when missing (or when
# E2E_REFRESH_CACHE=1), and E2E_CACHE_MS to the time the build took (0: from the cache).
# Concurrent runs serialize on a lock in the cache directory.
e2e_cached_root() {
    local mirror=$1 arch tarball build t0 rc
    arch=$(e2e_arch)
    tarball="$E2E_CACHE_DIR/minbase-$E2E_SUITE-$arch.tar.gz"
    mkdir -p "$E2E_CACHE_DIR" && chmod 0755 "$E2E_CACHE_DIR" || e2e_die "cannot create $E2E_CACHE_DIR"
    exec 8>"$E2E_CACHE_DIR/.lock"
    flock 8 || e2e_die "cannot lock $E2E_CACHE_DIR/.lock"
    # A refresh replaces the tarball only once the new root is packed.
    if [ ! -s "$tarball" ] || [ "${E2E_REFRESH_CACHE:-0}" = 1 ]; then
        build=$(mktemp -d "$E2E_CACHE_DIR/build.XXXXXX")
        e2e_log "-- building the minbase $E2E_SUITE/$arch root (debootstrap from $mirror); cached afterwards" >&2
        t0=$(e2e_now_ms)
        set +e
        debootstrap --variant=minbase --arch="$arch" "$E2E_SUITE" "$build/root" "$mirror" >"$build/debootstrap.log" 2>&1
        rc=$?
        set -e
        if [ "$rc" -ne 0 ]; then
            tail -n 20 "$build/debootstrap.log" >&2
            e2e_die "debootstrap failed (exit $rc; mirror $mirror from the host's apt sources; full log $build/debootstrap.log)"
        fi
        tar -C "$build/root" --numeric-owner -czf "$build/root.tar.gz" . || e2e_die "cannot pack the minbase root"
        mv "$build/root.tar.gz" "$tarball"
        rm -rf --one-file-system "$build"
        E2E_CACHE_MS=$(($(e2e_now_ms) - t0))
        e2e_log "-- minbase root cached: $tarball ($(du -h "$tarball" | cut -f1), $(e2e_secs "$E2E_CACHE_MS")s)" >&2
    else
        E2E_CACHE_MS=0
    fi
    flock -u 8
    exec 8>&-
    E2E_TARBALL=$tarball
}

# --- one scenario root, its namespace, commands inside ---------------------------------------

# root_create NAME: unpacks a fresh copy of the cached root; sets ROOT and WORK.
root_create() {
    WORK=$(mktemp -d "$E2E_WORK_BASE/hearthminds-e2e-$1.XXXXXX") || e2e_die "cannot make a work directory"
    ROOT="$WORK/root"
    mkdir -p "$ROOT"
    tar -C "$ROOT" --numeric-owner -xpzf "$E2E_TARBALL" || e2e_die "cannot unpack $E2E_TARBALL"
    # The root resolves names as this host does, so its apt reaches the same mirror.
    rm -f "$ROOT/etc/resolv.conf"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # debootstrap leaves no hostname; a fresh host has one.
    echo "hm-e2e" >"$ROOT/etc/hostname"
}

# ns_start: one long-lived PID + mount namespace chrooted into ROOT (pid 1 is a perl loop that
# only reaps orphans, from the root's perl-base), with
# /proc, a minimal /dev and a /run tmpfs mounted inside it only. Everything started in it dies
# with it (ns_stop). Sets NS_PID (the host pid of its pid 1) and NS_UNSHARE.
ns_start() {
    # setpriv --pdeathsig: even when this script is killed outright, unshare dies with it, and
    # its child (the namespace's pid 1) with unshare (--kill-child).
    setpriv --pdeathsig KILL -- unshare --fork --pid --mount --propagation private --kill-child -- /bin/sh -c '
        set -e
        R=$1
        mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
        mount -t tmpfs -o mode=0755,nosuid,size=16m dev "$R/dev"
        mknod -m 0666 "$R/dev/null" c 1 3
        mknod -m 0666 "$R/dev/zero" c 1 5
        mknod -m 0666 "$R/dev/full" c 1 7
        mknod -m 0666 "$R/dev/random" c 1 8
        mknod -m 0666 "$R/dev/urandom" c 1 9
        mknod -m 0666 "$R/dev/tty" c 5 0
        ln -s /proc/self/fd "$R/dev/fd"
        ln -s /proc/self/fd/0 "$R/dev/stdin"
        ln -s /proc/self/fd/1 "$R/dev/stdout"
        ln -s /proc/self/fd/2 "$R/dev/stderr"
        mkdir -m 0755 "$R/dev/pts"
        mkdir -m 1777 "$R/dev/shm"
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
        ln -s pts/ptmx "$R/dev/ptmx"
        mount -t tmpfs -o mode=1777,nosuid,nodev shm "$R/dev/shm"
        mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m run "$R/run"
        # pid 1 reaps orphans, as init does on a host: a daemon killed in a test (the postmaster,
        # kill -9) must be gone, not a zombie that kill -0 still finds
        exec chroot "$R" /usr/bin/perl -e "while (1) { sleep 1 if wait() == -1 }"
    ' ns-init "$ROOT" </dev/null >"$WORK/ns.log" 2>&1 &
    NS_UNSHARE=$!
    echo "$NS_UNSHARE" >"$WORK/ns.pid"
    local i child real_root
    real_root=$(readlink -f "$ROOT")
    NS_PID=""
    for i in $(seq 1 100); do
        child=$(cat "/proc/$NS_UNSHARE/task/$NS_UNSHARE/children" 2>/dev/null | awk '{print $1}')
        if [ -n "$child" ] && [ "$(readlink "/proc/$child/root" 2>/dev/null)" = "$real_root" ]; then
            NS_PID=$child
            break
        fi
        kill -0 "$NS_UNSHARE" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$NS_PID" ] || { cat "$WORK/ns.log" >&2; e2e_die "the namespace for $ROOT did not start"; }
}

ns_stop() {
    if [ -n "${NS_UNSHARE:-}" ]; then
        # --kill-child: the namespace's pid 1 is killed with unshare, and every process in the
        # namespace with it; the mounts go with the mount namespace.
        kill -KILL "$NS_UNSHARE" 2>/dev/null || true
        wait "$NS_UNSHARE" 2>/dev/null || true
        if [ -n "${NS_PID:-}" ]; then
            local i
            for i in $(seq 1 50); do kill -0 "$NS_PID" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    NS_UNSHARE="" NS_PID=""
}

# root_remove: stops the namespace and deletes the work directory (refusing while anything is
# still mounted under it in this mount namespace).
root_remove() {
    ns_stop
    [ -n "${WORK:-}" ] && [ -d "$WORK" ] || return 0
    if [ "${E2E_KEEP:-0}" = 1 ]; then e2e_log "-- kept $WORK (E2E_KEEP=1)"; return 0; fi
    if grep -q "^$WORK/" < <(findmnt -rn -o TARGET); then
        e2e_log "e2e: something is still mounted under $WORK; not deleting it" >&2
        return 0
    fi
    rm -rf --one-file-system "$WORK"
    WORK="" ROOT=""
}

# remove_stale_roots: work directories that a run killed outright left behind (its namespace, and
# so its mounts, died with it): no live namespace process, nothing mounted, and either a dead
# ns.pid or none and untouched for 30 minutes (a concurrent run may be unpacking one).
remove_stale_roots() {
    local d pid
    for d in "$E2E_WORK_BASE"/hearthminds-e2e-*; do
        [ -d "$d" ] || continue
        if [ -f "$d/ns.pid" ]; then
            pid=$(cat "$d/ns.pid")
            # alive: an unshare process that is not a zombie (a pid reused by another is dead)
            if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = unshare ] &&
                [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
                continue
            fi
        else
            [ -n "$(find "$d" -maxdepth 0 -mmin +30)" ] || continue
        fi
        grep -q "^$d/" < <(findmnt -rn -o TARGET) && continue
        e2e_log "-- removing a stale root left by a killed run: $d"
        rm -rf --one-file-system "$d"
    done
}

# in_root CMD...: runs CMD inside the scenario's namespace and root, as root, with the clean
# environment of a root shell on a fresh host plus the E2E_ENV assignments (the config layer).
in_root() {
    nsenter --target "$NS_PID" --mount --pid --root --wd -- \
        /usr/bin/env -i -C "${E2E_CWD:-/}" PATH="$E2E_ROOT_PATH" HOME=/root TERM=dumb ${E2E_ENV[@]+"${E2E_ENV[@]}"} "$@"
}

# in_root_as USER CMD...: the same as an account of the root (peer authentication).
in_root_as() {
    local user=$1
    shift
    in_root setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
}

# --- the log inside the root -----------------------------------------------------------------

# log_lines RUN_ID: the JSON lines of one install.sh run.
log_lines() { grep -F "\"run\":\"$1\"" "$ROOT/var/log/hearthminds/bootstrap.jsonl" 2>/dev/null || true; }
