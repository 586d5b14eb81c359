# shellcheck shell=bash
# The fault and bad-input scenarios of issue 6 (sourced by Tests/e2e/run.sh, called from its
# scenarios so that they reuse the roots those make): a failing step halts install.sh there
# (apt unreachable inside a step, the port taken by another process, a broken migration file),
# the cluster killed in the middle of `migrations`, bad configuration (exit 64, nothing
# changed), and an AI added to the configuration. Each fault is then fixed and the rerun must
# converge. Test-only revisions are written into the unpacked tree's Migrations/ and removed
# again; nothing here is shipped.

LISTENER_PID=""
HOLDER_PID=""
INSTALL_BG_PID=""

# Every background process this file starts, stopped (run.sh's cleanup calls it too).
faults_cleanup() {
    local p
    for p in "$LISTENER_PID" "$HOLDER_PID" "$INSTALL_BG_PID"; do
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    LISTENER_PID="" HOLDER_PID="" INSTALL_BG_PID=""
}

# listener_start PORT: another process (not PostgreSQL) listening on 127.0.0.1:PORT. The roots
# share the host's network, so the root's cluster cannot bind there. It dies with this script.
listener_start() {
    local port=$1 i
    setpriv --pdeathsig KILL -- perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 5, Proto => "tcp",
            ReuseAddr => 1) # (connections of a cluster that had the port may linger in TIME_WAIT)
            or die "cannot listen on 127.0.0.1:$ARGV[0]: $!\n";
        sleep 900;' "$port" </dev/null >"$WORK/listener.log" 2>&1 &
    LISTENER_PID=$!
    for i in $(seq 1 50); do
        [ -n "$(ss -Htln "sport = :$port")" ] && return 0
        kill -0 "$LISTENER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/listener.log" >&2
    e2e_die "cannot start a listener on 127.0.0.1:$port"
}

listener_stop() {
    [ -n "$LISTENER_PID" ] || return 0
    kill "$LISTENER_PID" 2>/dev/null || true
    wait "$LISTENER_PID" 2>/dev/null || true
    LISTENER_PID=""
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds; false after SECONDS.
wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# not_run RUN_ID STEP: the run logged nothing for STEP.
not_run() {
    if log_lines "$1" | grep -qF "\"step\":\"$2\""; then echo "step $2 ran in $1"; return 1; fi
}

# steps_true_before RUN_ID STEP: every listed step before STEP logged a true (step) line.
steps_true_before() {
    local s lines bad=0
    lines=$(log_lines "$1")
    for s in "${E2E_STEPS[@]}"; do
        [ "$s" = "$2" ] && break
        printf '%s\n' "$lines" | grep -F "\"step\":\"$s\",\"action\":\"(step)\"" | grep -qF '"result":true' ||
            { echo "no true (step) line for step $s"; bad=1; }
    done
    return "$bad"
}

# all_databases: HEARTHMINDS_DB and every AI database of the configuration under test.
all_databases() {
    local ai
    printf '%s\n' "$CFG_HM_DB"
    for ai in "${CFG_AIS[@]}"; do ai_db "$ai"; done
}

# apt sources pointed at a port where nothing answers; apt_restore puts back the saved ones.
apt_break() {
    cp -p "$ROOT/etc/apt/sources.list" "$WORK/sources.list.good"
    rm -rf "$WORK/apt-lists.good" && cp -a "$ROOT/var/lib/apt/lists" "$WORK/apt-lists.good"
    printf 'deb http://127.0.0.1:9/debian %s main\n' "$E2E_SUITE" >"$ROOT/etc/apt/sources.list"
}
apt_restore() {
    cp -p "$WORK/sources.list.good" "$ROOT/etc/apt/sources.list"
    rm -rf "$ROOT/var/lib/apt/lists" && cp -a "$WORK/apt-lists.good" "$ROOT/var/lib/apt/lists"
}

# --- faults on a fresh root, in a step (second configuration's root, before its install) -----

# apt cannot reach its mirror while a step needs it: install.sh's own runtime (libpq5) and the
# service user are in place (an --only service-user run), then the postgres step cannot install
# PostgreSQL. Then another process holds the cluster's port: the postgres step installs the
# packages and creates the cluster but cannot start it. Each run halts at postgres, naming it
# and the cause; service-user's work stays; no later step runs. The caller's next run (the
# cause removed) must converge.
faults_fresh_root() {
    local port=$CFG_PORT
    run fault-prep -- --only service-user
    check_rc "fault prep: --only service-user on the fresh root exits 0" 0

    apt_break
    run fault-step-apt
    check_rc "fault, apt unreachable in the postgres step: ./install.sh exits 1" 1
    e2e_note "the cause shown: $(grep -m1 -E '^[[:space:]]+E:' "$WORK/fault-step-apt.out" | sed 's/^[[:space:]]*//')"
    e2e_note "                 $(grep -m1 -E '^[[:space:]]+W: Failed to fetch' "$WORK/fault-step-apt.out" | sed 's/^[[:space:]]*//')"
    check "fault, apt unreachable in the postgres step: the message names the step" \
        grep -qF "step 'postgres' reported false" "$WORK/fault-step-apt.out"
    check "fault, apt unreachable in the postgres step: the message names the cause (apt-get, the package)" \
        sh -c "grep -F 'apt-get' '$WORK/fault-step-apt.out' | grep -qF 'postgresql-$CFG_PG_VERSION'"
    check "fault, apt unreachable in the postgres step: the message says the mirror could not be fetched" sh -c \
        "grep -qF 'could not fetch the package lists' '$WORK/fault-step-apt.out' && grep -qF '127.0.0.1:9' '$WORK/fault-step-apt.out'"
    check "fault, apt unreachable in the postgres step: service-user ran and logged true first" \
        log_has "$RUN_ID" service-user '"action":"(step)"' '"result":true'
    check "fault, apt unreachable in the postgres step: no later step ran" \
        log_steps_only "$RUN_ID" service-user postgres
    check "fault, apt unreachable in the postgres step: the service user is still there" \
        grep -q "^$CFG_SERVICE_USER:" "$ROOT/etc/passwd"
    check "fault, apt unreachable in the postgres step: no PostgreSQL server package installed" sh -c \
        "! grep -A1 -x 'Package: postgresql-$CFG_PG_VERSION' '$ROOT/var/lib/dpkg/status' | grep -q 'install ok installed'"
    apt_restore

    listener_start "$port"
    run fault-port
    check_rc "fault, port $port taken by another process: ./install.sh exits 1" 1
    e2e_note "the cause shown: $(grep -m1 -F "on port $port" "$WORK/fault-port.out" | sed 's/^[[:space:]]*//')"
    e2e_note "                 $(grep -m1 -i 'already in use' "$WORK/fault-port.out" | sed 's/^[[:space:]]*//')"
    check "fault, port $port taken: the message names the step" \
        grep -qF "step 'postgres' reported false" "$WORK/fault-port.out"
    check "fault, port $port taken: the message names the port" grep -qw "$port" "$WORK/fault-port.out"
    check "fault, port $port taken: the message says it is in use" \
        grep -qi 'already in use' "$WORK/fault-port.out"
    check "fault, port $port taken: no later step ran" log_steps_only "$RUN_ID" service-user postgres
    check "fault, port $port taken: the packages are installed (postgres's work up to the start stays)" \
        test -x "$ROOT/usr/lib/postgresql/$CFG_PG_VERSION/bin/postgres"
    check "fault, port $port taken: the listener still holds the port (no one took it over)" \
        kill -0 "$LISTENER_PID"
    listener_stop
}

# --- a broken migration file, on the converged root -------------------------------------------

# A revision above head whose first statement works and whose second fails: the migrations step
# reports false naming the file, line and statement; every database stays at the previous head
# and holds nothing of the revision (one transaction); verify never runs. Removed, the rerun
# converges.
fault_broken_migration() {
    local dir="$ROOT$E2E_HM/Migrations" head next db
    head=$(migrations_head)
    next=$(printf '%04d' $((10#$head + 1)))  # the test revision: above the shipped head
    cat >"$dir/${next}_e2e_broken.up.sql" <<'EOF'
-- test-only (e2e tier): its first statement works, its second fails
CREATE TABLE e2e_half_broken (n bigint);
INSERT INTO e2e_no_such_table VALUES (1);
EOF
    printf -- '-- test-only (e2e tier)\nDROP TABLE e2e_half_broken;\n' >"$dir/${next}_e2e_broken.down.sql"
    run fault-migration
    check_rc "fault, broken migration: ./install.sh exits 1" 1
    e2e_note "the cause shown: $(grep -m1 -F "${next}_e2e_broken.up.sql line" "$WORK/fault-migration.out" | sed 's/^[[:space:]]*//')"
    check "fault, broken migration: the message names the step" \
        grep -qF "step 'migrations' reported false" "$WORK/fault-migration.out"
    check "fault, broken migration: the message names the file, line and statement" sh -c \
        "grep -qF '${next}_e2e_broken.up.sql line 3' '$WORK/fault-migration.out' && grep -qF 'INSERT INTO e2e_no_such_table' '$WORK/fault-migration.out'"
    check "fault, broken migration: the message carries PostgreSQL's error" \
        grep -qF 'relation "e2e_no_such_table" does not exist' "$WORK/fault-migration.out"
    check "fault, broken migration: every step before migrations logged true" steps_true_before "$RUN_ID" migrations
    check "fault, broken migration: verify never ran" not_run "$RUN_ID" verify
    for db in $(all_databases); do
        check "fault, broken migration: $db stays at $head" expect_eq "$head" \
            psql_root postgres "$db" "SELECT version_num FROM alembic_version"
        check "fault, broken migration: $db holds nothing of the revision (no e2e_half_broken)" expect_eq "" \
            psql_root postgres "$db" "SELECT to_regclass('public.e2e_half_broken')"
    done
    rm -f "$dir/${next}_e2e_broken.up.sql" "$dir/${next}_e2e_broken.down.sql"
    run fault-migration-fixed
    check_rc "fault, broken migration removed: ./install.sh exits 0" 0
    check "fault, broken migration removed: every step logged true" log_all_true "$RUN_ID"
}

# --- the cluster killed in the middle of migrations, on the converged root --------------------

# blocked_in_revision DB: a backend of DB waits for a lock in a statement naming e2e_gate (the
# test revision's DO block).
blocked_in_revision() {
    expect_eq 1 psql_root postgres "$1" \
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
         AND wait_event_type = 'Lock' AND query LIKE '%e2e_gate%'"
}
gate_held() {
    expect_eq 1 psql_root postgres "$1" \
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         WHERE c.relname = 'e2e_gate' AND l.mode = 'AccessExclusiveLock' AND l.granted"
}
# no_postgres_in_root: no postgres process left in the root's namespace.
no_postgres_in_root() {
    local left
    left=$(in_root sh -c 'for p in /proc/[0-9]*; do echo "${p#/proc/} $(cat "$p/comm") $(cut -d" " -f3 "$p/stat")"; done 2>/dev/null' |
        awk '$2 == "postgres"')
    [ -z "$left" ] || { printf 'left (pid comm state):\n%s\n' "$left"; return 1; }
}
migrate_down() { E2E_CWD=$E2E_HM in_root ./bootstrap/bin/hm-migrate down --to "$1"; }
history_ups() {
    psql_root postgres "$1" \
        "SELECT count(*) FROM hearthminds_migration_history WHERE revision = '$2' AND direction = 'up'"
}

# Deterministic: a test revision above the shipped head creates a table, then waits for a lock
# on e2e_gate that a session of the test holds in HEARTHMINDS_DB (the other databases have no
# e2e_gate and go through). Once the migrations step's backend is seen waiting there (pg_stat_activity), the
# postmaster is killed with SIGKILL. The run halts at migrations; the cluster, started again by
# the postgres step, shows every database at the previous head without the revision's table;
# the next full run converges to $next, applied exactly once. Then `hm-migrate down` and the
# files' removal bring the root back to the shipped head.
fault_kill_mid_migration() {
    local dir="$ROOT$E2E_HM/Migrations" head next hmdb=$CFG_HM_DB db pid rc t0
    local datadir="/var/lib/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER"
    head=$(migrations_head)
    next=$(printf '%04d' $((10#$head + 1)))  # the test revision: above the shipped head
    cat >"$dir/${next}_e2e_killed.up.sql" <<'EOF'
-- test-only (e2e tier): waits for the lock the test holds on e2e_gate (HEARTHMINDS_DB only),
-- so that the postmaster can be killed while this revision's transaction is open
CREATE TABLE e2e_killed (n bigint);
DO $$
BEGIN
    IF to_regclass('public.e2e_gate') IS NOT NULL THEN
        LOCK TABLE public.e2e_gate IN ACCESS SHARE MODE;
    END IF;
END
$$;
INSERT INTO e2e_killed VALUES (1);
EOF
    printf -- '-- test-only (e2e tier)\nDROP TABLE e2e_killed;\n' >"$dir/${next}_e2e_killed.down.sql"

    check "kill mid-migration: a gate table in $hmdb" \
        psql_root postgres "$hmdb" "CREATE TABLE e2e_gate (); GRANT SELECT ON e2e_gate TO PUBLIC"
    printf 'BEGIN;\nLOCK TABLE e2e_gate IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(600);\n' |
        in_root_as postgres psql -X -q -p "$CFG_PORT" -d "$hmdb" >"$WORK/holder.out" 2>&1 &
    HOLDER_PID=$!
    check "kill mid-migration: a session holds the gate's lock" wait_for 30 gate_held "$hmdb"

    RUN_LABEL=fault-kill
    RUN_ID="e2e-fault-kill-$(date -u +%H%M%S%N)-$$"
    t0=$(e2e_now_ms)
    E2E_CWD=$E2E_HM in_root HEARTHMINDS_RUN_ID="$RUN_ID" ./install.sh >"$WORK/fault-kill.out" 2>&1 </dev/null &
    INSTALL_BG_PID=$!
    if wait_for 150 blocked_in_revision "$hmdb"; then
        e2e_pass "kill mid-migration: the migrations step waits inside revision $next in $hmdb"
    else
        e2e_fail "kill mid-migration: the migrations step never reached revision $next's lock" \
            "$(tail -n 15 "$WORK/fault-kill.out")"
    fi
    # Two install.sh at once, for real: while this one is held inside migrations, a second one
    # must refuse at once (75), running no step.
    local kill_run=$RUN_ID
    run second-at-once
    check_rc "two install.sh at once: the second exits 75 while the first runs" 75
    check "two install.sh at once: the second refused at once (under 5 s)" test "$RUN_MS" -lt 5000
    check "two install.sh at once: the second says another install.sh is running" \
        grep -qF 'another install.sh is running' "$WORK/second-at-once.out"
    check "two install.sh at once: the second ran no step" test -z "$(log_lines "$RUN_ID")"
    RUN_LABEL=fault-kill RUN_ID=$kill_run
    pid=$(head -n 1 "$ROOT$datadir/postmaster.pid")
    check "kill mid-migration: kill -9 of the postmaster (pid $pid in the root)" in_root sh -c 'kill -KILL "$1"' sh "$pid"
    set +e
    wait "$INSTALL_BG_PID"
    rc=$?
    set -e
    INSTALL_BG_PID=""
    RC=$rc
    RUN_MS=$(($(e2e_now_ms) - t0))
    e2e_note "install.sh (postmaster killed in migrations): exit $RC in $(e2e_secs "$RUN_MS")s"
    TIMINGS+=("$(printf '  %-34s %7ss' "install.sh fault-kill" "$(e2e_secs "$RUN_MS")")")
    check_rc "kill mid-migration: ./install.sh exits 1" 1
    check "kill mid-migration: the message names the step" \
        grep -qF "step 'migrations' reported false" "$WORK/fault-kill.out"
    check "kill mid-migration: verify never ran" not_run "$RUN_ID" verify
    wait "$HOLDER_PID" 2>/dev/null || true
    HOLDER_PID=""
    check "kill mid-migration: no postgres process is left in the root" wait_for 30 no_postgres_in_root

    run fault-kill-restart -- --only postgres
    check_rc "kill mid-migration: --only postgres starts the killed cluster again (exit 0)" 0
    for db in $(all_databases); do
        check "kill mid-migration: after the crash $db is at the previous head $head" expect_eq "$head" \
            psql_root postgres "$db" "SELECT version_num FROM alembic_version"
        check "kill mid-migration: after the crash $db has no table of revision $next" expect_eq "" \
            psql_root postgres "$db" "SELECT to_regclass('public.e2e_killed')"
        check "kill mid-migration: after the crash $db has no history row for $next" expect_eq 0 \
            history_ups "$db" $next
    done
    check "kill mid-migration: the gate table is dropped" psql_root postgres "$hmdb" "DROP TABLE e2e_gate"

    run fault-kill-rerun
    check_rc "kill mid-migration: the next run exits 0" 0
    check "kill mid-migration: the next run logged every step true" log_all_true "$RUN_ID"
    for db in $(all_databases); do
        check "kill mid-migration: $db converged to $next (alembic_version)" expect_eq $next \
            psql_root postgres "$db" "SELECT version_num FROM alembic_version"
        check "kill mid-migration: $db has revision $next's table with its one row" expect_eq 1 \
            psql_root postgres "$db" "SELECT count(*) FROM e2e_killed"
        check "kill mid-migration: $db applied $next exactly once (history)" expect_eq 1 history_ups "$db" $next
    done

    check "kill mid-migration: hm-migrate down --to $head undoes the test revision" migrate_down "$head"
    rm -f "$dir/${next}_e2e_killed.up.sql" "$dir/${next}_e2e_killed.down.sql"
    for db in $(all_databases); do
        check "kill mid-migration: $db back at $head, without the test table" expect_eq "$head|" \
            psql_root postgres "$db" "SELECT version_num || '|' || coalesce(to_regclass('public.e2e_killed')::text, '') FROM alembic_version"
    done
}

# --- bad configuration, on the converged root ---------------------------------------------------

# Each: an environment assignment, then the key the message must name. Every one must exit 64
# with the host unchanged (users, clusters, hba and conf files, databases, roles, the
# postmaster's start time) and no action logged.
BAD_CONFIGS=(
    'AI_NAMES=["logos", "aletheia"'                 AI_NAMES # malformed: no closing ]
    'AI_NAMES=["logos" "aletheia"]'                 AI_NAMES # malformed: no comma
    'AI_NAMES=["logos", ]'                          AI_NAMES # malformed: empty element
    'AI_NAMES=["logos", "unterminated]'             AI_NAMES # malformed: open quote
    "AI_NAMES=[\"logos\", \"o'brien\"]"             AI_NAMES # a quote in a name
    'AI_NAMES=["logos", "x\"y"]'                    AI_NAMES # a double quote in a name
    'AI_NAMES=["logos", "Bad;Name"]'                AI_NAMES # semicolon and capitals
    'AI_NAMES=["logos", "a;drop table x"]'          AI_NAMES # semicolon and spaces
    'AI_NAMES=["logos", "two words"]'               AI_NAMES # a space
    'AI_NAMES=["Logos"]'                            AI_NAMES # upper case
    "AI_NAMES=[\"$(printf 'a%.0s' $(seq 1 61))\"]"  AI_NAMES # 61 + "_db": 64 bytes, too long
    "HEARTHMINDS_DB=$(printf 'h%.0s' $(seq 1 64))"  HEARTHMINDS_DB # 64 bytes
    'AI_NAMES=["logos", "postgres"]'                AI_NAMES # reserved
    'AI_NAMES=["logos", "template1"]'               AI_NAMES # reserved
    'AI_NAMES=["logos", "hearthminds"]'             AI_NAMES # the manager's name
    'AI_NAMES=["pg_logos"]'                         AI_NAMES # pg_ is PostgreSQL's
    'HEARTHMINDS_USER=postgres'                     HEARTHMINDS_USER # reserved
    'HEARTHMINDS_DB=template0'                      HEARTHMINDS_DB # reserved
    'HEARTHMINDS_DB=hm"db'                          HEARTHMINDS_DB # a quote
    'AI_NAMES=["logos", "aletheia", "logos"]'       AI_NAMES # duplicate
    'POSTGRES_PORT=99999'                           POSTGRES_PORT # out of range
    'POSTGRES_PORT=54x32'                           POSTGRES_PORT # not a number
    'POSTGRES_PORT=5432;'                           POSTGRES_PORT # a semicolon
    'EMBEDDING_DIM=big'                             EMBEDDING_DIM # not a number
    'EMBEDDING_DIM=15.36'                           EMBEDDING_DIM # not a whole number
    'PGVECTOR_IVFFLAT_LISTS=many'                   PGVECTOR_IVFFLAT_LISTS
)

# bad_config_check LABEL WANT_KEY [ENV=VALUE...] [-- ARGS...]
bad_config_check() {
    local label=$1 key=$2
    shift 2
    snapshot "$WORK/snap.bad.before"
    run bad-config "$@"
    check_rc "bad config $label: exits 64" 64
    check "bad config $label: the message names $key" grep -qF "$key" "$WORK/bad-config.out"
    snapshot "$WORK/snap.bad.after"
    check "bad config $label: nothing changed" snapshots_equal "$WORK/snap.bad.before" "$WORK/snap.bad.after"
    check "bad config $label: no action ran" test -z "$(log_lines "$RUN_ID" | grep -vF '"result":false' || true)"
    # what the Ansible module reads: the refusal's one record, its failure and key as fields
    check "bad config $label: one record, failure configuration, key $key" sh -c \
        '[ "$(printf "%s\n" "$1" | grep -c .)" = 1 ] && printf "%s\n" "$1" | grep -F "\"action\":\"(configuration)\"" | grep -qF "\"failure\":\"configuration\",\"key\":\"$2\""' \
        sh "$(log_lines "$RUN_ID")" "$key"
}

bad_config_all() {
    local i t0 n=${#TIMINGS[@]}
    t0=$(e2e_now_ms)
    for ((i = 0; i < ${#BAD_CONFIGS[@]}; i += 2)); do
        bad_config_check "${BAD_CONFIGS[i]}" "${BAD_CONFIGS[i + 1]}" "${BAD_CONFIGS[i]}"
    done
    # Unknown keys: only a configuration file can hold them (the environment holds much else).
    printf '# e2e: an unknown key\nPOSTGRES_PORT=%s\nHEARTHMINDS_FLAVOUR=mild\n' "$CFG_PORT" >"$ROOT/root/e2e-unknown.env"
    bad_config_check "--config with an unknown key" HEARTHMINDS_FLAVOUR -- --config /root/e2e-unknown.env
    printf '# e2e: a key in lower case\npostgres_port=%s\n' "$CFG_PORT" >"$ROOT/root/e2e-lower.env"
    bad_config_check "--config with a lower-case key" postgres_port -- --config /root/e2e-lower.env
    rm -f "$ROOT/root/e2e-unknown.env" "$ROOT/root/e2e-lower.env"
    # one timing line for the lot, with the snapshots
    TIMINGS=("${TIMINGS[@]:0:n}")
    TIMINGS+=("$(printf '  %-34s %7ss' "bad config: $(((${#BAD_CONFIGS[@]} / 2) + 2)) runs + snapshots" \
        "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}

# --- an AI added to the configuration, on a converged root --------------------------------------

# Marker rows in every database, then AI_NAMES with one more name: the new role and database
# exist at the head revision, the new AI logs in with its password, and every marker is still
# there. A rerun with the new list changes nothing.
add_ai() {
    local new=$1 list=$2 db head
    head=$(migrations_head)
    for db in $(all_databases); do
        check "add an AI: a marker row in $db" psql_root postgres "$db" \
            "INSERT INTO memory_shards (content) VALUES ('e2e marker of $db')"
    done
    run add-ai "AI_NAMES=$list"
    check_rc "add an AI ($new): ./install.sh exits 0" 0
    check "add an AI ($new): every step logged true" log_all_true "$RUN_ID"
    check "add an AI ($new): the databases step logged a change" log_has "$RUN_ID" databases '"changed":true'
    check "add an AI ($new): role $new is LOGIN, not superuser" expect_eq "t|f" \
        psql_root postgres postgres "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = '$new'"
    check "add an AI ($new): $(ai_db "$new") owned by $new" expect_eq "$new" \
        psql_root postgres postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$(ai_db "$new")'"
    check "add an AI ($new): $(ai_db "$new") at head $head" expect_eq "$head" \
        psql_root postgres "$(ai_db "$new")" "SELECT version_num FROM alembic_version"
    check "add an AI ($new): $new logs in over TCP with its password" expect_eq "$new" \
        psql_tcp "$new" "$(role_password "$new")" "$(ai_db "$new")" "SELECT current_user"
    for db in $(all_databases); do
        check "add an AI ($new): the marker row of $db is untouched" expect_eq 1 psql_root postgres "$db" \
            "SELECT count(*) FROM memory_shards WHERE content = 'e2e marker of $db'"
        check "add an AI ($new): $db still at head $head" expect_eq "$head" \
            psql_root postgres "$db" "SELECT version_num FROM alembic_version"
    done
    run add-ai-rerun "AI_NAMES=$list"
    check_rc "add an AI ($new): the rerun exits 0" 0
    check "add an AI ($new): the rerun changes nothing" log_unchanged "$RUN_ID"
}
