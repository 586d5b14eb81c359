#!/usr/bin/env bash
# The end-to-end tier: the release tarball installed on a fresh Debian 12 root, checked from
# outside. Run as root: sudo Tests/e2e/run.sh [--dist TARBALL]   (make test-e2e builds the dist)
#
# A fresh minbase bookworm root (debootstrap from this host's own apt mirror, with the suite's
# -updates and -security sources; cached under /var/cache/hearthminds-e2e/) is unpacked per
# scenario and run in its own PID + mount namespace (chroot; every process in it dies with it),
# or, in the booted scenario (booted.sh), booted with its own systemd as PID 1. The tarball is
# unpacked inside and ./install.sh
# runs there as on a new host, with no configuration except POSTGRES_PORT in the environment (a
# port no other cluster here uses). The checks of each step switch on when the tarball's
# bootstrap/steps lists it. Prints one line per check, ends with "e2e: N passed, N failed" and
# exits non-zero on any failure; it fails loudly when it cannot run.
#
# Environment: E2E_PORT (default: a free port from 31400), E2E_MIRROR and E2E_SECURITY_MIRROR
# (default: from the apt sources), E2E_REFRESH_CACHE=1 (rebuild the cached roots), E2E_KEEP=1
# (keep the roots), E2E_SCENARIOS (default "main second booted interrupt pointrelease backup"),
# E2E_CACHE_DIR, E2E_WORK_BASE, E2E_CUT_BOUND and E2E_RUN_BOUND (interrupt.sh's time bounds).
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
# shellcheck source=Tests/e2e/lib.sh
. "$E2E_DIR/lib.sh"
# shellcheck source=Tests/e2e/checks.sh
. "$E2E_DIR/checks.sh"
# shellcheck source=Tests/e2e/faults.sh
. "$E2E_DIR/faults.sh"
# shellcheck source=Tests/e2e/hostile.sh
. "$E2E_DIR/hostile.sh"
# shellcheck source=Tests/e2e/booted.sh
. "$E2E_DIR/booted.sh"
# shellcheck source=Tests/e2e/interrupt.sh
. "$E2E_DIR/interrupt.sh"
# shellcheck source=Tests/e2e/pointrelease.sh
. "$E2E_DIR/pointrelease.sh"
# shellcheck source=Tests/e2e/backup.sh
. "$E2E_DIR/backup.sh"
# shellcheck source=Tests/e2e/monitoring.sh
. "$E2E_DIR/monitoring.sh"

DIST="$REPO/dist/hearthminds-bootstrap.tar.gz"
while [ $# -gt 0 ]; do
    case "$1" in
        --dist) DIST=$2; shift ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--dist TARBALL]" >&2; exit 64 ;;
    esac
    shift
done

E2E_HM=/root/hearthminds-bootstrap # where the tarball is unpacked inside a root
E2E_ENV=()
E2E_STEPS=()
TIMINGS=()
WORK="" ROOT="" NS_UNSHARE="" NS_PID=""

# On any exit: the namespace killed and the root removed; and when the script stopped early
# (an unexpected error under set -e), still the summary line, counted as a failure.
cleanup() {
    local rc=$?
    monitoring_cleanup
    faults_cleanup
    hostile_cleanup
    interrupt_cleanup
    backup_cleanup
    root_remove
    e2e_abort_summary e2e "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port that nothing on this host listens on and no cluster here (or in a kept root) uses.
# From 31400: below the kernel's ephemeral range (32768-60999 on Debian), where a busy host's
# outgoing loopback connections can hold a port for a moment and make the cluster's bind fail.
free_port() {
    local p=${1:-31400} used
    used=$(cat /etc/postgresql/*/*/postgresql.conf 2>/dev/null | sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p')
    while [ "$p" -lt 65000 ]; do
        if [ -z "$(ss -Htan "sport = :$p")" ] && ! grep -qx "$p" <<<"$used"; then
            echo "$p"
            return 0
        fi
        p=$((p + 1))
    done
    return 1
}

# Unpacks the dist tarball inside the root (with the root's own tar) and reads its step list.
install_dist() {
    cp "$DIST" "$ROOT/root/hearthminds-bootstrap.tar.gz"
    in_root tar -xzf /root/hearthminds-bootstrap.tar.gz -C /root || e2e_die "cannot unpack the tarball in the root"
    [ -x "$ROOT$E2E_HM/install.sh" ] || e2e_die "the tarball has no hearthminds-bootstrap/install.sh"
    mapfile -t E2E_STEPS < <(awk -F'\t' '!/^(#|$)/ { print $1 }' "$ROOT$E2E_HM/bootstrap/steps")
    [ "${#E2E_STEPS[@]}" -gt 0 ] || e2e_die "the tarball lists no steps"
}

# run_install LABEL [ENV=VALUE...] [-- ARGS...]: runs ./install.sh inside the root with run id
# e2e-LABEL; sets RC, RUN_ID, RUN_MS; the console output is in $WORK/LABEL.out.
run_install() {
    local label=$1 envs=() t0
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    RUN_ID="e2e-$label-$(date -u +%H%M%S%N)-$$"
    t0=$(e2e_now_ms)
    set +e
    E2E_CWD=$E2E_HM in_root HEARTHMINDS_RUN_ID="$RUN_ID" ${envs[@]+"${envs[@]}"} ./install.sh "$@" \
        >"$WORK/$label.out" 2>&1 </dev/null
    RC=$?
    set -e
    RUN_MS=$(($(e2e_now_ms) - t0))
    e2e_note "install.sh ${*:-(no flags)}${envs[*]:+ with ${envs[*]}}: exit $RC in $(e2e_secs "$RUN_MS")s ($label)"
    TIMINGS+=("$(printf '  %-34s %7ss' "install.sh $label" "$(e2e_secs "$RUN_MS")")")
}

# check_rc NAME WANT: the last run_install exited WANT (its output is shown when not).
check_rc() {
    local name=$1 want=$2
    if [ "$RC" -eq "$want" ]; then e2e_pass "$name"; else
        e2e_fail "$name" "exit $RC, expected $want; last lines of $RUN_LABEL.out:" "$(tail -n 25 "$WORK/$RUN_LABEL.out")"
    fi
}
run() { RUN_LABEL=$1; run_install "$@"; }

# The root's apt configuration that no step may leave changed (pgvector's debian-source method
# uses a temporary sources list).
apt_sources() {
    (cd "$ROOT" && find etc/apt/sources.list etc/apt/sources.list.d etc/apt/trusted.gpg.d etc/apt/keyrings \
        etc/apt/preferences.d -type f -exec sha256sum {} + 2>/dev/null | sort) || true
}

# check_shipped_pgvector LABEL RUN_ID: the run installed pgvector by the shipped package, saying
# so and why in the log, and dpkg owns its files.
check_shipped_pgvector() {
    check "$1: pgvector installed by method shipped; the log says why (no apt source, the release ships it)" \
        log_has "$2" pgvector 'by method shipped' 'no apt source offers' 'the release ships'
    check "$1: dpkg owns pgvector's library (package postgresql-$CFG_PG_VERSION-pgvector)" \
        expect_eq "postgresql-$CFG_PG_VERSION-pgvector" pgvector_owner
}

# The tarball method on the second root (its pgvector built by debian-source): the pinned
# upstream tarball of the shipped version (Debian's .orig.tar.gz, from the host's mirror's pool),
# pgvector's files removed, then `--only pgvector` with PGVECTOR_INSTALL_METHOD=tarball must
# build it again and leave no toolchain behind.
tarball_method() {
    local deb version url sha
    deb=$(find "$ROOT$E2E_HM/packages" -name '*.deb' | head -n 1)
    version=$(dpkg-deb --field "$deb" Version) || e2e_die "cannot read the version of the shipped package"
    version=${version#*:}
    url="${MIRROR%/}/pool/main/p/pgvector/pgvector_${version%-*}.orig.tar.gz"
    curl -fsS --max-time 60 -o "$ROOT/root/pgvector.tar.gz" "$url" || e2e_die "cannot download $url"
    sha=$(sha256sum "$ROOT/root/pgvector.tar.gz" | cut -d' ' -f1)
    rm -f "$ROOT/usr/lib/postgresql/$CFG_PG_VERSION/lib/vector.so" \
        "$ROOT/usr/share/postgresql/$CFG_PG_VERSION/extension/vector.control"
    run second-tarball PGVECTOR_INSTALL_METHOD=tarball PGVECTOR_SOURCE=/root/pgvector.tar.gz PGVECTOR_SHA256="$sha" \
        -- --only pgvector
    check_rc "tarball method (pgvector ${version%-*}, --only pgvector): exits 0" 0
    check "tarball method: the log says so; the build's packages removed again" \
        log_has "$RUN_ID" pgvector 'by method tarball' 'packages installed for the build removed again'
    check_packages_added "second config, tarball" "$WORK/packages.before"
    check_pgvector
    rm -f "$ROOT/root/pgvector.tar.gz"
}

# hm-reset with no confirmation and no terminal: must refuse.
hm_reset_unconfirmed() { E2E_CWD=$E2E_HM in_root ./bootstrap/bin/hm-reset </dev/null; }

default_config() {
    CFG_SERVICE_USER=hearthminds-service CFG_PG_VERSION=15 CFG_CLUSTER=main CFG_PORT=$1
    CFG_HM_DB=hearthminds_db CFG_HM_USER=hearthminds CFG_HM_PASSWORD=""  # none configured: generated
    CFG_AIS=(logos aletheia) CFG_SUFFIX=_db
    declare -gA CFG_AI_PASSWORDS=()
}

# --- the main scenario: one fresh root, installed, checked, rerun, tampered, dry run, bad config --
scenario_main() {
    local t0 before after
    t0=$(e2e_now_ms)
    e2e_log "== main scenario: fresh root, default configuration, POSTGRES_PORT=$E2E_PORT"
    root_create main
    ns_start
    install_dist
    e2e_note "steps in the tarball: ${E2E_STEPS[*]}"
    default_config "$E2E_PORT"
    E2E_ENV=(POSTGRES_PORT="$E2E_PORT")
    apt_sources >"$WORK/apt-sources.before"
    installed_packages >"$WORK/packages.before"

    # 0. a fault first: apt cannot reach its mirror, so the runtime package cannot be installed;
    #    install.sh stops before any step, saying why, and changes nothing
    cp -p "$ROOT/etc/apt/sources.list" "$WORK/sources.list.good"
    cp -a "$ROOT/var/lib/apt/lists" "$WORK/apt-lists.good"
    printf 'deb http://127.0.0.1:9/debian %s main\n' "$E2E_SUITE" >"$ROOT/etc/apt/sources.list"
    snapshot "$WORK/snap.fault.before"
    run fault-apt
    check_rc "fault, apt cannot reach its mirror: ./install.sh exits 1" 1
    check "fault, apt cannot reach its mirror: the message names the cause" grep -q 'libpq5' "$WORK/fault-apt.out"
    check "fault, apt cannot reach its mirror: no step ran" test -z "$(log_lines "$RUN_ID")"
    snapshot "$WORK/snap.fault.after"
    check "fault, apt cannot reach its mirror: nothing changed" \
        snapshots_equal "$WORK/snap.fault.before" "$WORK/snap.fault.after"
    cp -p "$WORK/sources.list.good" "$ROOT/etc/apt/sources.list"
    rm -rf "$ROOT/var/lib/apt/lists" && cp -a "$WORK/apt-lists.good" "$ROOT/var/lib/apt/lists" # fresh again

    # 1. the fresh install, no configuration
    run fresh
    check_rc "fresh root: ./install.sh exits 0" 0
    check "fresh root: every step and action logged true" log_all_true "$RUN_ID"
    check "fresh root: the log records a change (the host was fresh)" log_has "$RUN_ID" service-user '"changed":true'
    e2e_note "step times, fresh: $(step_times "$RUN_ID")"
    if [ "$RC" -ne 0 ]; then
        e2e_fail "main scenario: stopped after the failed fresh install (nothing else can be checked)"
        root_remove # (the next scenario's root_create would otherwise leave this one behind)
        return 0
    fi
    check_host
    if has_step pgvector; then
        check_shipped_pgvector "fresh root" "$RUN_ID"
        check_packages_added "fresh root" "$WORK/packages.before"
    fi
    apt_sources >"$WORK/apt-sources.after"
    check "fresh root: the root's apt sources and keys are as they were before the install" \
        snapshots_equal "$WORK/apt-sources.before" "$WORK/apt-sources.after"
    check "fresh root: the install.sh lock is free after the run (no daemon inherited it)" \
        in_root flock -n /run/hearthminds/bootstrap.lock true

    # 2. the rerun changes nothing
    run rerun
    check_rc "rerun: ./install.sh exits 0" 0
    check "rerun: every step ran and no action changed anything" log_unchanged "$RUN_ID"
    e2e_note "step times, rerun: $(step_times "$RUN_ID")"

    # 2b. monitoring (issue 23): a real Prometheus scrapes both exporters; what the test writes
    #     (rows, a migration down, a failed run) is what its HTTP API says; converged again after
    has_step monitoring && monitoring_prometheus

    # 3. a dry run of a converged host: reports, changes nothing
    snapshot "$WORK/snap.converged.before"
    run dry-converged -- --dry-run
    check_rc "dry run, converged host: exits 0" 0
    snapshot "$WORK/snap.converged.after"
    check "dry run, converged host: nothing changed (users, clusters, hba, databases, roles)" \
        snapshots_equal "$WORK/snap.converged.before" "$WORK/snap.converged.after"
    check "dry run, converged host: logged as dry run, no change" sh -c \
        "lines=\$(grep -F '\"run\":\"$RUN_ID\"' '$ROOT/var/log/hearthminds/bootstrap.jsonl'); [ -n \"\$lines\" ] && ! printf '%s\n' \"\$lines\" | grep -qF '\"changed\":true' && ! printf '%s\n' \"\$lines\" | grep -vqF '\"dry_run\":true'"

    # 4. tamper: the service home opened up, and (when the step exists) a trust line appended to
    #    pg_hba.conf; the dry run reports both and changes nothing
    chmod 0755 "$ROOT/var/lib/$CFG_SERVICE_USER"
    if has_step pg-hba; then
        printf 'host all all 127.0.0.1/32 trust\n' >>"$(hba_file)"
    fi
    snapshot "$WORK/snap.tampered.before"
    run dry-tampered -- --dry-run
    check "dry run, tampered host: exits 0 or 1, not 64" test "$RC" -eq 0 -o "$RC" -eq 1
    snapshot "$WORK/snap.tampered.after"
    check "dry run, tampered host: nothing changed" \
        snapshots_equal "$WORK/snap.tampered.before" "$WORK/snap.tampered.after"
    check "dry run, tampered host: reports the home mode as would change" \
        log_has "$RUN_ID" service-user 'home' '"result":false' '"dry_run":true'
    check "dry run, tampered host: no action logged a change" sh -c \
        "! grep -F '\"run\":\"$RUN_ID\"' '$ROOT/var/log/hearthminds/bootstrap.jsonl' | grep -qF '\"changed\":true'"
    if has_step pg-hba; then
        check "dry run, tampered host: reports pg-hba as would change" \
            log_has "$RUN_ID" pg-hba '"result":false' '"dry_run":true'
        check "dry run, tampered host: the trust line is still there" grep -qx 'host all all 127.0.0.1/32 trust' "$(hba_file)"

        # 5. --only pg-hba replaces the tampered file, and touches no other step
        run only-pg-hba -- --only pg-hba
        check_rc "--only pg-hba after tampering: exits 0" 0
        check "--only pg-hba: only the pg-hba step ran" log_steps_only "$RUN_ID" pg-hba
        check "--only pg-hba: it logged a change" log_has "$RUN_ID" pg-hba '"changed":true'
        check "--only pg-hba: no trust line left in the file" sh -c \
            "! grep -Ev '^[[:space:]]*(#|\$)' '$(hba_file)' | grep -Ew 'trust|md5|password'"
        check "--only pg-hba: the loaded rules have no trust" expect_eq 0 \
            psql_root postgres postgres "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'"
        check "--only pg-hba: the other step's tampering is untouched (home still 0755)" expect_eq 755 \
            stat -c '%a' "$ROOT/var/lib/$CFG_SERVICE_USER"
    fi
    run only-service-user -- --only service-user
    check_rc "--only service-user after tampering: exits 0" 0
    check "--only service-user: only the service-user step ran" log_steps_only "$RUN_ID" service-user
    check "--only service-user: home back to mode 0750" expect_eq 750 stat -c '%a' "$ROOT/var/lib/$CFG_SERVICE_USER"

    # 5b. dpkg owns pgvector (issue 11): apt-get remove takes it away, and the pgvector step puts
    #     the shipped package back
    if has_step pgvector; then
        check "apt-get remove postgresql-$CFG_PG_VERSION-pgvector: exits 0" \
            in_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y remove "postgresql-$CFG_PG_VERSION-pgvector"
        check "apt-get remove: pgvector's library and control file are gone" sh -c \
            "! test -e '$ROOT/usr/lib/postgresql/$CFG_PG_VERSION/lib/vector.so' && ! test -e '$ROOT/usr/share/postgresql/$CFG_PG_VERSION/extension/vector.control'"
        run only-pgvector -- --only pgvector
        check_rc "--only pgvector after apt-get remove: exits 0" 0
        check "--only pgvector: only the pgvector step ran" log_steps_only "$RUN_ID" pgvector
        check "--only pgvector: it logged a change" log_has "$RUN_ID" pgvector '"changed":true'
        check_shipped_pgvector "--only pgvector" "$RUN_ID"
        check_pgvector
    fi

    # 6. faults in the migrations step (issue 6): a broken revision file; the postmaster killed
    #    while a revision's transaction is open. Each halts the run there; the rerun converges.
    if has_step migrations; then
        fault_broken_migration
        fault_kill_mid_migration
    fi

    # 6b. bad configuration (issue 6's whole list): exit 64 before any change
    bad_config_all

    # 6c. hostile tenants and a hostile postgres account (issue 10): their plants while install.sh,
    #     hm-migrate current, hm-reset --dry-run, hm-verify and the cluster reset run
    if has_step databases && has_step migrations && [ -x "$ROOT$E2E_HM/bootstrap/bin/hm-reset" ]; then
        hostile_scenario
    fi

    # 7. the nuclear reset (issue 6), once the tarball has hm-reset: refused without --yes, then
    #    `install.sh --reset --yes` destroys our data and rebuilds a verified host
    if [ -x "$ROOT$E2E_HM/bootstrap/bin/hm-reset" ]; then
        local marker_db=""
        if has_step databases; then
            marker_db=$(ai_db "${CFG_AIS[0]}")
            check "reset: a marker table written in $marker_db" \
                psql_root postgres "$marker_db" "CREATE TABLE e2e_marker (x int); INSERT INTO e2e_marker VALUES (1)"
        fi
        snapshot "$WORK/snap.reset.before"
        check "reset: hm-reset without --yes (no terminal) refuses" \
            expect_refused '.' hm_reset_unconfirmed
        snapshot "$WORK/snap.reset.after"
        check "reset: the refusal changed nothing" snapshots_equal "$WORK/snap.reset.before" "$WORK/snap.reset.after"
        run reset -- --reset --yes
        check_rc "reset: ./install.sh --reset --yes exits 0" 0
        check "reset: every step after the reset logged true" log_all_true "$RUN_ID"
        if [ -n "$marker_db" ]; then
            check "reset: the marker table is gone (data destroyed, database rebuilt)" expect_eq "" \
                psql_root postgres "$marker_db" "SELECT to_regclass('e2e_marker')"
        fi
        check_host
    fi

    # 8. a second install.sh while one holds the lock refuses at once (exit 75), changing nothing
    snapshot "$WORK/snap.lock.before"
    RUN_LABEL=locked
    set +e
    E2E_CWD=$E2E_HM in_root flock /run/hearthminds/bootstrap.lock ./install.sh >"$WORK/locked.out" 2>&1 </dev/null
    RC=$?
    set -e
    check_rc "locked: install.sh while another holds the lock exits 75" 75
    snapshot "$WORK/snap.lock.after"
    check "locked: nothing changed" snapshots_equal "$WORK/snap.lock.before" "$WORK/snap.lock.after"

    # 8b. an operator's own package left half-installed (its dependency cannot be met): the dpkg
    #     recovery finishes what it can and never removes it (apt's --fix-broken would have); the
    #     postgres step is false naming it; once the operator removed it, the host converges
    mkdir -p "$ROOT/root/opdeb/DEBIAN"
    printf 'Package: operator-tool\nVersion: 1.0\nArchitecture: all\nMaintainer: op <op@example.org>\nDepends: libfoo-not-in-debian\nDescription: an operator package\n' \
        >"$ROOT/root/opdeb/DEBIAN/control"
    in_root dpkg-deb --build /root/opdeb /root/operator-tool.deb >/dev/null
    in_root dpkg -i /root/operator-tool.deb >/dev/null 2>&1 || true
    run operator-package
    check_rc "an operator's half-installed package: ./install.sh exits 1" 1
    check "an operator's half-installed package: the postgres step names it" grep -q 'operator-tool' "$WORK/operator-package.out"
    check "an operator's half-installed package: it is still there (not removed)" sh -c \
        "chroot '$ROOT' dpkg-query -W -f '\${Status}' operator-tool | grep -q 'unpacked'"
    in_root dpkg --purge operator-tool >/dev/null
    rm -rf "$ROOT/root/opdeb" "$ROOT/root/operator-tool.deb"

    # 9. converged again after all that: one more full run, nothing to change
    run final
    check_rc "final rerun: exits 0" 0
    check "final rerun: no action changed anything" log_unchanged "$RUN_ID"

    root_remove
    TIMINGS+=("$(printf '  %-34s %7ss' "main scenario" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}

# --- a second configuration on its own fresh root (issue 4): other names, suffix, cluster, port,
#     passwords from a config file. Runs once the databases step exists.
scenario_second_config() {
    local t0 port2 conf
    t0=$(e2e_now_ms)
    port2=$(free_port $((E2E_PORT + 1))) || e2e_die "no free port for the second configuration"
    e2e_log "== second configuration: fresh root, /etc/hearthminds/hearthminds.env, port $port2"
    root_create second
    ns_start
    install_dist
    default_config "$port2"
    CFG_CLUSTER=hm_e2e CFG_HM_DB=shared_mind CFG_HM_USER=hm_manager CFG_HM_PASSWORD=manager-e2e-secret
    CFG_AIS=(sophia nous) CFG_SUFFIX=_mem
    CFG_AI_PASSWORDS=([sophia]=sophia-e2e-secret)
    conf="$ROOT/etc/hearthminds/hearthminds.env"
    mkdir -p "$(dirname "$conf")"
    (umask 077 && cat >"$conf" <<EOF
# second configuration of the end-to-end tier
PG_CLUSTER_NAME=$CFG_CLUSTER
POSTGRES_PORT=$port2
HEARTHMINDS_DB=$CFG_HM_DB
HEARTHMINDS_USER=$CFG_HM_USER
HEARTHMINDS_PASSWORD=$CFG_HM_PASSWORD
AI_NAMES=["sophia", "nous"]
AI_DB_SUFFIX="$CFG_SUFFIX"
SOPHIA_PASSWORD=${CFG_AI_PASSWORDS[sophia]}
# a method that builds (issue 11): the build's compiler and headers must not stay
PGVECTOR_INSTALL_METHOD=debian-source
# compressed memories (issue 24): a halfvec host passes verify and the seed's query
PGVECTOR_STORAGE=halfvec
EOF
    )
    E2E_ENV=()
    installed_packages >"$WORK/packages.before"
    # faults on the fresh root first (issue 6): apt unreachable inside the postgres step, then
    # the port held by another process; the install below is the rerun that must converge
    faults_fresh_root
    run second-fresh
    check_rc "second config: ./install.sh exits 0" 0
    check "second config: every step and action logged true" log_all_true "$RUN_ID"
    e2e_note "step times, second config: $(step_times "$RUN_ID")"
    if [ "$RC" -eq 0 ]; then
        check_host
        has_step vector-index && check_halfvec_host
        if has_step pgvector; then
            check "second config: pgvector built by method debian-source; the build's packages removed again (log)" \
                log_has "$RUN_ID" pgvector 'by method debian-source' 'packages installed for the build removed again'
            check_packages_added "second config, debian-source" "$WORK/packages.before"
            tarball_method
        fi
        run second-rerun
        check_rc "second config rerun: exits 0" 0
        check "second config rerun: no action changed anything" log_unchanged "$RUN_ID"
        # an AI added to the configuration (issue 6): created at head, the others' data untouched
        add_ai logos '["sophia", "nous", "logos"]'
    fi
    root_remove
    TIMINGS+=("$(printf '  %-34s %7ss' "second configuration" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}

# --- main -------------------------------------------------------------------------------------
TOTAL_T0=$(e2e_now_ms)
e2e_require
[ -s "$DIST" ] || e2e_die "no release tarball at $DIST (make dist)"
MIRROR=$(e2e_mirror) || e2e_die "no Debian mirror for $(e2e_host_codename) in /etc/apt/sources.list(.d); set E2E_MIRROR"
# Fail now, not in the middle, when the mirror is out of reach.
curl -fsS -o /dev/null --max-time 20 "${MIRROR%/}/dists/$E2E_SUITE/Release" ||
    e2e_die "the Debian mirror $MIRROR is not reachable: no network? (mirror from E2E_MIRROR or the apt sources)"
E2E_PORT=${E2E_PORT:-$(free_port 31400)} || e2e_die "no free TCP port"
e2e_log "e2e: dist $DIST; mirror $MIRROR (host apt sources); port $E2E_PORT"
E2E_CGROUP_LAYOUT=$(e2e_cgroup_layout)
[ "$E2E_CGROUP_LAYOUT" != none ] ||
    e2e_die "no cgroup hierarchy under /sys/fs/cgroup that systemd can use: the booted scenario cannot run"
remove_stale_roots
e2e_cached_root "$MIRROR"
if [ "$E2E_CACHE_MS" -gt 0 ]; then
    TIMINGS+=("$(printf '  %-34s %7ss' "minbase root: debootstrap, cached" "$(e2e_secs "$E2E_CACHE_MS")")")
else
    TIMINGS+=("  minbase root: from the cache")
fi
E2E_MINBASE=$E2E_TARBALL
# the roots: minbase with the suite's -updates and -security sources and fresh lists (made again
# after a day, as lists go stale), and that with systemd for the booted scenario
e2e_layer apt "$E2E_MINBASE" e2e_layer_apt $((24 * 60))
E2E_TARBALL=$E2E_LAYER
TIMINGS+=("$(printf '  %-34s %7ss' "apt root (sources, lists), cached" "$(e2e_secs "$E2E_LAYER_MS")")")
e2e_layer booted "$E2E_TARBALL" e2e_layer_booted
E2E_BOOTED_TARBALL=$E2E_LAYER
TIMINGS+=("$(printf '  %-34s %7ss' "booted root (systemd), cached" "$(e2e_secs "$E2E_LAYER_MS")")")

# the steps the tarball lists (install_dist reads them again from each unpacked copy)
mapfile -t E2E_STEPS < <(tar -xzOf "$DIST" hearthminds-bootstrap/bootstrap/steps | awk -F'\t' '!/^(#|$)/ { print $1 }')
# E2E_SCENARIOS picks scenarios (all by default); a run of fewer says so in its summary.
E2E_SCENARIOS=${E2E_SCENARIOS:-main second booted interrupt pointrelease backup}
wants() { [[ " $E2E_SCENARIOS " == *" $1 "* ]]; }
wants main && scenario_main
if wants second && has_step databases; then scenario_second_config; fi
if wants booted && has_step postgres; then scenario_booted; fi
if wants interrupt && has_step migrations; then scenario_interrupt; fi
if wants pointrelease && has_step postgres; then scenario_pointrelease; fi
if wants backup && has_step backup; then scenario_backup; fi

TIMINGS+=("$(printf '  %-34s %7ss' "total" "$(e2e_secs $(($(e2e_now_ms) - TOTAL_T0)))")")
only=""
[ "$E2E_SCENARIOS" = "main second booted interrupt pointrelease backup" ] || only="e2e: only the scenarios $E2E_SCENARIOS ran (E2E_SCENARIOS)"
e2e_finish e2e "$only"
