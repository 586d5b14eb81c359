#!/usr/bin/env bash
# The fresh-machine tier: the README's setup and the Swift tiers on a machine that never saw
# this project. Run as root: sudo Tests/fresh/run.sh        (make test-fresh)
#
# A new minbase Debian 12 (bookworm) root, made by the end-to-end tier's machinery
# (Tests/e2e/lib.sh: debootstrap from this host's own apt mirror, the suite's -updates and
# -security sources, all cached under /var/cache/hearthminds-e2e/), becomes "a Debian 12
# machine with Swift installed": the Debian packages the Swift toolchain itself needs on Debian 12
# (swift.org's list, and make; cached as the "swift" root), the toolchain (/opt/swift) and the
# local copy of the Swift packages (/opt/swift-packages) bound in read-only, inside the root's
# namespace only, and this host's /etc/gitconfig (which sends git there). None of the project's
# own packages is there. The repository's files as they are in the work tree (tracked files and
# new ones not ignored; no .build/, no dist/, no Package.resolved) are copied to
# /root/hearthminds, and there, as root with the clean environment of a fresh login, it runs
# `make setup`, `swift build --build-tests` and `make test-swift`, as `make test` runs them.
# The root runs in its own PID + mount namespace (chroot; every process in it dies with it; its /
# a mount point, /sys read-only) and shares this host's network (its apt reaches the mirror).
#
# Prints one line per check, the failed Swift tests' issues, the timings, and ends with
# "fresh: N passed, N failed"; exits 1 on any failure, 2 when the tier cannot run (never skips).
# The logs of the runs inside are kept in .build/fresh/ (FRESH_LOG_DIR).
#
# Environment: FRESH_SWIFT (/opt/swift), FRESH_SWIFT_PACKAGES (/opt/swift-packages),
# FRESH_TIMEOUT (seconds for each of setup, build and test run; 1800), FRESH_LOG_DIR,
# FRESH_KEEP=1 (keep the root), and the end-to-end tier's E2E_MIRROR, E2E_SECURITY_MIRROR,
# E2E_REFRESH_CACHE=1 (rebuild the cached roots), E2E_CACHE_DIR, E2E_WORK_BASE.
set -euo pipefail

FRESH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$FRESH_DIR/../.." && pwd)
# shellcheck source=Tests/e2e/lib.sh
. "$REPO/Tests/e2e/lib.sh"

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--help]" >&2; exit 64 ;;
    esac
done

FRESH_SWIFT=${FRESH_SWIFT:-/opt/swift}
FRESH_SWIFT_PACKAGES=${FRESH_SWIFT_PACKAGES:-/opt/swift-packages}
FRESH_TIMEOUT=${FRESH_TIMEOUT:-1800}
FRESH_LOG_DIR=${FRESH_LOG_DIR:-$REPO/.build/fresh}
[ "${FRESH_KEEP:-0}" = 1 ] && E2E_KEEP=1
FRESH_HM=/root/hearthminds # where the repository is copied inside the root

# What the Swift toolchain needs on Debian 12, as swift.org lists it for Debian 12, and make
# (minbase has everything make itself needs: libc6, and bash for the Makefile's SHELL). The
# machine's prerequisites, not the project's: the project's own come from `make setup`
# (SETUP_PACKAGES), which is what this tier proves. Without recommends (libc6-dev's gcc, git's
# ssh, ...): nothing the project should ask for arrives as a recommendation.
FRESH_TOOLCHAIN_PACKAGES=(binutils git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev
    libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libncurses-dev libz3-dev pkg-config
    tzdata zlib1g-dev make)

# A failure to set up: the tier cannot run. Never a skip.
e2e_die() {
    E2E_DONE=1
    printf 'fresh: CANNOT RUN: %s\n' "$*" >&2
    printf 'fresh: %d passed, %d failed\n' "$E2E_PASSED" "$((E2E_FAILED + 1))"
    exit 2
}

E2E_ENV=()
TIMINGS=()
WORK="" ROOT="" NS_UNSHARE="" NS_PID=""

# On any exit: the namespace killed (its mounts and processes with it) and the root removed; when
# the script stopped early, still the summary line, counted as a failure.
cleanup() {
    local rc=$?
    root_remove
    e2e_abort_summary fresh "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timing() { TIMINGS+=("$(printf '  %-56s %8ss' "$1" "$(e2e_secs "$2")")"); }

# The "swift" root's builder (e2e_layer): the apt root with the toolchain's packages.
fresh_layer_swift() {
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${FRESH_TOOLCHAIN_PACKAGES[@]}" &&
        in_root apt-get clean
}

# The toolchain and the packages' copy bound read-only into the root, in its namespace only (the
# mounts die with it), and this host's git configuration (url.<copy>.insteadOf) in the root.
fresh_bind_toolchain() {
    local src dst
    for src in "$FRESH_SWIFT" "$FRESH_SWIFT_PACKAGES"; do
        dst="$ROOT$src"
        mkdir -p "$dst"
        # shellcheck disable=SC2016
        nsenter --target "$NS_PID" --mount -- /bin/sh -c \
            'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2"' bind "$(readlink -f "$src")" "$dst" ||
            e2e_die "cannot bind $src into the root's namespace"
    done
    # a Debian host has sysfs; read-only, as in a container
    nsenter --target "$NS_PID" --mount -- mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$ROOT/sys" ||
        e2e_die "cannot mount sysfs in the root's namespace"
    install -m 0644 /etc/gitconfig "$ROOT/etc/gitconfig"
}

# The repository's files as in the work tree: tracked files (deleted ones left out) and new files
# that are not ignored, owned by root as a clone of root's would be.
fresh_copy_repo() {
    mkdir -p "$ROOT$FRESH_HM"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard --deduplicate |
        (cd "$REPO" && while IFS= read -r -d '' f; do
            if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
        done) |
        tar -C "$REPO" --null --no-recursion -T - -cf - |
        tar -C "$ROOT$FRESH_HM" --no-same-owner -xf - ||
        e2e_die "cannot copy the repository into the root"
    [ -f "$ROOT$FRESH_HM/Makefile" ] && [ -f "$ROOT$FRESH_HM/Package.swift" ] ||
        e2e_die "the copy of the repository has no Makefile or Package.swift"
}

# run_in LABEL CMD...: runs CMD in the repository's copy inside the root (the clean environment of
# a root login with the toolchain on the PATH), at most FRESH_TIMEOUT seconds; its output goes to
# FRESH_LOG_DIR/LABEL.log. Sets RC and RUN_MS.
run_in() {
    local label=$1 t0
    shift
    t0=$(e2e_now_ms)
    # (in the background, waited for: an INT or TERM ends this script at once, and the
    # namespace with everything in it, instead of after the command)
    set +e
    E2E_CWD=$FRESH_HM in_root timeout -k 30 "$FRESH_TIMEOUT" "$@" >"$FRESH_LOG_DIR/$label.log" 2>&1 </dev/null &
    wait $!
    RC=$?
    set -e
    RUN_MS=$(($(e2e_now_ms) - t0))
    e2e_note "$*: exit $RC in $(e2e_secs "$RUN_MS")s (log: $FRESH_LOG_DIR/$label.log)"
    [ "$RC" -ne 124 ] || e2e_note "$*: stopped after FRESH_TIMEOUT=${FRESH_TIMEOUT}s"
}

# check_run NAME LABEL [LINES]: the last run_in exited 0 (else the last LINES (25) of its log).
check_run() {
    if [ "$RC" -eq 0 ]; then e2e_pass "$1 ($(e2e_secs "$RUN_MS") s)"; else
        e2e_fail "$1" "exit $RC after $(e2e_secs "$RUN_MS") s; the last lines of $FRESH_LOG_DIR/$2.log:" \
            "$(tail -n "${3:-25}" "$FRESH_LOG_DIR/$2.log")"
    fi
}

# build_time LABEL: what SwiftPM said the build in LABEL.log took ("... complete! (12.34s)").
build_time() {
    sed -n 's/^Build.* complete! (\([0-9.]*s\))$/\1/p' "$FRESH_LOG_DIR/$1.log" | tail -n 1
}

# The toolchain's executables that cannot find a library: in the root, and not on this host too
# (lldb's libpython may be missing on both: the toolchain was built for another Python).
missing_libraries() {
    local here there
    # shellcheck disable=SC2016
    local script='for f in "$1"/usr/bin/*; do [ -L "$f" ] && continue
        ldd "$f" 2>/dev/null | sed -n "s|^[[:space:]]*\([^ ]*\) => not found.*|${f##*/}: \1|p"; done | sort -u'
    here=$(/bin/sh -c "$script" ldd "$FRESH_SWIFT")
    there=$(in_root /bin/sh -c "$script" ldd "$FRESH_SWIFT")
    comm -13 <(printf '%s\n' "$here") <(printf '%s\n' "$there") | sed '/^$/d'
}
check_libraries() {
    local missing
    in_root /bin/sh -c 'command -v ldd' >/dev/null || { echo "no ldd in the root"; return 1; }
    missing=$(missing_libraries)
    [ -z "$missing" ] || { printf 'not found in the root (found on this host):\n%s\n' "$missing"; return 1; }
}

# Not a single file can be written under the bound toolchain.
check_read_only() {
    local d
    for d in "$FRESH_SWIFT" "$FRESH_SWIFT_PACKAGES"; do
        if in_root touch "$d/.hm-fresh-write-probe" 2>/dev/null; then
            rm -f "$d/.hm-fresh-write-probe"
            echo "$d is writable inside the root"
            return 1
        fi
    done
}

# The host sees none of the namespace's mounts.
check_host_mounts() {
    local found
    found=$(findmnt -rn -o TARGET | grep -F "$WORK/" || true)
    [ -z "$found" ] || { printf 'mounted on the host:\n%s\n' "$found"; return 1; }
}

# installed_in_root PACKAGE...: those of PACKAGE that dpkg has installed in the root.
installed_in_root() {
    # shellcheck disable=SC2016
    in_root /bin/sh -c 'for p; do
        dpkg-query -W -f "\${Status}\n" "$p" 2>/dev/null | grep -q "install ok installed" && echo "$p"; done; true' \
        installed "$@"
}

# The root is a machine without the project: none of its packages, accounts or files.
check_root_fresh() {
    local found
    found=$(installed_in_root postgresql-15 postgresql-common libpq-dev libpq5 debootstrap build-essential)
    [ -z "$found" ] || { echo "installed already: $found"; return 1; }
    ! in_root getent passwd postgres >/dev/null || { echo "the root has a postgres account"; return 1; }
    for f in /etc/postgresql /etc/hearthminds /var/log/hearthminds /var/lib/postgresql /root/.cache /root/.swiftpm; do
        [ ! -e "$ROOT$f" ] || { echo "the root has $f"; return 1; }
    done
}

check_setup_packages() {
    local missing
    [ "${#SETUP_PACKAGES[@]}" -gt 0 ] || { echo "no SETUP_PACKAGES read from the Makefile"; return 1; }
    missing=$(comm -23 <(printf '%s\n' "${SETUP_PACKAGES[@]}" | sort -u) <(installed_in_root "${SETUP_PACKAGES[@]}" | sort -u))
    [ -z "$missing" ] || { echo "not installed: $(tr "\n" " " <<<"$missing")"; return 1; }
}

check_pgvector() {
    test -f "$ROOT/usr/lib/postgresql/15/lib/vector.so" && test -f "$ROOT/usr/share/postgresql/15/extension/vector.control"
}

# --- main -------------------------------------------------------------------------------------
TOTAL_T0=$(e2e_now_ms)
e2e_require
for tool in git timeout comm; do command -v "$tool" >/dev/null || e2e_die "missing tool: $tool"; done
[ -x "$FRESH_SWIFT/usr/bin/swift" ] || e2e_die "no Swift toolchain at $FRESH_SWIFT (FRESH_SWIFT)"
[ -d "$FRESH_SWIFT_PACKAGES" ] || e2e_die "no local copy of the Swift packages at $FRESH_SWIFT_PACKAGES (FRESH_SWIFT_PACKAGES)"
[ -f /etc/gitconfig ] || e2e_die "no /etc/gitconfig (the url.<copy>.insteadOf that sends git to $FRESH_SWIFT_PACKAGES)"
git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 || e2e_die "$REPO is not a git work tree"
mkdir -p "$FRESH_LOG_DIR" || e2e_die "cannot make $FRESH_LOG_DIR"
rm -f "$FRESH_LOG_DIR"/*.log
MIRROR=$(e2e_mirror) || e2e_die "no Debian mirror for $(e2e_host_codename) in /etc/apt/sources.list(.d); set E2E_MIRROR"
curl -fsS -o /dev/null --max-time 20 "${MIRROR%/}/dists/$E2E_SUITE/Release" ||
    e2e_die "the Debian mirror $MIRROR is not reachable: no network? (mirror from E2E_MIRROR or the apt sources)"
e2e_log "fresh: repository $REPO; toolchain $FRESH_SWIFT ($("$FRESH_SWIFT/usr/bin/swift" --version 2>/dev/null | head -n 1)); mirror $MIRROR (host apt sources)"
# (no remove_stale_roots here: it takes any hearthminds-e2e-* root without a live namespace,
# which a concurrent e2e run's root between two namespaces is; a fresh root that a killed run
# left behind, hearthminds-e2e-fresh.*, is removed by the next e2e run's)

# the roots: minbase (debootstrap), with apt sources and fresh lists (made again after a day),
# and that with the toolchain's packages (made again with its parent, or when the list changed)
e2e_cached_root "$MIRROR"
timing "minbase root (debootstrap), cached" "$E2E_CACHE_MS"
e2e_layer apt "$E2E_TARBALL" e2e_layer_apt $((24 * 60))
timing "apt root (sources, lists), cached" "$E2E_LAYER_MS"
toolchain_list="$E2E_CACHE_DIR/swift-$E2E_SUITE-$(e2e_arch).packages"
if [ "$(cat "$toolchain_list" 2>/dev/null)" = "${FRESH_TOOLCHAIN_PACKAGES[*]}" ]; then
    e2e_layer swift "$E2E_LAYER" fresh_layer_swift
else
    E2E_REFRESH_CACHE=1 e2e_layer swift "$E2E_LAYER" fresh_layer_swift
    printf '%s\n' "${FRESH_TOOLCHAIN_PACKAGES[*]}" >"$toolchain_list"
fi
timing "swift root (the toolchain's packages), cached" "$E2E_LAYER_MS"
SWIFT_TARBALL=$E2E_LAYER

e2e_log "== a fresh Debian 12 root with Swift installed"
t0=$(e2e_now_ms)
# the root's / a mount point, as a host's is (unshare --propagation, in Tests/private-host.sh,
# changes the propagation of /, which a mere chroot directory refuses)
# shellcheck disable=SC2034,SC2016
E2E_NS_SETUP='mount --rbind "$R" "$R"'
root_create fresh "$SWIFT_TARBALL"
ns_start
fresh_bind_toolchain
fresh_copy_repo
timing "root unpacked, toolchain bound, repository copied" $(($(e2e_now_ms) - t0))
# a fresh login's environment, with the toolchain on the PATH
E2E_ENV=(PATH="$FRESH_SWIFT/usr/bin:$E2E_ROOT_PATH" LC_ALL=C.UTF-8)

check "the root has none of the project's packages, accounts or files" check_root_fresh
if version=$(in_root swift --version 2>&1); then
    e2e_pass "swift runs in the root: $(head -n 1 <<<"$version")"
else
    e2e_die "swift does not run in the root: $version"
fi
check "the toolchain's executables find their libraries in the root (ldd)" check_libraries
check "the toolchain and the packages' copy are read-only in the root" check_read_only
check "the namespace's mounts are not on the host" check_host_mounts
grep -q '^test-swift:' "$ROOT$FRESH_HM/Makefile" || e2e_die "the Makefile has no test-swift target"
mapfile -t SETUP_PACKAGES < <(in_root make -C "$FRESH_HM" -s -pn setup 2>/dev/null |
    sed -n 's/^SETUP_PACKAGES :\{0,1\}= //p' | head -n 1 | tr -s ' ' '\n' | sed '/^$/d')

e2e_log "== make setup"
run_in setup make setup
check_run "make setup exits 0" setup
timing "make setup" "$RUN_MS"
e2e_note "make setup's debug build of hearthminds (swift build --product hearthminds): $(build_time setup)"
check "make setup installed every package of SETUP_PACKAGES (${#SETUP_PACKAGES[@]})" check_setup_packages
check "make setup installed pgvector for PostgreSQL 15 (vector.so, vector.control)" check_pgvector

e2e_log "== the Swift tiers (make test-swift)"
run_in build swift build --build-tests
check_run "swift build --build-tests exits 0" build
timing "swift build --build-tests" "$RUN_MS"
e2e_note "swift build --build-tests: SwiftPM says $(build_time build)"
run_in test-swift make test-swift
# (the failed tests' issues follow, in a check of their own)
check_run "make test-swift exits 0" test-swift 3
timing "make test-swift (setup and build again, then the tests)" "$RUN_MS"

TEST_LOG="$ROOT$FRESH_HM/.build/test-swift.log"
[ -f "$TEST_LOG" ] && cp "$TEST_LOG" "$FRESH_LOG_DIR/test-swift-output.log"
# (━: Swift Testing's mark for a result with known issues, withKnownIssue: it passed)
summary=$(grep -a -E '^(✔|✘|━) Test run with [0-9]+ tests? .* (passed|failed) after ' "$TEST_LOG" 2>/dev/null | tail -n 1 || true)
failed_tests=$(grep -a -E '^✘ Test .* failed after [0-9.]+ seconds' "$TEST_LOG" 2>/dev/null | grep -a -v '^✘ Test run with ' || true)
passed_count=$(grep -a -E '^(✔|━) Test .* passed after [0-9.]+ seconds' "$TEST_LOG" 2>/dev/null | grep -a -v -c -E '^(✔|━) Test run with ' || true)
failed_count=$(printf '%s' "$failed_tests" | grep -a -c . || true)
if [ -z "$summary" ]; then
    e2e_fail "the Swift tests ran: no Swift Testing summary line in .build/test-swift.log" \
        "$(tail -n 15 "$TEST_LOG" 2>/dev/null || echo "(no .build/test-swift.log)")"
else
    e2e_pass "the Swift tests ran: $summary ($passed_count passed, $failed_count failed)"
    if [ "$failed_count" -eq 0 ] && [[ "$summary" == *" passed after "* ]]; then
        e2e_pass "no Swift test failed (0 of $((passed_count + failed_count)))"
    else
        e2e_fail "Swift tests failed: $failed_count of $((passed_count + failed_count))" \
            "their issues (all in $FRESH_LOG_DIR/test-swift-output.log):" \
            "$(grep -a -E '✘|recorded an issue|Expectation failed|Caught error' "$TEST_LOG" | cut -c1-400 | tail -n 40)"
    fi
fi

check "the namespace's mounts are still not on the host (after the tests)" check_host_mounts
t0=$(e2e_now_ms)
root_remove
timing "root removed" $(($(e2e_now_ms) - t0))

timing "total" $(($(e2e_now_ms) - TOTAL_T0))
e2e_finish fresh
