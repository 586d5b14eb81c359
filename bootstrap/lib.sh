# shellcheck shell=bash
# The shell part of the bootstrap: what must happen before any Swift binary can run.
# Sourced by install.sh; HM_ROOT is the directory install.sh is in.

hm_say() { printf '%s\n' "$*"; }
hm_err() { printf 'install.sh: %s\n' "$*" >&2; }

# The ordered step names and what each does, read once from bootstrap/steps (comments and blank
# lines skipped): HM_STEPS, and HM_STEP_DESCRIPTIONS by name. install.sh forks nothing it can do
# in bash itself (no subshell, no date, no grep): a converged run spends its time in the steps.
hm_load_steps() {
    local name rest
    HM_STEPS=()
    declare -gA HM_STEP_DESCRIPTIONS=()
    while IFS=$'\t' read -r name rest; do
        case "$name" in '' | '#'*) continue ;; esac
        HM_STEPS+=("$name")
        HM_STEP_DESCRIPTIONS[$name]=$rest
    done <"$HM_ROOT/bootstrap/steps"
}

# The tools: commands that are not steps (not in bootstrap/steps): hm-reset, which install.sh
# runs only with --reset, hm-migrate, hm-restore (install.sh --restore), and hm-run-metrics, which
# install.sh runs when a run ends (`hearthminds --list-tools`, which MultiCallTests holds it to).
HM_TOOLS=(reset migrate restore run-metrics)

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
    local owner mode parent downer="" dmode=""
    parent=${HM_LOCK_DIR%/*}
    parent=${parent:-/}
    # One stat for both when the directory is there (every run but the first): it does not
    # follow a link, which is refused below.
    if [ -e "$HM_LOCK_DIR" ] || [ -L "$HM_LOCK_DIR" ]; then
        { read -r owner mode && read -r downer dmode; } < <(stat -c '%u %a' "$parent" "$HM_LOCK_DIR") ||
            { hm_err "cannot stat $parent and $HM_LOCK_DIR"; return 1; }
    else
        read -r owner mode < <(stat -c '%u %a' "$parent") || { hm_err "cannot stat $parent"; return 1; }
    fi
    if [ -L "$parent" ] || [ "$owner" != 0 ] || (( (8#$mode & 8#022) && !(8#$mode & 8#1000) )); then
        hm_err "$parent is not root's alone (owner uid $owner, mode $mode): refusing to lock there"
        return 1
    fi
    if [ -L "$HM_LOCK_DIR" ]; then
        hm_err "$HM_LOCK_DIR is a symbolic link: refused (remove it; the suite makes the directory itself)"
        return 1
    fi
    if [ -z "$downer" ]; then
        mkdir -m 0700 "$HM_LOCK_DIR" || { hm_err "cannot create $HM_LOCK_DIR"; return 1; }
        read -r downer dmode < <(stat -c '%u %a' "$HM_LOCK_DIR") || { hm_err "cannot stat $HM_LOCK_DIR"; return 1; }
    fi
    owner=$downer mode=$dmode
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

# A dry run's counts of one step (HearthKit's DryRunCounts): install.sh opens HM_COUNTS_FILE, in
# the root-only lock directory, on descriptor 8 before each step and names it in
# HEARTHMINDS_COUNTS_FD; the step writes one line, "<would change> <unknown> <needs>" (needs: the
# steps its unknown checks need, comma-separated, or -). hm_dry_run_counts reads it: the step's
# part of the summary in HM_COUNTS_TEXT, and the totals in HM_WOULD_CHANGE and HM_UNKNOWN.
HM_COUNTS_FILE=$HM_LOCK_DIR/dry-run.counts
HM_WOULD_CHANGE=0 HM_UNKNOWN=0 HM_COUNTS_TEXT=""
hm_dry_run_counts() {
    local would="" unknown="" needs=""
    HM_COUNTS_TEXT=""
    { [ -f "$HM_COUNTS_FILE" ] && read -r would unknown needs <"$HM_COUNTS_FILE"; } || true
    [[ $would =~ ^[0-9]+$ && $unknown =~ ^[0-9]+$ ]] || return 0
    HM_WOULD_CHANGE=$((HM_WOULD_CHANGE + would)) HM_UNKNOWN=$((HM_UNKNOWN + unknown))
    HM_COUNTS_TEXT="  $would would change"
    if [ "$unknown" -gt 0 ]; then
        HM_COUNTS_TEXT+=", $unknown unknown"
        [ "$needs" != - ] && HM_COUNTS_TEXT+=" (needs ${needs//,/, })"
    fi
    return 0
}

# HM_MISSING: those of the given packages dpkg has not installed. The usual answer costs no
# process: libpq5 is installed when dpkg keeps its file list (/var/lib/dpkg/info/libpq5:<arch>.list)
# and its library is there, for the architectures named below; anything else asks dpkg-query.
hm_missing_packages() {
    local pkg arch="" triplet=""
    case "${HOSTTYPE:-}" in
        x86_64) arch=amd64 triplet=x86_64-linux-gnu ;;
        aarch64) arch=arm64 triplet=aarch64-linux-gnu ;;
    esac
    HM_MISSING=()
    for pkg in "$@"; do
        if [ "$pkg" = libpq5 ] && [ -n "$arch" ] && [ -f "/var/lib/dpkg/info/libpq5:$arch.list" ] &&
            [ -e "/usr/lib/$triplet/libpq.so.5" ]; then
            continue
        fi
        [ "$(dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || HM_MISSING+=("$pkg")
    done
}

# What an interrupted dpkg left (a power cut in an install): apt refuses every install until
# `dpkg --configure -a` has run, as its message tells the operator; this runs it when
# `dpkg --audit` reports anything (waiting while another dpkg holds its lock, 5 minutes at
# most), then `apt-get --fix-broken install` for a package whose unpack was cut. The postgres
# step does the same (HearthKit's Apt.finishInterrupted) for the steps' own installs.
hm_finish_dpkg() {
    local i out
    [ -z "$(dpkg --audit 2>/dev/null)" ] && return 0
    hm_say "-- dpkg was interrupted: finishing its work (dpkg --configure -a)"
    # (bounded: the maintainer scripts read the postgres account's files as root; again only
    # while dpkg's own lock error is all it said)
    for i in $(seq 1 150); do
        out=$("${HM_CHILD_ENV[@]}" timeout --kill-after=5 900 dpkg --force-confdef --force-confold --configure -a 2>&1 >/dev/null) && break
        # (dpkg's own lock error, its pid, then its two lines of note: nothing else)
        [[ $out =~ ^dpkg:\ error:\ dpkg\ (frontend|database)\ lock\ was\ locked\ by\ another\ process\ with\ pid\ [0-9]+$'\n'Note:\ removing\ the\ lock\ file\ is\ always\ wrong,\ can\ damage\ the\ locked\ area$'\n'and\ the\ entire\ system\.\ See\ \<https://wiki\.debian\.org/Teams/Dpkg/FAQ#db-lock\>\.$ ]] || break
        sleep 2
    done
    if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
        # --no-remove: apt aborts rather than remove a package (an operator's) to settle others
        "${HM_CHILD_ENV[@]}" timeout --kill-after=5 900 apt-get -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold -y --no-install-recommends --no-remove --fix-broken install >&2 || true
    fi
    if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
        hm_err "dpkg was interrupted and its work could not be finished (dpkg --configure -a; apt-get --fix-broken install):"
        dpkg --audit >&2 || true
        return 1
    fi
}

hm_ensure_runtime() {
    local missing
    hm_missing_packages "${HM_RUNTIME_PACKAGES[@]}"
    missing=(${HM_MISSING[@]+"${HM_MISSING[@]}"})
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "${HM_DRY_RUN:-0}" = 1 ]; then
        hm_err "dry run: the binaries need ${missing[*]}, which is not installed; install it first (apt-get install ${missing[*]})"
        return 1
    fi
    hm_say "-- installing runtime packages: ${missing[*]}"
    hm_child_env DEBIAN_FRONTEND=noninteractive
    hm_finish_dpkg || return 1
    # dpkg's lock waited for (apt-daily and unattended-upgrades hold it after a boot), as the
    # steps do (HearthKit's Apt).
    local apt=("${HM_CHILD_ENV[@]}" apt-get -o DPkg::Lock::Timeout=300)
    "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        { "${apt[@]}" update >/dev/null && "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
        { hm_err "cannot install ${missing[*]} with apt-get"; return 1; }
}

# Sets HM_BIN to a directory holding an hm-<step> executable for every step: the prebuilt
# binaries of a dist tarball (bootstrap/bin: hard links to its one executable, hearthminds),
# else a release build from this checkout when a Swift toolchain is on the PATH (SwiftPM builds
# the one executable; its hm-<step> and hm-<tool> names are made here as links to it).
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
        for step in "${HM_STEPS[@]}" "${HM_TOOLS[@]}"; do
            [ -L "$HM_BIN/hm-$step" ] || ln -sfn hearthminds "$HM_BIN/hm-$step" ||
                { hm_err "cannot link $HM_BIN/hm-$step to hearthminds"; return 1; }
        done
    else
        hm_err "no step executables: bootstrap/bin/ is missing and no Swift toolchain is on the PATH."
        hm_err "Use the release tarball (make dist builds dist/hearthminds-bootstrap.tar.gz, which has"
        hm_err "bootstrap/bin/), or install Swift 6 (https://www.swift.org/install/linux/) and rerun."
        return 1
    fi
    for step in "${HM_STEPS[@]}"; do
        if [ ! -x "$HM_BIN/hm-$step" ]; then
            hm_err "missing executable $HM_BIN/hm-$step"
            missing=1
        fi
    done
    return "$missing"
}

# hm_now_ms VAR: milliseconds since the epoch into VAR (bash's clock; the separator of
# EPOCHREALTIME follows the locale, so every non-digit goes).
hm_now_ms() {
    local now=${EPOCHREALTIME//[!0-9]/}
    printf -v "$1" '%d' $(( 10#$now / 1000 ))
}

# hm_seconds VAR MS: milliseconds as seconds with one decimal, into VAR.
hm_seconds() {
    printf -v "$1" '%d.%d' $(( $2 / 1000 )) $(( ($2 % 1000) / 100 ))
}
