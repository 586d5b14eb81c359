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

# e2e_abort_summary TIER RC (a tier's EXIT trap): when the script stopped early (an unexpected
# error under set -e), still the tier's summary line, counted as a failure; exit 1 for RC 0.
e2e_abort_summary() {
    local tier=$1 rc=$2
    [ "${E2E_DONE:-0}" = 1 ] && return 0
    printf '%s: ABORTED (exit %d) before the end; see the output above\n' "$tier" "$rc" >&2
    printf '%s: %d passed, %d failed\n' "$tier" "$E2E_PASSED" "$((E2E_FAILED + 1))"
    [ "$rc" -ne 0 ] || exit 1
}

# e2e_finish TIER [NOTE]: a tier's end: its timings (TIMINGS), its failed checks, NOTE when
# given, and its summary line; true when no check failed.
e2e_finish() {
    local tier=$1 note=${2:-}
    e2e_log ""
    e2e_log "timings:"
    printf '%s\n' "${TIMINGS[@]}"
    if [ "$E2E_FAILED" -gt 0 ]; then
        e2e_log "failed checks:"
        printf '  %s\n' "${E2E_FAILURES[@]}"
    fi
    E2E_DONE=1
    [ -z "$note" ] || e2e_log "$note"
    printf '%s: %d passed, %d failed\n' "$tier" "$E2E_PASSED" "$E2E_FAILED"
    [ "$E2E_FAILED" -eq 0 ]
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
    e2e_suite_mirror "$(e2e_host_codename)"
}

# The host's mirror of its security suite (<codename>-security; E2E_SECURITY_MIRROR overrides).
e2e_security_mirror() {
    if [ -n "${E2E_SECURITY_MIRROR:-}" ]; then printf '%s\n' "$E2E_SECURITY_MIRROR"; return 0; fi
    e2e_suite_mirror "$(e2e_host_codename)-security"
}

# e2e_suite_mirror SUITE: the URI of the host's apt entry for SUITE (deb822 files first).
e2e_suite_mirror() {
    local codename=$1 uri f
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

# --- cached roots made from the minbase root ---------------------------------------------------

# e2e_layer NAME PARENT BUILDER [MAX_AGE_MINUTES]: sets E2E_LAYER to the cached tarball
# $E2E_CACHE_DIR/NAME-<suite>-<arch>.tar.gz: a copy of the PARENT tarball changed by BUILDER (a
# function run with ROOT set, inside a chroot namespace), made again when it is missing, older
# than PARENT or than MAX_AGE_MINUTES, or with E2E_REFRESH_CACHE=1. E2E_LAYER_MS: the time
# the build took (0: from the cache).
e2e_layer() {
    local name=$1 parent=$2 builder=$3 max_age=${4:-} tarball t0 stale=0
    local WORK ROOT NS_UNSHARE="" NS_PID="" # (this build's own, not the scenario's)
    tarball="$E2E_CACHE_DIR/$name-$E2E_SUITE-$(e2e_arch).tar.gz"
    exec 8>"$E2E_CACHE_DIR/.lock"
    flock 8 || e2e_die "cannot lock $E2E_CACHE_DIR/.lock"
    if [ ! -s "$tarball" ] || [ "$parent" -nt "$tarball" ] || [ "${E2E_REFRESH_CACHE:-0}" = 1 ]; then
        stale=1
    elif [ -n "$max_age" ] && [ -n "$(find "$tarball" -mmin +"$max_age")" ]; then
        stale=1
    fi
    E2E_LAYER_MS=0
    if [ "$stale" = 1 ]; then
        t0=$(e2e_now_ms)
        e2e_log "-- building the cached $name root from $(basename "$parent")" >&2
        WORK=$(mktemp -d "$E2E_CACHE_DIR/build-$name.XXXXXX") || e2e_die "cannot make a build directory"
        ROOT="$WORK/root"
        mkdir -p "$ROOT"
        tar -C "$ROOT" --numeric-owner -xpzf "$parent" || e2e_die "cannot unpack $parent"
        rm -f "$ROOT/etc/resolv.conf"
        cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
        ns_start
        "$builder" >"$WORK/build.log" 2>&1 || {
            tail -n 20 "$WORK/build.log" >&2
            ns_stop
            e2e_die "cannot build the cached $name root ($builder; log $WORK/build.log)"
        }
        ns_stop
        tar -C "$ROOT" --numeric-owner -czf "$WORK/root.tar.gz" . || e2e_die "cannot pack the $name root"
        mv "$WORK/root.tar.gz" "$tarball"
        rm -rf --one-file-system "$WORK"
        E2E_LAYER_MS=$(($(e2e_now_ms) - t0))
        e2e_log "-- $name root cached: $tarball ($(du -h "$tarball" | cut -f1), $(e2e_secs "$E2E_LAYER_MS")s)" >&2
    fi
    flock -u 8
    exec 8>&-
    E2E_LAYER=$tarball
}

# The "apt" root: minbase with the apt sources a Debian 12 installer writes (the suite, its
# -updates and -security, from this host's own apt sources) and their lists fetched: a fresh
# host whose administrator ran `apt update`. Security updates matter: PostgreSQL's server comes
# from there, and the shipped pgvector package depends on the server it was built against.
e2e_layer_apt() {
    local main=$MIRROR security updates
    security=$(e2e_security_mirror) ||
        { echo "no $(e2e_host_codename)-security entry in the host's apt sources (set E2E_SECURITY_MIRROR)"; return 1; }
    updates=$(e2e_suite_mirror "$(e2e_host_codename)-updates") || updates=""
    {
        printf 'deb %s %s main
' "$main" "$E2E_SUITE"
        [ -z "$updates" ] || printf 'deb %s %s-updates main
' "$updates" "$E2E_SUITE"
        printf 'deb %s %s-security main
' "$security" "$E2E_SUITE"
    } >"$ROOT/etc/apt/sources.list"
    in_root apt-get -q update
}

# The "booted" root: the apt root with what a Debian server boots with and minbase lacks:
# systemd as init (systemd, systemd-sysv) and the system bus (dbus); no kernel, no network
# management (the roots share this host's network). Each copy gets its own machine id.
e2e_layer_booted() {
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd systemd-sysv dbus &&
        in_root apt-get clean &&
        : >"$ROOT/etc/machine-id"
}

# --- one scenario root, its namespace, commands inside ---------------------------------------

# root_create NAME [TARBALL]: unpacks a fresh copy of a cached root (E2E_TARBALL by default);
# sets ROOT and WORK.
root_create() {
    local tarball=${2:-$E2E_TARBALL}
    WORK=$(mktemp -d "$E2E_WORK_BASE/hearthminds-e2e-$1.XXXXXX") || e2e_die "cannot make a work directory"
    echo "$$" >"$WORK/owner.pid" # (remove_stale_roots keeps it while this run lives)
    ROOT="$WORK/root"
    mkdir -p "$ROOT"
    tar -C "$ROOT" --numeric-owner -xpzf "$tarball" || e2e_die "cannot unpack $tarball"
    # The root resolves names as this host does, so its apt reaches the same mirror.
    rm -f "$ROOT/etc/resolv.conf"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # debootstrap leaves no hostname; a fresh host has one.
    echo "hm-e2e" >"$ROOT/etc/hostname"
    # an installed host has a machine id of its own (the booted cache leaves it empty)
    if [ -f "$ROOT/etc/machine-id" ] && [ ! -s "$ROOT/etc/machine-id" ]; then
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$ROOT/etc/machine-id"
        echo >>"$ROOT/etc/machine-id"
    fi
}

# The minimal /dev of a root (its tmpfs mounted already at $R/dev) and its /run tmpfs: device
# nodes, the fd links, pts and shm. Part of ns_start's and E2E_BOOT_SETUP's scripts.
E2E_DEV_SETUP='
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
'

# ns_start: one long-lived PID + mount namespace chrooted into ROOT (pid 1 is a perl loop that
# only reaps orphans, from the root's perl-base), with
# /proc, a minimal /dev and a /run tmpfs mounted inside it only. Everything started in it dies
# with it (ns_stop). Sets NS_PID (the host pid of its pid 1) and NS_UNSHARE.
# E2E_NS_EXTRA: more namespaces, as unshare's flags (the fleet tier: --net --uts, a network
# and host name of the root's own); in_root enters them too. E2E_NS_SETUP: more shell run in the
# namespace just before it chroots into the root "$R" (the fresh tier: `mount --rbind "$R" "$R"`,
# so that the root's / is a mount point, as a host's is, for unshare --propagation inside).
E2E_NS_EXTRA=()
E2E_NS_SETUP=""
ns_start() {
    # setpriv --pdeathsig: even when this script is killed outright, unshare dies with it, and
    # its child (the namespace's pid 1) with unshare (--kill-child).
    setpriv --pdeathsig KILL -- unshare --fork --pid --mount ${E2E_NS_EXTRA[@]+"${E2E_NS_EXTRA[@]}"} \
        --propagation private --kill-child -- /bin/sh -c '
        set -e
        R=$1
        mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
        mount -t tmpfs -o mode=0755,nosuid,size=16m dev "$R/dev"
        '"$E2E_DEV_SETUP"'
        '"$E2E_NS_SETUP"'
        # pid 1 reaps orphans, as init does on a host: a daemon killed in a test (the postmaster,
        # kill -9) must be gone, not a zombie that kill -0 still finds
        exec chroot "$R" /usr/bin/perl -e "while (1) { sleep 1 if wait() == -1 }"
    ' ns-init "$ROOT" </dev/null >"$WORK/ns.log" 2>&1 &
    NS_UNSHARE=$!
    echo "$NS_UNSHARE" >"$WORK/ns.pid"
    ns_find_init "$WORK/ns.log" || e2e_die "the namespace for $ROOT did not start"
}

# ns_find_init LOG: sets NS_PID to the host pid of the namespace's pid 1 (unshare's child, once
# it is chrooted into ROOT); false (the LOG shown) when it does not appear within 10 s.
ns_find_init() {
    local i child real_root
    real_root=$(readlink -f "$ROOT")
    NS_PID=""
    for i in $(seq 1 100); do
        child=$(cat "/proc/$NS_UNSHARE/task/$NS_UNSHARE/children" 2>/dev/null | awk '{print $1}')
        if [ -n "$child" ] && [ "$(readlink "/proc/$child/root" 2>/dev/null)" = "$real_root" ]; then
            NS_PID=$child
            return 0
        fi
        kill -0 "$NS_UNSHARE" 2>/dev/null || break
        sleep 0.1
    done
    cat "$1" >&2
    return 1
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
    if [ -n "${BOOT_WATCHER:-}" ]; then
        wait "$BOOT_WATCHER" 2>/dev/null || true
    fi
    BOOT_WATCHER="" NS_UNSHARE="" NS_PID=""
    boot_cgroup_remove
    E2E_BOOTED=0
}

# --- a root booted with systemd as PID 1 -------------------------------------------------------
#
# The second way to run a root (the chroot namespace above stays, for container hosts): the
# root's own init, /lib/systemd/systemd, is the first process of a new pid, mount, uts, ipc and
# cgroup namespace, chrooted into the root, with `container=` set, as a container manager
# starts it. The namespace gets /proc (its /proc/sys read-only: the kernel is the host's), /sys
# read-only, a cgroup hierarchy of its own (a cgroup made for this boot, the namespace's root),
# a small /dev tmpfs with the usual nodes, and a /run tmpfs; the network is the host's. A
# reboot inside ends the namespace (the kernel ends its init with SIGHUP; a poweroff with
# SIGINT); booting the same root again is the next boot.

E2E_BOOTED=0
BOOT_CGROUPS=()
BOOT_WATCHER=""

# The host's cgroup layout: unified (cgroup2 only), hybrid (v1 with a cgroup2 "unified"
# beside it) or legacy (v1, systemd's named hierarchy).
e2e_cgroup_layout() {
    case "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" in
        cgroup2fs) echo unified ;;
        tmpfs)
            if [ "$(stat -f -c %T /sys/fs/cgroup/systemd 2>/dev/null)" != cgroupfs ]; then
                echo none
            elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
                echo hybrid
            else
                echo legacy
            fi
            ;;
        *) echo none ;;
    esac
}

# boot_cgroup_create: this boot's cgroup in each host hierarchy systemd uses (BOOT_CGROUPS).
boot_cgroup_create() {
    local name h
    name=$(basename "$WORK") # hearthminds-e2e-<scenario>.XXXXXX
    BOOT_CGROUPS=()
    case "$E2E_CGROUP_LAYOUT" in
        unified) BOOT_CGROUPS=("/sys/fs/cgroup/$name") ;;
        hybrid) BOOT_CGROUPS=("/sys/fs/cgroup/systemd/$name" "/sys/fs/cgroup/unified/$name") ;;
        legacy) BOOT_CGROUPS=("/sys/fs/cgroup/systemd/$name") ;;
        *) e2e_die "no cgroup hierarchy that systemd can use under /sys/fs/cgroup" ;;
    esac
    for h in "${BOOT_CGROUPS[@]}"; do
        mkdir -p "$h" || e2e_die "cannot make the cgroup $h (is /sys/fs/cgroup writable?)"
    done
}

# boot_cgroup_remove: this boot's cgroups, once every process in them is gone (they can only
# hold the namespace's processes, which die with it), deepest first.
boot_cgroup_remove() {
    local h i
    for h in ${BOOT_CGROUPS[@]+"${BOOT_CGROUPS[@]}"}; do
        [ -d "$h" ] || continue
        for i in $(seq 1 50); do
            [ -z "$(find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && break
            sleep 0.1
        done
        find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || e2e_log "e2e: cannot remove the cgroup $h" >&2
    done
    BOOT_CGROUPS=()
}

# The namespace's setup, run by its first process before it becomes the root's systemd.
# $1 the root, $2 the cgroup layout.
E2E_BOOT_SETUP='
    set -e
    R=$1
    mount --bind "$R" "$R"
    mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
    mount --bind "$R/proc/sys" "$R/proc/sys"
    mount -o remount,bind,ro "$R/proc/sys"
    if [ -e "$R/proc/sysrq-trigger" ]; then
        mount --bind "$R/proc/sysrq-trigger" "$R/proc/sysrq-trigger"
        mount -o remount,bind,ro "$R/proc/sysrq-trigger"
    fi
    mount -t tmpfs -o mode=0755,nosuid,size=16m dev "$R/dev"
    # a boot id of its own, not the host kernel one: the journal tells this boot from the last
    cat /proc/sys/kernel/random/uuid >"$R/dev/.boot_id"
    mount --bind "$R/dev/.boot_id" "$R/proc/sys/kernel/random/boot_id"
    rm "$R/dev/.boot_id"
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
    C="$R/sys/fs/cgroup"
    case "$2" in
        unified) mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$C" ;;
        hybrid | legacy)
            mount -t tmpfs -o mode=0755,nosuid,nodev,noexec,size=1m cgroup "$C"
            mkdir "$C/systemd"
            mount -t cgroup -o nosuid,nodev,noexec,none,name=systemd cgroup "$C/systemd"
            if [ "$2" = hybrid ]; then
                mkdir "$C/unified"
                mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$C/unified"
            fi
            mount -o remount,ro,nosuid,nodev,noexec,size=1m,mode=0755 cgroup "$C"
            ;;
    esac
'"$E2E_DEV_SETUP"'
    cd "$R"
    exec chroot "$R" /usr/bin/env -i container=hearthminds-e2e /lib/systemd/systemd
'

# boot_start: boots ROOT; sets NS_UNSHARE, NS_PID (systemd, the namespace's pid 1) and
# E2E_BOOTED=1. It returns once systemd runs; boot_wait waits for the boot to finish.
#
# A watcher (BOOT_WATCHER, in this host's cgroup) runs unshare and writes its exit status to
# $WORK/boot.status when the namespace ends: a reboot's SIGHUP or a poweroff's SIGINT.
# Everything dies with this script: the watcher (setpriv --pdeathsig), unshare with the
# watcher, the namespace's init with unshare (--kill-child), and every process in it with that.
boot_start() {
    local h i
    [ -x "$ROOT/lib/systemd/systemd" ] || e2e_die "$ROOT has no /lib/systemd/systemd"
    boot_cgroup_create
    rm -f "$WORK/boot.status" "$WORK/ns.pid"
    setpriv --pdeathsig KILL -- bash -c '
        work=$1 setup=$2 root=$3 layout=$4
        shift 4
        (
            # the namespace'"'"'s cgroup root is the cgroup unshare is in when it runs
            for h in "$@"; do echo "$BASHPID" >"$h/cgroup.procs"; done
            echo "$BASHPID" >"$work/ns.pid"
            exec setpriv --pdeathsig KILL -- unshare --fork --pid --mount --uts --ipc --cgroup \
                --propagation private --kill-child -- /bin/sh -c "$setup" boot "$root" "$layout"
        ) &
        wait $!
        echo $? >"$work/boot.status"
    ' boot-watcher "$WORK" "$E2E_BOOT_SETUP" "$ROOT" "$E2E_CGROUP_LAYOUT" "${BOOT_CGROUPS[@]}" \
        </dev/null >>"$WORK/boot.log" 2>&1 &
    BOOT_WATCHER=$!
    NS_UNSHARE=""
    for i in $(seq 1 100); do
        [ -s "$WORK/ns.pid" ] && NS_UNSHARE=$(cat "$WORK/ns.pid") && break
        sleep 0.05
    done
    [ -n "$NS_UNSHARE" ] || { cat "$WORK/boot.log" >&2; e2e_die "the booted namespace for $ROOT did not start"; }
    ns_find_init "$WORK/boot.log" || e2e_die "the booted namespace for $ROOT did not start"
    for i in $(seq 1 100); do
        [ "$(cat "/proc/$NS_PID/comm" 2>/dev/null)" = systemd ] && break
        sleep 0.05
    done
    E2E_BOOTED=1
}

# boot_wait SECONDS: waits until systemd has finished booting; BOOT_STATE is what
# `systemctl is-system-running` then says (running, degraded, ...), "timeout" after SECONDS.
boot_wait() {
    local deadline=$(($(date +%s) + $1))
    BOOT_STATE=timeout
    while [ "$(date +%s)" -lt "$deadline" ]; do
        kill -0 "$NS_PID" 2>/dev/null || { BOOT_STATE="init gone"; return 1; }
        # (before systemd listens on its socket, systemctl fails at once)
        if BOOT_STATE=$(timeout $((deadline - $(date +%s) + 1)) nsenter --target "$NS_PID" --mount --pid --uts --ipc --root -- \
            /usr/bin/env -i PATH="$E2E_ROOT_PATH" systemctl is-system-running --wait 2>/dev/null); then
            return 0
        fi
        case "$BOOT_STATE" in degraded | maintenance | stopping | offline) return 0 ;; esac
        sleep 0.1
    done
    BOOT_STATE=timeout
    return 1
}

# boot_end reboot|poweroff: asks systemd inside to reboot or power off and waits (60 s at most)
# for the namespace to end; BOOT_END_STATUS is unshare's exit status (128 + the signal that
# ended the init: 129 SIGHUP for a reboot, 130 SIGINT for a poweroff), "timeout" when it did not end.
boot_end() {
    local i
    BOOT_END_STATUS=timeout
    in_root systemctl "$1" >>"$WORK/boot.log" 2>&1 || true
    for i in $(seq 1 600); do
        kill -0 "$NS_UNSHARE" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$NS_UNSHARE" 2>/dev/null; then
        ns_stop
        return 1
    fi
    wait "$BOOT_WATCHER" 2>/dev/null || true
    BOOT_END_STATUS=$(cat "$WORK/boot.status" 2>/dev/null || echo unknown)
    BOOT_WATCHER="" NS_UNSHARE="" NS_PID=""
    boot_cgroup_remove
    E2E_BOOTED=0
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
        # the run that made it still lives (between a namespace's end and the next, as the
        # interrupt scenario's power cuts and boots have it, ns.pid names a dead unshare)
        pid=$(cat "$d/owner.pid" 2>/dev/null) || pid=""
        if [ -n "$pid" ] && [ "$pid" != "$$" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = bash ]; then
            continue
        fi
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
    # the cgroups of booted roots that are gone (empty: their processes died with the namespace)
    local cg
    for cg in /sys/fs/cgroup/hearthminds-e2e-* /sys/fs/cgroup/*/hearthminds-e2e-*; do
        [ -d "$cg" ] || continue
        [ -d "$E2E_WORK_BASE/${cg##*/}" ] && continue
        [ -z "$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] || continue
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

# in_root CMD...: runs CMD inside the scenario's namespace and root, as root, with the clean
# environment of a root shell on a fresh host plus the E2E_ENV assignments (the config layer).
in_root() {
    local booted=() extra
    [ "${E2E_BOOTED:-0}" = 1 ] && booted=(--uts --ipc)
    for extra in ${E2E_NS_EXTRA[@]+"${E2E_NS_EXTRA[@]}"}; do
        case "$extra" in --net | --uts | --ipc) booted+=("$extra") ;; esac
    done
    nsenter --target "$NS_PID" --mount --pid ${booted[@]+"${booted[@]}"} --root --wd -- \
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
