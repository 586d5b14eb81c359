#!/usr/bin/env bash
# HearthMinds bootstrap: turns a Debian 12 host into a ready HearthMinds database host by
# running the step executables in order (bootstrap/steps), halting at the first false.
set -euo pipefail

# The directory install.sh is in, as an absolute path (no subshell: `cd` here would change
# what a relative --config means).
HM_ROOT=${BASH_SOURCE[0]%/*}
[ "$HM_ROOT" = "${BASH_SOURCE[0]}" ] && HM_ROOT=.
[ -z "$HM_ROOT" ] && HM_ROOT=/
case "$HM_ROOT" in /*) ;; .) HM_ROOT=$PWD ;; *) HM_ROOT=$PWD/$HM_ROOT ;; esac
# shellcheck source=bootstrap/lib.sh
. "$HM_ROOT/bootstrap/lib.sh"

usage() {
    cat <<USAGE
Usage: sudo ./install.sh [options]

Runs the HearthMinds host steps in order and stops at the first that reports false.

Options:
  --list           list the steps in order, and exit
  --only STEP      run this one step only
  --from STEP      run from this step to the end
  --dry-run        run every step's checks and report what would change; change nothing
  --config FILE    host configuration (default /etc/hearthminds/hearthminds.env)
  --reset          rebuild: first hm-reset (drops our databases, roles and client files),
                   then every step; needs --yes (or a confirmation typed on a terminal)
  --yes            confirm the reset: destroy without asking
  --reset-cluster  with --reset: drop the whole cluster (pg_dropcluster), not just our databases
  --reset-service-user
                   with --reset: remove the service system account and its home too
  --restore        rebuild from the backups: the steps up to pgvector, then hm-restore (the
                   cluster's newest state from the pgBackRest repository, its data moved aside
                   first), then the other steps
  --restore-to TIME
                   the same, to the state at TIME (e.g. '2026-12-06 17:30:00+00')
  --retired NAME   with --restore: from the backups hm-reset --cluster retired (NAME)
  -h, --help       this help

Exit status: 0 every step true; 1 a step reported false (the message names it);
64 bad usage or bad configuration (nothing changed); 75 another run holds the lock
(/run/hearthminds/bootstrap.lock).
Log: one JSON line per action in /var/log/hearthminds/bootstrap.jsonl (HEARTHMINDS_LOG).
USAGE
}

only="" from="" config="" list=0
reset=0 reset_args=()
restore=0 restore_args=()
HM_DRY_RUN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --list) list=1 ;;
        --only) [ $# -ge 2 ] || { hm_err "--only needs a step name"; exit 64; }; only=$2; shift ;;
        --only=*) only=${1#--only=} ;;
        --from) [ $# -ge 2 ] || { hm_err "--from needs a step name"; exit 64; }; from=$2; shift ;;
        --from=*) from=${1#--from=} ;;
        --dry-run) HM_DRY_RUN=1 ;;
        --config) [ $# -ge 2 ] || { hm_err "--config needs a file"; exit 64; }; config=$2; shift ;;
        --config=*) config=${1#--config=} ;;
        --reset) reset=1 ;;
        --yes) reset_args+=(--yes) ;;
        --reset-cluster) reset=1; reset_args+=(--cluster) ;;
        --reset-service-user) reset=1; reset_args+=(--service-user) ;;
        --restore) restore=1 ;;
        --restore-to) [ $# -ge 2 ] || { hm_err "--restore-to needs a time"; exit 64; }; restore=1; restore_args+=(--to "$2"); shift ;;
        --restore-to=*) restore=1; restore_args+=(--to "${1#--restore-to=}") ;;
        --retired) [ $# -ge 2 ] || { hm_err "--retired needs a stanza name"; exit 64; }; restore=1; restore_args+=(--retired "$2"); shift ;;
        --retired=*) restore=1; restore_args+=(--retired "${1#--retired=}") ;;
        -h | --help) usage; exit 0 ;;
        *) hm_err "unknown option '$1' (see --help)"; exit 64 ;;
    esac
    shift
done

hm_load_steps
all_steps=("${HM_STEPS[@]}")

if [ "$list" = 1 ]; then
    n=0
    for step in "${all_steps[@]}"; do
        n=$((n + 1))
        printf '%2d  %-14s %s\n' "$n" "$step" "${HM_STEP_DESCRIPTIONS[$step]}"
    done
    printf '    %-14s %s\n' reset "not a step: the tool hm-reset, run first only with --reset (destroys our databases, roles and client files)"
    exit 0
fi

is_step() { local s; for s in "${all_steps[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
for name in "$only" "$from"; do
    if [ -n "$name" ] && ! is_step "$name"; then
        hm_err "no step named '$name'; the steps are: ${all_steps[*]}"
        exit 64
    fi
done
if [ -n "$only" ] && [ -n "$from" ]; then hm_err "--only and --from exclude each other"; exit 64; fi
if [ "$reset" = 1 ] && { [ -n "$only" ] || [ -n "$from" ]; }; then
    hm_err "--reset rebuilds the whole host: it runs every step, so it excludes --only and --from"
    exit 64
fi
if [ "$restore" = 1 ] && { [ -n "$only" ] || [ -n "$from" ] || [ "$reset" = 1 ]; }; then
    hm_err "--restore rebuilds the whole host from the backups: it excludes --only, --from and --reset"
    exit 64
fi
if [ "$reset" = 0 ] && [ "${#reset_args[@]}" -gt 0 ]; then hm_err "--yes confirms --reset; there is no reset to confirm"; exit 64; fi
if [ -n "$config" ] && [ ! -r "$config" ]; then hm_err "--config: cannot read '$config'"; exit 64; fi

steps=()
if [ -n "$only" ]; then
    steps=("$only")
else
    started=0
    [ -z "$from" ] && started=1
    for step in "${all_steps[@]}"; do
        [ "$step" = "$from" ] && started=1
        [ "$started" = 1 ] && steps+=("$step")
    done
fi

if [ "$EUID" -ne 0 ]; then
    hm_err "must run as root: sudo ./install.sh"
    exit 64
fi

# One run at a time: a second install.sh (or step executable) refuses at once. The lock is in
# a directory only root may enter (bootstrap/lib.sh: hm_take_lock); its descriptor, 9, is
# passed to each step (HEARTHMINDS_LOCK_FD), which checks it and holds the lock through it.
hm_take_lock || exit $?

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"
export HEARTHMINDS_ROOT="$HM_ROOT"
if [ -z "${HEARTHMINDS_RUN_ID:-}" ]; then
    TZ=UTC0 printf -v HEARTHMINDS_RUN_ID '%(%Y%m%dT%H%M%SZ)T-%d' -1 "$$"
fi
export HEARTHMINDS_RUN_ID
export DEBIAN_FRONTEND=noninteractive

# 9>&-: what these start (apt-get, a swift build) has no business with the lock.
hm_ensure_runtime 9>&- || exit 1
hm_find_binaries 9>&- || exit 1
if [ "$reset" = 1 ] && [ ! -x "$HM_BIN/hm-reset" ]; then hm_err "--reset: missing executable $HM_BIN/hm-reset"; exit 1; fi

args=()
[ -n "$config" ] && args+=(--config "$config")
[ "$HM_DRY_RUN" = 1 ] && args+=(--dry-run)
# A dry run's steps report their counts (would change, unknown) on descriptor 8: hm_dry_run_counts.
[ "$HM_DRY_RUN" = 1 ] && export HEARTHMINDS_COUNTS_FD=8

# --reset: the tool hm-reset (not a step: bootstrap/steps does not list it) runs first, in this
# run (its actions in the same log run, its line in the summary).
[ "$reset" = 1 ] && steps=(reset "${steps[@]}")
# --restore: the tool hm-restore after pgvector (the cluster and its packages are there), before
# the steps that work in the databases.
# A restore that an interruption left half done comes first: no step may start or change the
# half-restored cluster (the postgres step refuses while its marker is there).
if [ "$restore" = 1 ]; then
    with=()
    under_way=0
    for marker in /etc/pgbackrest/hearthminds/*/restore-in-progress; do [ -f "$marker" ] && under_way=1; done
    [ "$under_way" = 1 ] && with+=(restore)
    for step in "${steps[@]}"; do
        with+=("$step")
        [ "$step" = pgvector ] && [ "$under_way" = 0 ] && with+=(restore)
    done
    steps=("${with[@]}")
fi

total=${#steps[@]}
n=0 failed="" summary=()
hm_now_ms run_started

# The run's textfile metrics (hm-run-metrics, docs/monitoring.md): its exit status, the step that
# ended it false, its duration. Not in a dry run; a failure to write them is said, never fatal.
run_metrics() {
    [ "$HM_DRY_RUN" = 1 ] && return 0
    [ -x "$HM_BIN/hm-run-metrics" ] || return 0
    local end secs
    hm_now_ms end
    hm_seconds secs $(( end - run_started ))
    "$HM_BIN/hm-run-metrics" ${config:+--config "$config"} --exit-status "$1" --seconds "$secs" \
        --failed-step "${2:-}" 9>&- || hm_err "note: the run's metrics were not written (hm-run-metrics)"
}
for step in "${steps[@]}"; do
    n=$((n + 1))
    hm_say ""
    step_args=("${args[@]}")
    if [ "$step" = reset ]; then
        hm_say "[$n/$total] reset: destroy what the suite made, then rebuild"
        step_args+=(${reset_args[@]+"${reset_args[@]}"})
    elif [ "$step" = restore ]; then
        hm_say "[$n/$total] restore: bring the cluster back from the backup repository"
        step_args+=(${restore_args[@]+"${restore_args[@]}"})
    else
        hm_say "[$n/$total] $step: ${HM_STEP_DESCRIPTIONS[$step]}"
    fi
    hm_now_ms t0
    [ "$HM_DRY_RUN" = 1 ] && exec 8>"$HM_COUNTS_FILE"
    set +e
    # The step holds the lock through install.sh's descriptor (it sets close-on-exec on it, so
    # no daemon it starts — the postmaster, where no systemd runs — keeps it).
    HEARTHMINDS_LOCK_FD=9 "$HM_BIN/hm-$step" ${step_args[@]+"${step_args[@]}"}
    rc=$?
    set -e
    hm_now_ms t1
    hm_seconds elapsed $(( t1 - t0 ))
    if [ "$HM_DRY_RUN" = 1 ]; then exec 8>&-; hm_dry_run_counts; fi
    if [ "$rc" -eq 0 ]; then
        printf -v line '  %-14s ok      %6ss%s' "$step" "$elapsed" "$HM_COUNTS_TEXT"
        summary+=("$line")
        continue
    fi
    printf -v line '  %-14s FALSE   %6ss  (exit %d)%s' "$step" "$elapsed" "$rc" "$HM_COUNTS_TEXT"
    summary+=("$line")
    if [ "$rc" -eq 64 ]; then
        hm_err "step '$step': bad usage or configuration (exit 64); nothing was changed by it"
        run_metrics 64 "$step"
        exit 64
    fi
    if [ "$HM_DRY_RUN" = 1 ]; then
        failed="${failed:+$failed }$step"
        continue
    fi
    hm_say ""
    hm_say "Summary (run $HEARTHMINDS_RUN_ID):"
    printf '%s\n' "${summary[@]}"
    rest=("${steps[@]:$n}")
    hm_err "step '$step' reported false (exit $rc); stopped here.${rest[*]:+ Not run: ${rest[*]}.}"
    if [ "$step" = restore ]; then
        rerun=(--restore ${restore_args[@]+"${restore_args[@]}"})
        [ -n "$config" ] && rerun+=(--config "$config")
        printf -v shown ' %q' "${rerun[@]}"
        hm_err "Fix the cause shown above, then rerun (it finishes the restore):${shown/# / sudo ./install.sh }"
    elif [ "$step" = reset ]; then
        # (reset is no step: --from cannot name it; the same reset again, then every step)
        # (with the same configuration file: without it, the advice would reset the default
        # configuration's cluster; the environment's keys are the operator's to give again)
        rerun=(--reset)
        for a in ${reset_args[@]+"${reset_args[@]}"}; do
            case "$a" in --cluster) rerun+=(--reset-cluster) ;; --service-user) rerun+=(--reset-service-user) ;; *) rerun+=("$a") ;; esac
        done
        [ -n "$config" ] && rerun+=(--config "$config")
        printf -v shown ' %q' "${rerun[@]}"
        hm_err "Fix the cause shown above, then rerun (with the same environment):${shown/# / sudo ./install.sh }"
    else
        hm_err "Fix the cause shown above, then rerun: sudo ./install.sh --from $step"
    fi
    run_metrics 1 "$step"
    exit 1
done

hm_say ""
hm_say "Summary (run $HEARTHMINDS_RUN_ID):"
printf '%s\n' "${summary[@]}"
hm_now_ms t1
hm_seconds elapsed $(( t1 - run_started ))
hm_say "  total          ${elapsed}s"
if [ -n "$failed" ]; then
    hm_err "dry run: a check is false in: $failed"
    exit 1
fi
run_metrics 0
if [ "$HM_DRY_RUN" = 1 ]; then
    hm_say "dry run complete: $HM_WOULD_CHANGE action(s) would change, $HM_UNKNOWN unknown until an earlier step has run; nothing was changed"
else
    hm_say "all steps true"
fi
