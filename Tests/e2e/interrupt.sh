# shellcheck shell=bash
# Interruptions converge (issue 20; sourced by Tests/e2e/run.sh): the install cut by a power cut
# at many points, at least one inside each step, in hm-reset and inside dpkg during the very
# first install; after each cut one plain ./install.sh must bring the host to the state of an
# uninterrupted install, and a further run must change nothing.
#
# The cut: a watcher (Tests/e2e/cut.pl, copied into the root) runs inside the root's namespace
# and waits for the moment that marks the cut point: a process (a maintainer script under dpkg
# under hm-postgres, initdb under pg_createcluster, groupadd, ...), a record of the JSON log, or a row of
# pg_stat_activity (a CREATE DATABASE running, a revision or REINDEX waiting on a lock a test
# session holds), polled every 5 ms; it then SIGKILLs every process of the namespace at once,
# the postmaster included, and the namespace itself is killed (ns_stop: its /run goes too).
# Starting a new namespace on the same root (ns_start) is the next boot. Each cut is verified
# from what the watcher saw (the processes at the cut include hm-STEP) and from the cut run's
# log (every step before STEP true, STEP unfinished, nothing after it); a cut that missed its
# window is a failure. One root takes the cuts in turn (each cut, then the converging run, then
# new work for the next); a second fresh root is cut while dpkg unpacks the server. The kernel's
# page cache survives such a cut: it tests what the suite leaves between its writes and its
# processes, not fsync.

CUT_WATCH_PID=""
CUT_INSTALL_PID=""
CUT_HOLDER_PID=""
CUT_INSTALL_ARGS=()
IR_CONF=""

interrupt_cleanup() {
    local p
    for p in "$CUT_WATCH_PID" "$CUT_INSTALL_PID" "$CUT_HOLDER_PID"; do
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    CUT_WATCH_PID="" CUT_INSTALL_PID="" CUT_HOLDER_PID=""
}

# run_bounded LABEL SECONDS [ENV=VALUE...] [-- ARGS...]: run_install's ./install.sh, under
# `timeout SECONDS` inside the root (its process group TERMed, then KILLed 10 s later); exit 124
# when it ran out of time. Sets RC, RUN_ID, RUN_MS, RUN_LABEL.
run_bounded() {
    local label=$1 secs=$2 envs=() t0
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    RUN_LABEL=$label
    RUN_ID="e2e-$label-$(date -u +%H%M%S%N)-$$"
    t0=$(e2e_now_ms)
    set +e
    E2E_CWD=$E2E_HM in_root HEARTHMINDS_RUN_ID="$RUN_ID" ${envs[@]+"${envs[@]}"} timeout -k 10 "$secs" ./install.sh "$@" \
        >"$WORK/$label.out" 2>&1 </dev/null
    RC=$?
    set -e
    RUN_MS=$(($(e2e_now_ms) - t0))
    e2e_note "install.sh ${*:-(no flags)}: exit $RC in $(e2e_secs "$RUN_MS")s ($label, bound ${secs}s)"
    TIMINGS+=("$(printf '  %-34s %7ss' "install.sh $label" "$(e2e_secs "$RUN_MS")")")
}

# --- the cut --------------------------------------------------------------------------------------

# watcher_session: the sql watcher's session is in pg_stat_activity.
watcher_session() {
    expect_eq 1 psql_root postgres postgres \
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'e2e-cut' AND pid <> pg_backend_pid()"
}

# cut_at LABEL STEP MODE ARGS...: ./install.sh (with CUT_INSTALL_ARGS) and the watcher (cut.pl
# MODE ARGS...), started together; once the watcher cut, the namespace is killed; either way
# the root boots again (ns_start). Sets CUT_RUN (the cut run's id), CUT_SEEN (what the watcher
# saw; empty when it missed), CUT_PROCS (the namespace's processes at the cut).
cut_at() {
    local label=$1 step=$2 t0 i rc watch
    shift 2
    RUN_LABEL="cut-$label"
    RUN_ID="e2e-cut-$label-$(date -u +%H%M%S%N)-$$"
    CUT_RUN=$RUN_ID CUT_SEEN="" CUT_PROCS=""
    watch="$WORK/$RUN_LABEL.watch"
    in_root perl /root/e2e-cut.pl "$IR_CUT_BOUND" "$RUN_ID" "$@" >"$watch" 2>&1 </dev/null &
    CUT_WATCH_PID=$!
    for i in $(seq 1 200); do
        grep -q '^READY' "$watch" && break
        kill -0 "$CUT_WATCH_PID" 2>/dev/null || break
        sleep 0.05
    done
    grep -q '^READY' "$watch" || e2e_die "the cut watcher did not start: $(cat "$watch")"
    if [ "$1" = sql ]; then
        wait_for 20 watcher_session || e2e_die "the cut watcher's session did not appear: $(cat "$watch")"
    fi
    t0=$(e2e_now_ms)
    E2E_CWD=$E2E_HM in_root HEARTHMINDS_RUN_ID="$RUN_ID" timeout -k 10 "$IR_CUT_BOUND" ./install.sh \
        ${CUT_INSTALL_ARGS[@]+"${CUT_INSTALL_ARGS[@]}"} >"$WORK/$RUN_LABEL.out" 2>&1 </dev/null &
    CUT_INSTALL_PID=$!
    while kill -0 "$CUT_WATCH_PID" 2>/dev/null && kill -0 "$CUT_INSTALL_PID" 2>/dev/null; do sleep 0.02; done
    # (the watcher prints once it has cut: give it a moment when install.sh ended first)
    for i in $(seq 1 100); do kill -0 "$CUT_WATCH_PID" 2>/dev/null || break; sleep 0.02; done
    if grep -q '^CUT ' "$watch"; then
        ns_stop # the power cut: the namespace's init and everything left in it, its /run
    fi
    kill "$CUT_WATCH_PID" 2>/dev/null || true
    wait "$CUT_WATCH_PID" 2>/dev/null || true
    set +e
    wait "$CUT_INSTALL_PID"
    rc=$?
    set -e
    CUT_WATCH_PID="" CUT_INSTALL_PID=""
    RUN_MS=$(($(e2e_now_ms) - t0))
    TIMINGS+=("$(printf '  %-34s %7ss' "install.sh cut-$label (to the cut)" "$(e2e_secs "$RUN_MS")")")
    if grep -q '^CUT ' "$watch"; then
        CUT_SEEN=$(sed -n 's/^CUT //p' "$watch")
        CUT_PROCS=$(sed -n 's/^PROCS //p' "$watch")
        e2e_note "cut $label after $(e2e_secs "$RUN_MS")s: $CUT_SEEN"
        e2e_note "  processes at the cut: $(printf '%s' "$CUT_PROCS" | tr ' ' '\n' | sed 's/^[0-9]*://; s/<.*//' | sort -u | tr '\n' ' ')"
        e2e_pass "cut $label: the mark was seen and the root cut (power cut) in $(e2e_secs "$RUN_MS")s"
    else
        e2e_fail "cut $label: the cut missed its window: install.sh ended (exit $rc) before the mark" \
            "watcher: $(tail -n 5 "$watch")" "$(tail -n 10 "$WORK/$RUN_LABEL.out")"
        ns_stop # (the watcher with it: it must not cut a later run)
    fi
    cp -p "$ROOT/var/log/hearthminds/bootstrap.jsonl" "$WORK/$RUN_LABEL.log-at-cut" 2>/dev/null || true
    ns_start # the next boot
}

# step_running_at_cut STEP: the step's executable (hm-STEP) was among the processes at the cut.
step_running_at_cut() {
    [ -n "$CUT_PROCS" ] || { echo "no cut"; return 1; }
    grep -qE "(^| )[0-9]+:hm-$1<" <<<"$CUT_PROCS" || { echo "hm-$1 not running at the cut: $CUT_PROCS"; return 1; }
}

# log_cut_inside RUN STEP: the cut run logged every step before STEP true, STEP unfinished (no
# "(step)" line) and nothing of the steps after it; for reset, no step at all.
log_cut_inside() {
    local run=$1 step=$2 lines s seen=0 bad=0
    lines=$(log_lines "$run")
    if grep -qF "\"step\":\"$step\",\"action\":\"(step)\"" <<<"$lines"; then
        echo "step $step finished before the cut"; bad=1
    fi
    if [ "$step" = reset ]; then
        if grep -vF '"step":"reset"' <<<"$lines" | grep -q .; then echo "a step ran after the reset"; bad=1; fi
        return "$bad"
    fi
    for s in "${E2E_STEPS[@]}"; do
        if [ "$s" = "$step" ]; then seen=1; continue; fi
        if [ "$seen" = 0 ]; then
            grep -F "\"step\":\"$s\",\"action\":\"(step)\"" <<<"$lines" | grep -qF '"result":true' ||
                { echo "step $s before $step did not finish true"; bad=1; }
        elif grep -qF "\"step\":\"$s\"" <<<"$lines"; then
            echo "step $s after $step ran"; bad=1
        fi
    done
    return "$bad"
}

# procs_at_cut_have COMM: a process COMM was in the namespace at the cut.
procs_at_cut_have() { grep -qE "(^| )[0-9]+:$1<" <<<"$CUT_PROCS" || { echo "no $1 at the cut: $CUT_PROCS"; return 1; }; }

# seen_matches ERE / seen_lacks ERE: what the watcher saw at the cut (CUT_SEEN) does / does not match.
seen_matches() { grep -qE -- "$1" <<<"$CUT_SEEN" || { echo "seen at the cut: $CUT_SEEN"; return 1; }; }
seen_lacks() { ! grep -qE -- "$1" <<<"$CUT_SEEN" || { echo "seen at the cut: $CUT_SEEN"; return 1; }; }

# cut_landed LABEL STEP: the two checks every cut makes of where it landed.
cut_landed() {
    check "cut $1: hm-$2 was running at the cut (the watcher's process list)" step_running_at_cut "$2"
    check "cut $1: the cut run's log: the steps before $2 true, $2 unfinished, nothing after" \
        log_cut_inside "$CUT_RUN" "$2"
}

# pid_squat NAME: a process of the root that is not the server takes the pid of the stale
# postmaster.pid (ns_last_pid set to the one before it): `sleep 900` (NAME plain), or a shell
# whose command line names postgres (NAME postgres), as `su - postgres` would.
pid_squat() {
    local pid got want
    pid=$(head -n 1 "$ROOT/var/lib/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER/postmaster.pid" 2>/dev/null) ||
        { echo "no postmaster.pid left by the cut"; return 1; }
    if [ "$1" = postgres ]; then
        want='sh -c sleep 900; : postgres'
        in_root sh -c 'echo $(($1 - 1)) >/proc/sys/kernel/ns_last_pid && { sh -c "sleep 900; :" postgres & }' sh "$pid" \
            </dev/null >/dev/null 2>&1 || { echo "cannot set ns_last_pid"; return 1; }
    else
        want='sleep 900'
        in_root sh -c 'echo $(($1 - 1)) >/proc/sys/kernel/ns_last_pid && { sleep 900 & }' sh "$pid" \
            </dev/null >/dev/null 2>&1 || { echo "cannot set ns_last_pid"; return 1; }
    fi
    got=$(in_root cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ' | sed 's/ $//') || true
    [ "$got" = "$want" ] || { echo "pid $pid is not the squatter: '$got'"; return 1; }
    echo "pid $pid: $got"
}

# --- what a converged host must look like after a cut ---------------------------------------------

dpkg_audit_empty() {
    local out
    out=$(in_root dpkg --audit 2>&1) || true
    [ -z "$out" ] || { printf '%s\n' "$out" | head -n 10; return 1; }
}
dpkg_audit_nonempty() {
    local out
    out=$(in_root dpkg --audit 2>&1) || true
    [ -n "$out" ] || { echo "dpkg --audit is empty: the cut did not land in dpkg's work"; return 1; }
    printf '%s\n' "$out" | grep -m 3 .
}

# no_partial_files: no temporary name of ours (OpenDirectory's ".NAME.hm-XXXX" beside its
# target), no pgvector work directory (/tmp/hm-pgvector-*), no stale lock of the account files
# (useradd's /etc/passwd.lock, ...), and an empty dpkg journal left anywhere.
no_partial_files() {
    local found d
    found=$(
        for d in etc/hearthminds etc/postgresql etc/postgresql-common var/log/hearthminds var/lib/postgresql \
            "var/lib/$CFG_SERVICE_USER"; do
            [ -e "$ROOT/$d" ] && find "$ROOT/$d" -name '.*.hm-*'
        done
        find "$ROOT/tmp" "$ROOT/var/tmp" -maxdepth 1 -name 'hm-pgvector-*'
        find "$ROOT/etc" -maxdepth 1 \( -name 'passwd.lock' -o -name 'group.lock' -o -name 'shadow.lock' \
            -o -name 'gshadow.lock' -o -name 'passwd+' -o -name 'group+' -o -name 'shadow+' -o -name 'gshadow+' \)
        find "$ROOT/var/lib/dpkg/updates" -type f
    ) || true
    [ -z "$found" ] || { printf '%s\n' "${found//$ROOT/}"; return 1; }
}

# log_whole: every line of the JSON log is one whole record.
log_whole() {
    local bad
    bad=$(grep -nvE '^\{"time":".*\}$' "$ROOT/var/log/hearthminds/bootstrap.jsonl") || true
    [ -z "$bad" ] || { printf '%s\n' "$bad" | head -n 5; return 1; }
}

ir_ours_databases() { all_databases | sort | tr '\n' ' ' | sed 's/ $//'; }
# (and the monitoring step's role, MONITORING_USER's default, where the tarball has that step)
ir_ours_roles() {
    { printf '%s\n' "$CFG_HM_USER" "$CFG_SERVICE_USER"; printf '%s\n' "${CFG_AIS[@]}"
      if has_step monitoring; then echo hearthminds-monitor; fi; } | sort | tr '\n' ' ' | sed 's/ $//'
}

# each_db_clean: every database of the configuration at the shipped head, no invalid index in
# it (a REINDEX CONCURRENTLY or CREATE INDEX cut leaves one), its vector index trained as
# configured.
each_db_clean() {
    local head db bad=0 got
    head=$(migrations_head)
    for db in $(all_databases); do
        got=$(psql_root postgres "$db" "SELECT (SELECT version_num FROM alembic_version) || ' ' ||
            (SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready)" 2>&1) || got="error: $got"
        [ "$got" = "$head 0" ] || { echo "$db: head and invalid indexes: $got (want $head 0)"; bad=1; }
    done
    return "$bad"
}

ai_logins() {
    local ai bad=0
    for ai in "${CFG_AIS[@]}"; do
        psql_tcp "$ai" "$(role_password "$ai")" "$(ai_db "$ai")" 'SELECT 1' >/dev/null 2>&1 ||
            { echo "$ai cannot log in to $(ai_db "$ai") with its password"; bad=1; }
    done
    return "$bad"
}

# The suite's own files, hashed: the same after every converged run as after the first.
ir_files() {
    (cd "$ROOT" && for f in "etc/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER/pg_hba.conf" \
        "etc/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER/pg_ident.conf" \
        "etc/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER"/conf.d/* \
        etc/postgresql-common/createcluster.d/* etc/hearthminds/pg_service.conf; do
        [ -f "$f" ] && sha256sum "$f"
    done)
}

# converges LABEL: after a cut, one plain ./install.sh converges; the host is as an
# uninterrupted install leaves it; a further run changes nothing.
converges() {
    local label=$1
    run_bounded "cut-$label-rerun" "$IR_RUN_BOUND"
    check_rc "cut $label: one plain ./install.sh after the cut exits 0" 0
    check "cut $label: the rerun logged every step true" log_all_true "$RUN_ID"
    if [ "$RC" -ne 0 ]; then
        e2e_note "cut $label: the rerun stopped: $(grep -m 3 -E "FAILED|reported false|^ *E:" "$WORK/$RUN_LABEL.out" | tr -s ' ' | tr '\n' '|')"
        ir_recover "$label"
        [ -z "${IR_BROKEN:-}" ] || return 0
    fi
    check "cut $label: dpkg --audit prints nothing" dpkg_audit_empty
    check "cut $label: the run lock is free (flock -n /run/hearthminds/bootstrap.lock)" \
        in_root flock -n /run/hearthminds/bootstrap.lock true
    check "cut $label: no temporary, partial or lock file left (ours, useradd's, dpkg's journal)" no_partial_files
    check "cut $label: every line of the log is one whole record" log_whole
    check "cut $label: hm-verify exits 0" in_root "$E2E_HM/bootstrap/bin/hm-verify"
    check "cut $label: the databases are exactly the configured ones ($(ir_ours_databases))" expect_eq \
        "$(ir_ours_databases)" psql_root postgres postgres \
        "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')"
    check "cut $label: no database marked invalid (an interrupted DROP DATABASE)" expect_eq 0 \
        psql_root postgres postgres "SELECT count(*) FROM pg_database WHERE datconnlimit = -2"
    check "cut $label: the roles are exactly the configured ones ($(ir_ours_roles))" expect_eq \
        "$(ir_ours_roles)" psql_root postgres postgres \
        "SELECT string_agg(rolname, ' ' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'"
    check "cut $label: every database at head, no invalid index" each_db_clean
    check "cut $label: every AI logs in with its password" ai_logins
    if [ -n "${IR_FILES_REF:-}" ]; then
        check "cut $label: the suite's files (hba, ident, conf.d, createcluster.d, pg_service.conf) as after the first install" \
            expect_eq "$IR_FILES_REF" ir_files
    fi
    run_bounded "cut-$label-again" "$IR_RUN_BOUND"
    check_rc "cut $label: a further run exits 0" 0
    check "cut $label: a further run changes nothing" log_unchanged "$RUN_ID"
}

# ir_recover LABEL: the rerun did not converge (a product failure, counted above). So that the
# later cut points still run, try a second plain run, then the repair the message asks for
# (dpkg --configure -a) and a run, the shipped package installed again (dpkg -i) and a run, then
# a new cluster (pg_dropcluster) and a run; none of this
# counts as a pass. IR_BROKEN=1 when nothing helped: the later cut points are not run.
ir_recover() {
    local label=$1 saved_rc=$RC saved_label=$RUN_LABEL
    run_bounded "cut-$label-recover" "$IR_RUN_BOUND"
    if [ "$RC" -ne 0 ]; then
        in_root env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >"$WORK/cut-$label-recover-dpkg.out" 2>&1 || true
        run_bounded "cut-$label-recover-dpkg" "$IR_RUN_BOUND"
    fi
    if [ "$RC" -ne 0 ]; then
        in_root sh -c 'dpkg -i "$1"/packages/*.deb' sh "$E2E_HM" >"$WORK/cut-$label-recover-deb.out" 2>&1 || true
        run_bounded "cut-$label-recover-deb" "$IR_RUN_BOUND"
    fi
    if [ "$RC" -ne 0 ]; then
        ns_stop && ns_start # (a server stuck in recovery need not stop first)
        in_root pg_dropcluster "$CFG_PG_VERSION" "$CFG_CLUSTER" >"$WORK/cut-$label-recover-drop.out" 2>&1 ||
            e2e_note "pg_dropcluster: $(tail -n 3 "$WORK/cut-$label-recover-drop.out" | tr '\n' ' ')"
        run_bounded "cut-$label-recover-newcluster" "$IR_RUN_BOUND"
    fi
    if [ "$RC" -eq 0 ]; then
        e2e_note "cut $label: recovered for the next cut points (by $RUN_LABEL; not a pass)"
    else
        e2e_note "cut $label: not recovered"
        IR_BROKEN=$label
    fi
    RC=$saved_rc RUN_LABEL=$saved_label
}

# ir_continue: false (one failure line, the root removed) once a cut left a host that nothing
# brought back.
ir_continue() {
    [ -n "${IR_BROKEN:-}" ] || return 0
    e2e_fail "interrupt: the later cut points were not run: the host did not converge after cut $IR_BROKEN"
    root_remove
    return 1
}

# a session of the test holding a lock in the root (it dies with the cut): hold_start DB SQL...
hold_start() {
    local db=$1
    shift
    printf '%s\n' "BEGIN;" "$@" "SELECT pg_sleep(900);" |
        in_root_as postgres env PGAPPNAME=e2e-holder psql -X -q -p "$CFG_PORT" -d "$db" >"$WORK/holder.out" 2>&1 &
    CUT_HOLDER_PID=$!
}
holder_idle() {
    expect_eq 1 psql_root postgres postgres \
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'e2e-holder' AND query LIKE '%pg_sleep%'"
}
hold_end() {
    [ -n "$CUT_HOLDER_PID" ] || return 0
    # (after a missed cut the server still runs and the session still holds its lock)
    psql_root postgres postgres \
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'e2e-holder'" >/dev/null 2>&1 || true
    kill "$CUT_HOLDER_PID" 2>/dev/null || true
    wait "$CUT_HOLDER_PID" 2>/dev/null || true
    CUT_HOLDER_PID=""
}

ir_write_conf() {
    local ais
    ais=$(printf '"%s", ' "${CFG_AIS[@]}")
    (umask 077 && mkdir -p "$ROOT/etc/hearthminds" && cat >"$IR_CONF" <<EOF
# the interrupt scenario of the end-to-end tier
POSTGRES_PORT=$CFG_PORT
AI_NAMES=[${ais%, }]
# 100 lists (0003's): the index is retrained by REINDEX alone, with no ALTER INDEX before it
PGVECTOR_IVFFLAT_LISTS=100
EOF
    )
}

# --- the scenario -----------------------------------------------------------------------------------

scenario_interrupt() {
    local t0 port
    t0=$(e2e_now_ms)
    IR_CUT_BOUND=${E2E_CUT_BOUND:-600} # a cut run: the watcher's and install.sh's bound
    IR_RUN_BOUND=${E2E_RUN_BOUND:-900} # a converging run (the first installs PostgreSQL)
    port=$(free_port $((E2E_PORT + 3))) || e2e_die "no free port for the interrupt scenario"
    e2e_log "== interrupt scenario: a fresh root cut at every step, port $port"
    interrupt_every_step "$port"
    interrupt_unpack "$port"
    TIMINGS+=("$(printf '  %-34s %7ss' "interrupt scenario" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}

# interrupt_every_step PORT: one fresh root, cut inside each step in turn (its very first
# install in dpkg), and in hm-reset.
interrupt_every_step() {
    local port=$1
    root_create interrupt
    ns_start
    install_dist
    cp "$E2E_DIR/cut.pl" "$ROOT/root/e2e-cut.pl"
    default_config "$port"
    IR_CONF="$ROOT/etc/hearthminds/hearthminds.env"
    ir_write_conf
    E2E_ENV=()
    IR_FILES_REF="" IR_BROKEN=""
    CUT_INSTALL_ARGS=()

    # 1. the very first install, cut in the postgres step's dpkg: 100 ms into postgresql-common's
    #    postinst (every package unpacked, some configured), so that dpkg is left interrupted
    #    ("E: dpkg was interrupted, you must manually run 'dpkg --configure -a'")
    cut_at dpkg-postgres postgres proc '.' '^hm-postgres$' 'postgresql-common\.postinst configure' 100
    cut_landed dpkg-postgres postgres
    check "cut dpkg-postgres: dpkg (under apt-get, under hm-postgres) ran at the cut" procs_at_cut_have dpkg
    check "cut dpkg-postgres: dpkg was left with unfinished work (dpkg --audit after the cut)" dpkg_audit_nonempty
    converges dpkg-postgres
    ir_continue || return 0
    IR_FILES_REF=$(ir_files)

    # 2. pg-hba, between writing pg_hba.conf and the reload: a trust line appended, the cut at the
    #    record of the file written (changed), before the record of the reload
    printf 'host all all 127.0.0.1/32 trust\n' >>"$(hba_file)"
    cut_at pg-hba pg-hba log /var/log/hearthminds/bootstrap.jsonl pg-hba 'peer for system accounts.*"changed":true'
    cut_landed pg-hba pg-hba
    check "cut pg-hba: the cut came after pg_hba.conf was written and before the reload's record" sh -c \
        "grep -F '\"run\":\"$CUT_RUN\"' '$WORK/cut-pg-hba.log-at-cut' | grep -F 'peer for system accounts' | grep -qF '\"changed\":true' &&
         ! grep -F '\"run\":\"$CUT_RUN\"' '$WORK/cut-pg-hba.log-at-cut' | grep -qF 'has loaded'"
    converges pg-hba
    ir_continue || return 0

    # 3. the pgvector step's proof in its scratch database: with vector in the `postgres`
    #    database, the step proves CREATE EXTENSION in a scratch database it makes and drops
    #    (hm_pgvector_check); the cut while its CREATE DATABASE runs
    check "cut pgvector-scratch: vector created in the postgres database (the proof then needs its scratch database)" \
        psql_root postgres postgres 'CREATE EXTENSION vector'
    cut_at pgvector-scratch pgvector sql "$CFG_PORT" postgres \
        "SELECT pid, datname, state, wait_event_type, wait_event, left(query, 120) AS query FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND state = 'active' AND query ILIKE 'CREATE DATABASE%hm_pgvector_check%'"
    cut_landed pgvector-scratch pgvector
    check "cut pgvector-scratch: the CREATE DATABASE of the scratch database hm_pgvector_check was running" \
        seen_matches 'CREATE DATABASE (\\")?hm_pgvector_check'
    converges pgvector-scratch
    ir_continue || return 0
    check "cut pgvector-scratch: vector dropped from the postgres database again" \
        psql_root postgres postgres 'DROP EXTENSION vector'

    # 4. the databases step's CREATE DATABASE of a new AI
    CFG_AIS+=(kairos)
    ir_write_conf
    IR_FILES_REF="" # (pg_hba.conf and pg_service.conf name the new AI: the reference is taken again)
    cut_at create-database databases sql "$CFG_PORT" postgres \
        "SELECT pid, datname, state, wait_event_type, wait_event, left(query, 120) AS query FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND state = 'active' AND query ILIKE 'CREATE DATABASE%OWNER%'"
    cut_landed create-database databases
    check "cut create-database: a CREATE DATABASE of $(ai_db kairos) was running" \
        seen_matches "CREATE DATABASE (\\\\\")?$(ai_db kairos)"
    converges create-database
    ir_continue || return 0
    IR_FILES_REF=$(ir_files)

    # 5. migrations, in the middle of a revision: every database taken down to 0003 (hm-migrate),
    #    a test session reading memory_shards in the last AI database, so that 0004's ALTER TABLE
    #    waits there, inside its revision's transaction, after the other databases went through
    local last_db
    last_db=$(ai_db "${CFG_AIS[-1]}")
    check "cut migrations: hm-migrate down --to 0003 (work for the migrations step)" migrate_down 0003
    hold_start "$last_db" "SELECT count(*) FROM memory_shards;"
    check "cut migrations: a test session reads memory_shards in $last_db (its lock held)" wait_for 20 holder_idle
    cut_at migrations migrations sql "$CFG_PORT" postgres \
        "SELECT pid, datname, wait_event_type, wait_event, left(query, 120) AS query FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND datname = '$last_db' AND wait_event_type = 'Lock'
         AND application_name NOT LIKE 'e2e-%'"
    hold_end
    cut_landed migrations migrations
    check "cut migrations: revision 0004's ALTER TABLE waited in $last_db" \
        grep -qE "\"datname\":\"$last_db\".*ALTER TABLE memory_shards" <<<"$CUT_SEEN"
    converges migrations
    ir_continue || return 0

    # 6. the vector index's training: 200 rows with an embedding in the first AI's memory_shards
    #    (the untrained index's threshold is 100 rows), and a test session's open INSERT, so that
    #    REINDEX CONCURRENTLY waits for it after it made its new index (..._ccnew)
    local first_db dim
    first_db=$(ai_db "${CFG_AIS[0]}")
    dim=$(psql_root postgres "$first_db" "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memory_shards'::regclass AND attname = 'embedding'")
    check "cut vector-index: 200 rows with an embedding ($dim dimensions) in $first_db" psql_root postgres "$first_db" \
        "INSERT INTO memory_shards (content, embedding) SELECT 'e2e row ' || g,
         (SELECT array_agg(random())::vector($dim) FROM generate_series(1, $dim) i WHERE g > 0) FROM generate_series(1, 200) g"
    hold_start "$first_db" "INSERT INTO memory_shards (content) VALUES ('e2e open write');"
    check "cut vector-index: a test session holds an open write on memory_shards" wait_for 20 holder_idle
    cut_at vector-index vector-index sql "$CFG_PORT" "$first_db" \
        "SELECT a.pid, a.datname, a.wait_event_type, a.wait_event, left(a.query, 120) AS query, p.phase,
           (SELECT string_agg(relname, ',') FROM pg_class WHERE relname LIKE '%ccnew%') AS ccnew
         FROM pg_stat_activity a LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid
         WHERE a.pid <> pg_backend_pid() AND a.query ILIKE 'REINDEX%' AND a.wait_event_type = 'Lock'"
    hold_end
    cut_landed vector-index vector-index
    check "cut vector-index: REINDEX CONCURRENTLY waited with its new index (_ccnew) made" \
        grep -qE '"query":"REINDEX INDEX CONCURRENTLY.*"ccnew":"[^"]*ccnew' <<<"$CUT_SEEN"
    converges vector-index
    ir_continue || return 0
    check "cut vector-index: the rerun trained $first_db's index (its comment counts the 200 rows)" expect_match \
        'trained on 200 rows' psql_root postgres "$first_db" \
        "SELECT obj_description('public.memory_shards_embedding_ivfflat_idx'::regclass, 'pg_class')"

    # 7. verify: at its first record
    cut_at verify verify log /var/log/hearthminds/bootstrap.jsonl verify '.'
    cut_landed verify verify
    converges verify
    ir_continue || return 0

    # 7b. the same cut, and after this boot the killed postmaster's pid (its stale
    #     postmaster.pid) belongs to another process (pids start again at 1 after a boot):
    #     `sleep` (kill -0 finds it alive), then a process whose command line names postgres,
    #     as `su - postgres` or an sshd of the account would (postgresql-common's
    #     check_pidfile_running then takes the cluster for running)
    cut_at pid-reuse verify log /var/log/hearthminds/bootstrap.jsonl verify '.'
    cut_landed pid-reuse verify
    check "cut pid-reuse: after the boot, the killed postmaster's pid is a sleep's" pid_squat plain
    converges pid-reuse
    ir_continue || return 0
    cut_at pid-reuse-postgres verify log /var/log/hearthminds/bootstrap.jsonl verify '.'
    cut_landed pid-reuse-postgres verify
    check "cut pid-reuse-postgres: after the boot, the killed postmaster's pid is a process named postgres" \
        pid_squat postgres
    converges pid-reuse-postgres
    ir_continue || return 0

    # 8. hm-reset (install.sh --reset --yes): a test session holds a lock on the last AI database
    #    (COMMENT ON DATABASE, open), so that its DROP DATABASE waits after the others went
    hold_start postgres "COMMENT ON DATABASE $last_db IS 'e2e';"
    check "cut reset: a test session holds a lock on database $last_db" wait_for 20 holder_idle
    CUT_INSTALL_ARGS=(--reset --yes)
    cut_at reset reset sql "$CFG_PORT" postgres \
        "SELECT pid, wait_event_type, left(query, 120) AS query, (SELECT string_agg(datname, ',' ORDER BY datname)
           FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')) AS databases
         FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query ILIKE 'DROP DATABASE%' AND wait_event_type = 'Lock'"
    CUT_INSTALL_ARGS=()
    hold_end
    cut_landed reset reset
    check "cut reset: the DROP DATABASE of $last_db waited" seen_matches "DROP DATABASE IF EXISTS (\\\\\")?$last_db"
    check "cut reset: hm-reset had dropped some of our databases before it" \
        seen_lacks "\"databases\":\"$(ir_ours_databases | tr ' ' ',')\""
    converges reset
    ir_continue || return 0

    # 9. service-user: the account, its home and the databases removed by a whole
    #    hm-reset --service-user, then the cut while the step's groupadd or useradd runs
    check "cut service-user: hm-reset --yes --service-user (work for the service-user step)" \
        in_root "$E2E_HM/bootstrap/bin/hm-reset" --yes --service-user
    cut_at service-user service-user proc '^(groupadd|useradd)$' '^hm-service-user$' '' 0
    cut_landed service-user service-user
    converges service-user
    ir_continue || return 0

    # Last, the cuts after which the product is likeliest not to converge (a failure there must
    # not keep the others from running)
    # 10. pg_createcluster's initdb, once it has written part of the data directory: the cluster
    #    dropped first (pg_dropcluster), so that the postgres step makes it again. With backups on,
    #    the dropped cluster's stanza is retired as hm-reset --cluster retires it (the backup step
    #    refuses to put a new cluster in another cluster's stanza, and never overwrites it): the
    #    suite's own way to drop a cluster is hm-reset --cluster, which also drops the client files
    #    this scenario's later checks read.
    in_root pg_dropcluster --stop "$CFG_PG_VERSION" "$CFG_CLUSTER" || e2e_die "pg_dropcluster failed"
    if has_step backup; then
        in_root setpriv --reuid=postgres --regid=postgres --clear-groups sh -c \
            'cd /var/lib/pgbackrest && for d in backup archive; do [ ! -d "$d/hearthminds" ] || mv "$d/hearthminds" "$d/hearthminds-retired-e2e"; done' ||
            e2e_die "cannot retire the stanza"
    fi
    cut_at pg_createcluster postgres proc '^initdb$' '^pg_createclus' '' 300
    cut_landed pg_createcluster postgres
    check "cut pg_createcluster: seen initdb under pg_createcluster under hm-postgres" \
        seen_matches 'under initdb < .*pg_createclus.*hm-postgres'
    check "cut pg_createcluster: initdb ran at the cut" procs_at_cut_have initdb
    converges pg_createcluster
    ir_continue || return 0

    # 11. the pgvector step's dpkg: the shipped package removed, so that the step installs it again
    in_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y remove "postgresql-$CFG_PG_VERSION-pgvector" \
        >"$WORK/pgvector-remove.out" 2>&1 || e2e_die "cannot remove postgresql-$CFG_PG_VERSION-pgvector"
    cut_at dpkg-pgvector pgvector proc '^dpkg$' '^hm-pgvector$' '' 0 /var/lib/dpkg/updates
    cut_landed dpkg-pgvector pgvector
    check "cut dpkg-pgvector: dpkg (under hm-pgvector) ran at the cut" procs_at_cut_have dpkg
    check "cut dpkg-pgvector: dpkg was left with unfinished work (dpkg --audit after the cut)" dpkg_audit_nonempty
    converges dpkg-pgvector
    ir_continue || return 0

    root_remove
}

# interrupt_unpack PORT: a second fresh root, its very first install cut while dpkg unpacks the
# server package (postgresql-15's files extracted as .dpkg-new, not yet in place): the package
# half installed, where the first root's cut left every package unpacked.
interrupt_unpack() {
    local port=$1
    e2e_log "-- interrupt: a second fresh root, cut while dpkg unpacks postgresql-$CFG_PG_VERSION"
    root_create interrupt-unpack
    ns_start
    install_dist
    cp "$E2E_DIR/cut.pl" "$ROOT/root/e2e-cut.pl"
    default_config "$port"
    IR_CONF="$ROOT/etc/hearthminds/hearthminds.env"
    ir_write_conf
    IR_FILES_REF="" IR_BROKEN=""
    cut_at dpkg-unpack postgres proc '^dpkg$' '^hm-postgres$' '' 0 \
        "/usr/lib/postgresql/$CFG_PG_VERSION/bin/postgres.dpkg-new"
    cut_landed dpkg-unpack postgres
    check "cut dpkg-unpack: dpkg ran while postgres.dpkg-new was there (the server package mid-unpack)" \
        seen_matches "postgres\.dpkg-new there"
    check "cut dpkg-unpack: dpkg was left with unfinished work (dpkg --audit after the cut)" dpkg_audit_nonempty
    converges dpkg-unpack
    root_remove
}
