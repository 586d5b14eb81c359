# shellcheck shell=bash
# The adversarial tier on the installed end-to-end root (issue 10), sourced by Tests/e2e/run.sh
# and called from its main scenario before the reset. Inside the real fresh Debian root:
#
# - a hostile AI, logged in with its own password (the one the suite generated for it), puts a
#   view in place of alembic_version that calls its escalation function (RESET ROLE, then ALTER
#   ROLE ... SUPERUSER and a grant of pg_execute_server_program), and plants a better match for
#   an unqualified lower(varchar) in public;
# - the postgres account plants links at the cluster's files and at conf.d (root's files as
#   targets: a victim of root's in /root, /etc/shadow), a `log` link pg_dropcluster would
#   unlink as root, and runs a planter loop while install.sh runs.
#
# Then `hm-migrate current`, `hm-reset --dry-run`, `hm-verify`, and install.sh with the planter
# loop running; after each,
# one line per check: no role gained an attribute or a membership (compared right after it),
# the planted function never ran as a superuser, root's files are as they were (content, owner,
# mode), and the command ended within its bound. The plants removed, install.sh converges and a
# rerun changes nothing. Last, the cluster reset (`install.sh --reset --yes --reset-cluster`)
# with the `log` link planted and the postgres account preparing the new cluster's directory
# with links while it runs: root's files unchanged; the plant gone, the host converges.

HOSTILE_PLANTER_PID=""
HOSTILE_VICTIM=/root/hm-e2e-victim
# A file of root's that reads as a valid start.conf ("auto"): a link to it in place of start.conf
# lets postgresql-common's tools go on (a link to any other file stops them at once).
HOSTILE_AUTO=/root/hm-e2e-auto
HOSTILE_STOP=/tmp/hm-e2e-hostile-stop # on the root's own file system (its /run is the namespace's)

hostile_cleanup() {
    if [ -n "$HOSTILE_PLANTER_PID" ]; then
        [ -n "${ROOT:-}" ] && touch "$ROOT$HOSTILE_STOP" 2>/dev/null
        kill "$HOSTILE_PLANTER_PID" 2>/dev/null || true
        wait "$HOSTILE_PLANTER_PID" 2>/dev/null || true
    fi
    HOSTILE_PLANTER_PID=""
}

# Every role's attributes and memberships, one line each (read by the superuser in the
# postgres database, which no tenant can plant in).
hostile_privileges() {
    psql_root postgres postgres \
        "SELECT r.rolname || ' ' || r.rolsuper || r.rolcreaterole || r.rolcreatedb || r.rolreplication || r.rolbypassrls
                || ' ' || coalesce((SELECT string_agg(b.rolname, ',' ORDER BY b.rolname) FROM pg_auth_members m
                JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid), '')
         FROM pg_roles r ORDER BY r.rolname"
}

# Root's files the attacks aim at: kind, owner, mode and content (a directory: its listing).
hostile_root_files() {
    local f
    for f in root root/hm-e2e-victim root/hm-e2e-auto root/.bashrc root/.profile etc/shadow etc/gshadow etc/passwd etc/group \
        etc/postgresql-common "$@"; do
        (cd "$ROOT" && stat -c '%n %F %u:%g %a' "$f" 2>&1) || true
        if [ -f "$ROOT/$f" ] && [ ! -L "$ROOT/$f" ]; then sha256sum <"$ROOT/$f"; fi
        if [ -d "$ROOT/$f" ] && [ ! -L "$ROOT/$f" ]; then (cd "$ROOT/$f" && ls -la --time-style=+ . | sed 1d); fi
    done
}
# ... and the client files with the generated passwords (root's, 0600).
hostile_victims() {
    hostile_root_files etc/hearthminds etc/hearthminds/pgpass
    (cd "$ROOT" && find etc/hearthminds -type f -exec sha256sum {} + | sort) 2>&1 || true
}

# The AI, logged in with its own password over TCP (its database, its rights).
hostile_ai() { psql_tcp "$HOSTILE_AI" "$(role_password "$HOSTILE_AI")" "$(ai_db "$HOSTILE_AI")" "$1"; }

# Who ran the planted function: current_user/session_user, read back by the AI itself.
hostile_ran_as() { hostile_ai "SELECT coalesce(string_agg(who || '/' || sess, ' '), '') FROM public.pwned_log"; }

# After a command: no new privilege, no superuser ran the plant, root's files unchanged, bounded.
hostile_after() {
    local what=$1 bound=$2 runs
    check "hostile, $what: no role gained an attribute or a membership" \
        snapshots_equal "$WORK/hostile.priv.before" <(hostile_privileges)
    runs=$(hostile_ran_as 2>&1 || true)
    check "hostile, $what: the planted function never ran as a superuser ($runs)" \
        sh -c '! printf "%s\n" "$1" | tr " /" "\n\n" | grep -qx -e postgres -e "$2"' sh "$runs" "$CFG_HM_USER"
    check "hostile, $what: root's files unchanged (content, owner, mode)" \
        snapshots_equal "$WORK/hostile.victims.before" <(hostile_victims)
    check "hostile, $what: ended in bounded time ($(e2e_secs "$RUN_MS")s, bound ${bound}s)" test "$RUN_MS" -lt "$((bound * 1000))"
}

# hostile_tool LABEL ARGS...: a shipped executable run by hand in the root; sets RC and RUN_MS.
hostile_tool() {
    local label=$1 t0
    shift
    t0=$(e2e_now_ms)
    set +e
    E2E_CWD=$E2E_HM in_root "$@" >"$WORK/$label.out" 2>&1 </dev/null
    RC=$?
    set -e
    RUN_MS=$(($(e2e_now_ms) - t0))
    e2e_note "$* : exit $RC in $(e2e_secs "$RUN_MS")s"
}

HOSTILE_SAVED=/var/lib/postgresql/hm-e2e-saved # the postgres account's copies of what it replaces

# The postgres account's static plants in the cluster's configuration directory (it keeps a
# copy of each file it replaces, to put back when it takes its plants away).
hostile_plant_links() {
    local c=/etc/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER
    in_root_as postgres sh -c '
        set -e
        c=$1 v=$2 saved=$3
        mkdir -p "$saved/conf.d"
        for f in pg_hba.conf pg_ident.conf start.conf conf.d/hearthminds.conf; do cp -p "$c/$f" "$saved/$f"; done
        ln -sfn "$v" "$c/log"
        for f in pg_hba.conf pg_ident.conf start.conf conf.d/hearthminds.conf; do
            for t in tmp new hm-tmp; do ln -sfn /etc/shadow "$c/$f.$t"; done
        done
        ln -sfn /etc/shadow "$c/.plant" && mv -fT "$c/.plant" "$c/pg_ident.conf"
        ln -sfn "$v" "$c/conf.d/.plant" && mv -fT "$c/conf.d/.plant" "$c/conf.d/hearthminds.conf"
    ' sh "$c" "$HOSTILE_VICTIM" "$HOSTILE_SAVED"
}

# The planter loop: our files and conf.d swapped for links to root's files, over and over,
# until the stop file appears (the loop is the postgres account's own process in the root).
hostile_planter_start() {
    local c=/etc/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER
    rm -f "$ROOT$HOSTILE_STOP"
    in_root_as postgres sh -c '
        c=$1 v=$2 stop=$3
        while [ ! -e "$stop" ]; do
            ln -sfn "$v" "$c/.plant" && mv -fT "$c/.plant" "$c/pg_hba.conf" 2>/dev/null
            ln -sfn "$4" "$c/.plant" && mv -fT "$c/.plant" "$c/start.conf" 2>/dev/null
            ln -sfn "$v" "$c/conf.d/.plant" 2>/dev/null && mv -fT "$c/conf.d/.plant" "$c/conf.d/hearthminds.conf" 2>/dev/null
            if mv -T "$c/conf.d" "$c/conf.d.away" 2>/dev/null; then
                ln -sfn /root "$c/conf.d"
                rm -f "$c/conf.d"
                mv -T "$c/conf.d.away" "$c/conf.d"
            fi
            ln -sfn "$v" "$c/log"
        done
    ' sh "$c" "$HOSTILE_VICTIM" "$HOSTILE_STOP" "$HOSTILE_AUTO" >/dev/null 2>&1 &
    HOSTILE_PLANTER_PID=$!
}

# Where the last install.sh run stopped (for the notes).
hostile_stopped_at() {
    local line
    line=$(grep -m1 -F "reported false" "$WORK/$RUN_LABEL.out" 2>/dev/null || true)
    e2e_note "$RUN_LABEL: ${line:-no step reported false}"
}

hostile_planter_stop() {
    touch "$ROOT$HOSTILE_STOP"
    wait "$HOSTILE_PLANTER_PID" 2>/dev/null || true
    HOSTILE_PLANTER_PID=""
    rm -f "$ROOT$HOSTILE_STOP"
}

# The postgres account removes what it planted (conf.d back in place if the loop left it aside)
# and puts back the files it replaced by links.
hostile_unplant_links() {
    local c=/etc/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER
    in_root_as postgres sh -c '
        set -e
        c=$1 saved=$2
        rm -f "$c/log" "$c/.plant" "$c/conf.d/.plant" "$c"/*.tmp "$c"/*.new "$c"/*.hm-tmp "$c"/conf.d/*.tmp "$c"/conf.d/*.new "$c"/conf.d/*.hm-tmp
        if [ -d "$c/conf.d.away" ]; then rm -rf "$c/conf.d"; mv -T "$c/conf.d.away" "$c/conf.d"; fi
        for f in pg_hba.conf pg_ident.conf start.conf conf.d/hearthminds.conf; do
            if [ -L "$c/$f" ] || [ ! -e "$c/$f" ]; then rm -f "$c/$f"; cp -p "$saved/$f" "$c/$f"; fi
        done
        rm -rf "$saved"
    ' sh "$c" "$HOSTILE_SAVED"
}

hostile_scenario() {
    local t0 ai_db_name
    t0=$(e2e_now_ms)
    HOSTILE_AI=${CFG_AIS[0]}
    ai_db_name=$(ai_db "$HOSTILE_AI")
    e2e_log "-- hostile tenants and a hostile postgres account on the installed root (issue 10)"
    (umask 077 && printf "root's secret\n" >"$ROOT$HOSTILE_VICTIM" && printf 'auto\n' >"$ROOT$HOSTILE_AUTO")
    hostile_privileges >"$WORK/hostile.priv.before"
    hostile_victims >"$WORK/hostile.victims.before"

    # The AI's plants, with its own password: the view in place of alembic_version, and a better
    # match for lower(varchar) in public.
    check "hostile AI $HOSTILE_AI (its own password, its database): plants a view calling its escalation in place of alembic_version" \
        hostile_ai "
        CREATE TABLE public.pwned_log (who text, sess text);
        GRANT INSERT ON public.pwned_log TO PUBLIC;
        CREATE FUNCTION public.pwn() RETURNS varchar LANGUAGE plpgsql AS \$f\$
        BEGIN
            INSERT INTO public.pwned_log VALUES (current_user, session_user);
            BEGIN
                EXECUTE 'RESET ROLE';
                EXECUTE 'ALTER ROLE $HOSTILE_AI SUPERUSER';
                EXECUTE 'GRANT pg_execute_server_program TO $HOSTILE_AI';
            EXCEPTION WHEN others THEN NULL;
            END;
            RETURN (SELECT max(version_num) FROM public.alembic_version_real);
        END \$f\$;
        CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE plpgsql AS \$f\$
        BEGIN PERFORM public.pwn(); RETURN pg_catalog.lower(\$1::text); END \$f\$;
        ALTER TABLE public.alembic_version RENAME TO alembic_version_real;
        CREATE VIEW public.alembic_version AS SELECT public.pwn()::varchar(32) AS version_num;"
    check "hostile AI: it is no superuser (yet)" expect_eq f \
        psql_root postgres postgres "SELECT rolsuper FROM pg_roles WHERE rolname = '$HOSTILE_AI'"
    check "hostile postgres account: links at the cluster's files, conf.d/hearthminds.conf and log, to root's files" \
        hostile_plant_links
    hostile_victims >"$WORK/hostile.victims.before" # the victim file made above is part of it

    hostile_tool hostile-migrate-current ./bootstrap/bin/hm-migrate current
    check "hostile, hm-migrate current: exits 1 naming the view in $ai_db_name" \
        sh -c '[ "$1" -eq 1 ] && grep -qF "is not a plain table of $2: it is a view" "$3"' sh "$RC" "$HOSTILE_AI" "$WORK/hostile-migrate-current.out"
    hostile_after "hm-migrate current" 60

    hostile_tool hostile-reset-dry ./bootstrap/bin/hm-reset --dry-run
    check "hostile, hm-reset --dry-run: exits 0" test "$RC" -eq 0
    check "hostile, hm-reset --dry-run: every database is still there" expect_eq "$((${#CFG_AIS[@]} + 1))" \
        psql_root postgres postgres "SELECT count(*) FROM pg_database WHERE datname = '$CFG_HM_DB' OR datname LIKE '%$CFG_SUFFIX'"
    hostile_after "hm-reset --dry-run" 60

    hostile_tool hostile-verify ./bootstrap/bin/hm-verify
    check "hostile, hm-verify: exits 1 naming the view" \
        sh -c '[ "$1" -eq 1 ] && grep -qF "is not a plain table of $2: it is a view" "$3"' sh "$RC" "$HOSTILE_AI" "$WORK/hostile-verify.out"
    hostile_after "hm-verify" 60

    # install.sh with the planter loop running: it may stop at a step (false), never follow a
    # link, hang or hand out a privilege.
    hostile_planter_start
    run hostile-install
    hostile_planter_stop
    hostile_stopped_at
    check "hostile, install.sh (planter loop running): exits 0 or 1 (a false result, never 64 or a hang)" \
        test "$RC" -eq 0 -o "$RC" -eq 1
    hostile_after "install.sh (planter loop running)" 300

    # The plants removed, the host converges, and a rerun changes nothing.
    check "hostile AI: takes its view away" \
        hostile_ai "DROP VIEW public.alembic_version; ALTER TABLE public.alembic_version_real RENAME TO alembic_version"
    check "hostile postgres account: takes its links away" hostile_unplant_links
    run hostile-converge
    check_rc "hostile, plants removed: ./install.sh exits 0" 0
    check "hostile, plants removed: every step logged true" log_all_true "$RUN_ID"
    run hostile-converged
    check_rc "hostile, plants removed: the rerun exits 0" 0
    check "hostile, plants removed: the rerun changes nothing" log_unchanged "$RUN_ID"
    hostile_after "the converging runs" 300

    # The cluster reset: pg_dropcluster as root would unlink what `log` names; the postgres
    # account also prepares the new cluster's directory with links while the run goes on.
    local c=/etc/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER
    local system_id
    system_id=$(psql_root postgres postgres "SELECT system_identifier FROM pg_control_system()")
    check "hostile postgres account: a log link to root's file in $c before the cluster reset" \
        in_root_as postgres ln -sfn "$HOSTILE_VICTIM" "$c/log"
    rm -f "$ROOT$HOSTILE_STOP"
    in_root_as postgres sh -c '
        c=$1 v=$2 stop=$3
        while [ ! -e "$stop" ]; do
            if [ ! -e "$c/postgresql.conf" ] && mkdir -p "$c" 2>/dev/null; then
                for f in start.conf pg_ctl.conf environment; do ln -sfn "$v" "$c/$f" 2>/dev/null; done
                ln -sfn "$v" "/var/log/postgresql/postgresql-${4}.log" 2>/dev/null
            fi
        done
    ' sh "$c" "$HOSTILE_VICTIM" "$HOSTILE_STOP" "$CFG_PG_VERSION-$CFG_CLUSTER" >/dev/null 2>&1 &
    HOSTILE_PLANTER_PID=$!
    # (the reset rewrites our client files: root's other files are compared)
    hostile_root_files >"$WORK/hostile.victims.before"
    run hostile-reset-cluster -- --reset --yes --reset-cluster
    hostile_planter_stop
    hostile_stopped_at
    check "hostile, install.sh --reset --yes --reset-cluster (planted): exits 0 or 1" test "$RC" -eq 0 -o "$RC" -eq 1
    check "hostile, cluster reset: root's files unchanged (content, owner, mode)" \
        snapshots_equal "$WORK/hostile.victims.before" <(hostile_root_files)
    check "hostile, cluster reset: ended in bounded time ($(e2e_secs "$RUN_MS")s)" test "$RUN_MS" -lt 600000
    check "hostile postgres account: takes its prepared directory away" \
        in_root_as postgres sh -c 'if [ ! -e "$1/postgresql.conf" ]; then rm -rf "$1"; fi; rm -f "/var/log/postgresql/postgresql-$2.log"; true' \
        sh "$c" "$CFG_PG_VERSION-$CFG_CLUSTER"
    run hostile-reset-converge
    check_rc "hostile, after the cluster reset: ./install.sh exits 0" 0
    check "hostile, after the cluster reset: a new cluster (another system identifier than $system_id)" \
        sh -c '[ -n "$1" ] && [ "$1" != "$2" ]' sh "$(psql_root postgres postgres "SELECT system_identifier FROM pg_control_system()" 2>&1)" "$system_id"
    check "hostile, after the cluster reset: every step logged true" log_all_true "$RUN_ID"
    run hostile-reset-converged
    check "hostile, after the cluster reset: the rerun changes nothing" log_unchanged "$RUN_ID"
    check "hostile, after the cluster reset: $HOSTILE_AI is no superuser" expect_eq f \
        psql_root postgres postgres "SELECT rolsuper FROM pg_roles WHERE rolname = '$HOSTILE_AI'"
    check "hostile: root's victim file is intact" expect_eq "root's secret" cat "$ROOT$HOSTILE_VICTIM"
    rm -f "$ROOT$HOSTILE_VICTIM" "$ROOT$HOSTILE_AUTO"
    TIMINGS+=("$(printf '  %-34s %7ss' "hostile (issue 10)" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}
