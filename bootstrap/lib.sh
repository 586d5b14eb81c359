# shellcheck shell=bash
# The shell part of the bootstrap: what must happen before any Swift binary can run.
# Sourced by install.sh; HM_ROOT is the directory install.sh is in.

hm_say() { printf '%s\n' "$*"; }
hm_err() { printf 'install.sh: %s\n' "$*" >&2; }

# The ordered step names, from bootstrap/steps (comments and blank lines skipped).
hm_steps() {
    local name _rest
    while IFS=$'\t' read -r name _rest; do
        case "$name" in '' | '#'*) continue ;; esac
        printf '%s\n' "$name"
    done <"$HM_ROOT/bootstrap/steps"
}

hm_step_description() {
    local name rest
    while IFS=$'\t' read -r name rest; do
        [ "$name" = "$1" ] && { printf '%s\n' "$rest"; return 0; }
    done <"$HM_ROOT/bootstrap/steps"
    return 1
}

# Runtime packages the binaries need: libpq5 (they link libpq dynamically; the Swift
# runtime is linked in statically by `make dist`).
HM_RUNTIME_PACKAGES=(libpq5)

# The environment of what install.sh runs itself (apt-get, swift build): the few variables a
# child needs, never ours (configuration keys, *_PASSWORD). The steps get install.sh's, which
# is where they read the configuration's environment layer.
hm_child_env() {
    local name
    HM_CHILD_ENV=(env -i "PATH=$PATH" "LC_ALL=C.UTF-8" "HOME=${HOME:-/root}")
    for name in http_proxy https_proxy ftp_proxy no_proxy all_proxy HTTP_PROXY HTTPS_PROXY FTP_PROXY NO_PROXY ALL_PROXY; do
        [ -n "${!name:-}" ] && HM_CHILD_ENV+=("$name=${!name}")
    done
    HM_CHILD_ENV+=("$@")
}

# The run lock: /run/hearthminds/bootstrap.lock (HEARTHMINDS_LOCK_DIR names another directory:
# tests use a private one), in a directory only root may enter (made 0700; refused when it is
# a symbolic link or not root's), opened on descriptor 9 and flocked. Exit status 75 when
# another run holds it, 1 when the directory fails the rules.
HM_LOCK_DIR=${HEARTHMINDS_LOCK_DIR:-/run/hearthminds}
HM_LOCK_FILE=$HM_LOCK_DIR/bootstrap.lock
hm_take_lock() {
    local owner mode parent
    parent=$(dirname "$HM_LOCK_DIR")
    read -r owner mode < <(stat -c '%u %a' "$parent") || { hm_err "cannot stat $parent"; return 1; }
    if [ -L "$parent" ] || [ "$owner" != 0 ] || (( (8#$mode & 8#022) && !(8#$mode & 8#1000) )); then
        hm_err "$parent is not root's alone (owner uid $owner, mode $mode): refusing to lock there"
        return 1
    fi
    if [ -L "$HM_LOCK_DIR" ]; then
        hm_err "$HM_LOCK_DIR is a symbolic link: refused (remove it; the suite makes the directory itself)"
        return 1
    fi
    if [ ! -e "$HM_LOCK_DIR" ]; then
        mkdir -m 0700 "$HM_LOCK_DIR" || { hm_err "cannot create $HM_LOCK_DIR"; return 1; }
    fi
    read -r owner mode < <(stat -c '%u %a' "$HM_LOCK_DIR") || { hm_err "cannot stat $HM_LOCK_DIR"; return 1; }
    if [ ! -d "$HM_LOCK_DIR" ] || [ -L "$HM_LOCK_DIR" ] || [ "$owner" != 0 ]; then
        hm_err "$HM_LOCK_DIR is not a directory of root's (owner uid $owner): refused (remove it and rerun)"
        return 1
    fi
    if (( 8#$mode & 8#077 )); then chmod 0700 "$HM_LOCK_DIR" || return 1; fi
    if [ -L "$HM_LOCK_FILE" ] || { [ -e "$HM_LOCK_FILE" ] && [ ! -f "$HM_LOCK_FILE" ]; }; then
        hm_err "$HM_LOCK_FILE is not a regular file: refused (remove it and rerun)"
        return 1
    fi
    exec 9<>"$HM_LOCK_FILE" || { hm_err "cannot open $HM_LOCK_FILE"; return 1; }
    if ! flock -n 9; then
        hm_err "another install.sh is running, or a step run by hand (it holds the lock $HM_LOCK_FILE); not starting"
        return 75
    fi
}

hm_missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

hm_ensure_runtime() {
    local missing
    mapfile -t missing < <(hm_missing_packages "${HM_RUNTIME_PACKAGES[@]}")
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "${HM_DRY_RUN:-0}" = 1 ]; then
        hm_err "dry run: the binaries need ${missing[*]}, which is not installed; install it first (apt-get install ${missing[*]})"
        return 1
    fi
    hm_say "-- installing runtime packages: ${missing[*]}"
    hm_child_env DEBIAN_FRONTEND=noninteractive
    "${HM_CHILD_ENV[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        { "${HM_CHILD_ENV[@]}" apt-get update >/dev/null && "${HM_CHILD_ENV[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
        { hm_err "cannot install ${missing[*]} with apt-get"; return 1; }
}

# Sets HM_BIN to a directory holding an hm-<step> executable for every step: the prebuilt
# binaries of a dist tarball (bootstrap/bin: hard links to its one executable, hearthminds),
# else a release build from this checkout when a Swift toolchain is on the PATH (SwiftPM builds
# the one executable; its hm-<step> names are made here as links to it).
hm_find_binaries() {
    local step missing=0
    if [ -d "$HM_ROOT/bootstrap/bin" ]; then
        HM_BIN="$HM_ROOT/bootstrap/bin"
    elif command -v swift >/dev/null 2>&1 && [ -f "$HM_ROOT/Package.swift" ]; then
        hm_say "-- building the step executables (swift build -c release)"
        hm_child_env ${TMPDIR:+"TMPDIR=$TMPDIR"}
        "${HM_CHILD_ENV[@]}" swift build -c release --package-path "$HM_ROOT" >/dev/null 2>&1 ||
            { hm_err "swift build failed: run 'swift build -c release' in $HM_ROOT to see why"; return 1; }
        HM_BIN=$("${HM_CHILD_ENV[@]}" swift build -c release --package-path "$HM_ROOT" --show-bin-path)
        while read -r step; do
            [ -L "$HM_BIN/hm-$step" ] || ln -sfn hearthminds "$HM_BIN/hm-$step" ||
                { hm_err "cannot link $HM_BIN/hm-$step to hearthminds"; return 1; }
        done < <(hm_steps; echo reset; echo migrate)
    else
        hm_err "no step executables: bootstrap/bin/ is missing and no Swift toolchain is on the PATH."
        hm_err "Use the release tarball (make dist builds dist/hearthminds-bootstrap.tar.gz, which has"
        hm_err "bootstrap/bin/), or install Swift 6 (https://www.swift.org/install/linux/) and rerun."
        return 1
    fi
    while read -r step; do
        if [ ! -x "$HM_BIN/hm-$step" ]; then
            hm_err "missing executable $HM_BIN/hm-$step"
            missing=1
        fi
    done < <(hm_steps)
    return "$missing"
}

hm_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

hm_seconds() { # milliseconds -> seconds with one decimal
    printf '%d.%d' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 ))
}
