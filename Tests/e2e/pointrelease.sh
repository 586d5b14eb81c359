# shellcheck shell=bash
# Every Debian 12 point release (issue 20; sourced by Tests/e2e/run.sh after interrupt.sh, whose
# run_bounded it uses): ./install.sh with no configuration on two fresh roots whose apt does not
# see today's bookworm-security:
#   suite  the minbase root as debootstrap leaves it: its one suite (bookworm main) in
#          sources.list, no -updates, no -security, no lists
#   stale  lists fetched with that one suite, then the -updates and -security lines added to
#          sources.list without an apt-get update (an image that never ran apt update after its
#          sources changed)
# On each the install must converge, leave no compiler, and the server that runs must be the
# installed one: plpgsql loads in every database and as an AI (a server upgraded under its feet
# fails with `could not load library ".../plpgsql.so": undefined symbol`), SHOW server_version is
# the installed postgresql-15 package's version, the postmaster's executable is not deleted.

# The "stale" root: minbase, `apt-get update` with its one suite, then the suite's -updates and
# -security lines (this host's mirrors) appended to sources.list, not fetched.
e2e_layer_stale() {
    local security updates
    security=$(e2e_security_mirror) ||
        { echo "no $(e2e_host_codename)-security entry in the host's apt sources (set E2E_SECURITY_MIRROR)"; return 1; }
    updates=$(e2e_suite_mirror "$(e2e_host_codename)-updates") || updates=$MIRROR
    printf 'deb %s %s main\n' "$MIRROR" "$E2E_SUITE" >"$ROOT/etc/apt/sources.list"
    in_root apt-get -q update || return 1
    {
        printf 'deb %s %s-updates main\n' "$updates" "$E2E_SUITE"
        printf 'deb %s %s-security main\n' "$security" "$E2E_SUITE"
    } >>"$ROOT/etc/apt/sources.list"
}

# plpgsql_everywhere: a DO block runs in every database that takes connections.
plpgsql_everywhere() {
    local db dbs bad=0 out
    dbs=$(psql_root postgres postgres "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1") || return 1
    for db in $dbs; do
        out=$(psql_root postgres "$db" 'DO $$BEGIN PERFORM 1; END$$' 2>&1) || { echo "$db: $out"; bad=1; }
    done
    [ "$bad" = 1 ] || echo "plpgsql ran in: $(tr '\n' ' ' <<<"$dbs")"
    return "$bad"
}

# plpgsql_as_ai AI: the AI, logged in with its password, creates and calls a plpgsql function.
plpgsql_as_ai() {
    psql_tcp "$1" "$(role_password "$1")" "$(ai_db "$1")" \
        'CREATE FUNCTION e2e_plpgsql() RETURNS int LANGUAGE plpgsql AS $$BEGIN RETURN 41 + 1; END$$;
         SELECT e2e_plpgsql(); DROP FUNCTION e2e_plpgsql()'
}

# server_is_installed_version: SHOW server_version is "<upstream> (Debian <version>)" of the
# installed postgresql-PG_VERSION package.
server_is_installed_version() {
    local v got
    v=$(in_root dpkg-query -W -f '${Version}' "postgresql-$CFG_PG_VERSION") || { echo "postgresql-$CFG_PG_VERSION not installed"; return 1; }
    got=$(psql_root postgres postgres 'SHOW server_version') || { echo "$got"; return 1; }
    [ "$got" = "${v%%-*} (Debian $v)" ] || { printf 'server_version: %s\ninstalled:      %s\n' "$got" "$v"; return 1; }
}

# postmaster_exe_current: the postmaster's /proc/PID/exe is the installed binary, not "(deleted)".
postmaster_exe_current() {
    local pid exe
    pid=$(head -n 1 "$ROOT/var/lib/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER/postmaster.pid" 2>/dev/null) ||
        { echo "no postmaster.pid"; return 1; }
    exe=$(in_root readlink "/proc/$pid/exe") || { echo "no process $pid"; return 1; }
    [ "$exe" = "/usr/lib/postgresql/$CFG_PG_VERSION/bin/postgres" ] || { echo "postmaster $pid runs $exe"; return 1; }
}

# pointrelease_root LABEL TARBALL WHAT: the checks on one fresh root.
pointrelease_root() {
    local label=$1 tarball=$2 what=$3 port t0
    t0=$(e2e_now_ms)
    port=$(free_port $((E2E_PORT + 5))) || e2e_die "no free port for the point-release scenario"
    e2e_log "-- point release, $label root: $what; POSTGRES_PORT=$port"
    root_create "pr-$label" "$tarball"
    ns_start
    install_dist
    default_config "$port"
    E2E_ENV=(POSTGRES_PORT="$port")
    e2e_note "$label root's apt sources: $(grep -v '^#' "$ROOT/etc/apt/sources.list" | tr '\n' '|')"
    installed_packages >"$WORK/packages.before"
    run_bounded "pr-$label" "${E2E_RUN_BOUND:-900}"
    check_rc "point release, $label: ./install.sh with no configuration exits 0" 0
    check "point release, $label: every step and action logged true" log_all_true "$RUN_ID"
    e2e_note "step times, $label: $(step_times "$RUN_ID")"
    check_packages_added "point release, $label" "$WORK/packages.before"
    if [ -n "$(in_root sh -c 'command -v pg_lsclusters' 2>/dev/null)" ] && in_root pg_lsclusters -h 2>/dev/null | grep -q online; then
        check "point release, $label: plpgsql loads in every database (DO block)" plpgsql_everywhere
        if has_step databases; then
            check "point release, $label: ${CFG_AIS[0]} creates and calls a plpgsql function" \
                expect_eq 42 plpgsql_as_ai "${CFG_AIS[0]}"
        fi
        check "point release, $label: the server runs the installed postgresql-$CFG_PG_VERSION (SHOW server_version)" \
            server_is_installed_version
        check "point release, $label: the postmaster's executable is the installed binary, not deleted" \
            postmaster_exe_current
    else
        e2e_fail "point release, $label: no cluster online: nothing of the server can be checked" \
            "$(tail -n 15 "$WORK/pr-$label.out")"
    fi
    check "point release, $label: hm-verify exits 0" in_root "$E2E_HM/bootstrap/bin/hm-verify"
    run_bounded "pr-$label-rerun" "${E2E_RUN_BOUND:-900}"
    check_rc "point release, $label: a rerun exits 0" 0
    check "point release, $label: a rerun changes nothing" log_unchanged "$RUN_ID"
    root_remove
    TIMINGS+=("$(printf '  %-34s %7ss' "point release, $label root" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}

scenario_pointrelease() {
    e2e_log "== point-release scenario: bookworm without -updates/-security, and with stale lists"
    pointrelease_root suite "$E2E_MINBASE" "debootstrap's one suite (bookworm main), no lists"
    e2e_layer stale "$E2E_MINBASE" e2e_layer_stale $((24 * 60))
    TIMINGS+=("$(printf '  %-34s %7ss' "stale root (old lists), cached" "$(e2e_secs "$E2E_LAYER_MS")")")
    pointrelease_root stale "$E2E_LAYER" "lists of bookworm alone, -updates and -security added unfetched"
}
