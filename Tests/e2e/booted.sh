# shellcheck shell=bash
# The booted scenario (issue 11; sourced by Tests/e2e/run.sh): a fresh root booted with systemd
# as PID 1 (lib.sh's boot_start: the root's own init in a new pid, mount, uts, ipc and cgroup
# namespace, chrooted, container= set), as every real Debian server runs. On it: a fresh
# ./install.sh with no configuration but the port; the cluster running as its systemd unit; a
# reboot (the namespace ended by the init itself, the same root booted again) after which the
# cluster is up by itself, started by postgresql-common's generator from start.conf; the nuclear
# reset and another reboot; no unit failed. Then the faults of a host that boots: the port taken
# while the host boots, the cluster stopped by hand. Every boot, its end and the cluster's
# return are timed.

BOOT_LIMIT_S=60     # a boot that has not finished by then is a failure
CLUSTER_UP_LIMIT_S=30 # the cluster must answer this soon after a boot began

# The cluster's systemd unit, as postgresql-common names it.
cluster_unit() { printf 'postgresql@%s-%s.service\n' "$CFG_PG_VERSION" "$CFG_CLUSTER"; }

# boot_root LABEL: boots ROOT, checks that PID 1 is systemd and that the boot finished, and times it.
boot_root() {
    local label=$1 t0
    t0=$(e2e_now_ms)
    BOOT_T0=$t0
    boot_start
    check "$label: PID 1 of the namespace is the root's systemd" \
        expect_match '^(/usr)?/lib/systemd/systemd$' in_root readlink /proc/1/exe
    boot_wait "$BOOT_LIMIT_S" || true
    BOOT_MS=$(($(e2e_now_ms) - t0))
    e2e_note "$label: systemd says '$BOOT_STATE' after $(e2e_secs "$BOOT_MS")s"
    TIMINGS+=("$(printf '  %-34s %7ss' "$label (systemd up)" "$(e2e_secs "$BOOT_MS")")")
}

# reboot_root LABEL: `systemctl reboot` inside; the namespace must end by the kernel's SIGHUP to its
# init (a reboot), then the same root boots again.
reboot_root() {
    local label=$1 t0
    t0=$(e2e_now_ms)
    boot_end reboot || true
    check "$label: systemctl reboot ends the namespace, its init ended by SIGHUP (exit $BOOT_END_STATUS)" \
        test "$BOOT_END_STATUS" = 129
    TIMINGS+=("$(printf '  %-34s %7ss' "$label: shutdown" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
    boot_root "$label"
}

# unit_state UNIT: what `systemctl is-active` says (it exits non-zero unless "active").
unit_state() { in_root systemctl is-active "$1" || true; }

# system_state: what `systemctl is-system-running` says (it exits non-zero unless "running").
system_state() { in_root systemctl is-system-running || true; }

# cluster_answers: pg_isready from the host on the cluster's port.
cluster_answers() { pg_isready -q -h 127.0.0.1 -p "$CFG_PORT" -t 2; }

# check_cluster_back LABEL: after a boot, the cluster answers by itself within
# CLUSTER_UP_LIMIT_S of the boot's start, started by its unit; nothing failed.
check_cluster_back() {
    local label=$1 up_ms
    if wait_for "$CLUSTER_UP_LIMIT_S" cluster_answers; then
        up_ms=$(($(e2e_now_ms) - BOOT_T0))
        e2e_pass "$label: the cluster answers by itself $(e2e_secs "$up_ms")s after the boot began (limit ${CLUSTER_UP_LIMIT_S}s)"
        TIMINGS+=("$(printf '  %-34s %7ss' "$label: cluster answers" "$(e2e_secs "$up_ms")")")
    else
        e2e_fail "$label: the cluster answers by itself within ${CLUSTER_UP_LIMIT_S}s of the boot" \
            "$(in_root systemctl status --no-pager "$(cluster_unit)" 2>&1 | tail -n 12)"
    fi
    check "$label: postgresql-common's generator wants the cluster (start.conf auto)" \
        in_root test -L "/run/systemd/generator/postgresql.service.wants/$(cluster_unit)"
    check_cluster_unit "$label"
    check_no_failed "$label"
}

# check_cluster_unit LABEL: the cluster runs as its systemd unit: the unit is active and its main
# process is the postmaster of postmaster.pid; the suite enabled no unit (start.conf decides).
check_cluster_unit() {
    local label=$1 unit
    unit=$(cluster_unit)
    check "$label: $unit is active" expect_eq active in_root systemctl is-active "$unit"
    check "$label: the postmaster is the main process of $unit" unit_runs_postmaster
    check "$label: $unit is not enabled by hand (the generator starts it: enabled-runtime)" \
        expect_eq enabled-runtime in_root systemctl is-enabled "$unit"
    check "$label: postgresql.service is enabled (by its package)" \
        expect_eq enabled in_root systemctl is-enabled postgresql.service
}

# unit_runs_postmaster: MainPID of the cluster's unit is the pid in postmaster.pid.
unit_runs_postmaster() {
    local main pid
    main=$(in_root systemctl show --property=MainPID --value "$(cluster_unit)") || return 1
    pid=$(head -n 1 "$ROOT/var/lib/postgresql/$CFG_PG_VERSION/$CFG_CLUSTER/postmaster.pid" 2>/dev/null) || true
    [ -n "$pid" ] && [ "$main" = "$pid" ] || { echo "MainPID $main, postmaster.pid ${pid:-missing}"; return 1; }
}

# check_no_failed LABEL: no unit failed (systemctl --failed), systemd calls the system running,
# and this boot's journal of the cluster's unit has nothing at priority err or worse.
check_no_failed() {
    local label=$1
    check "$label: no unit failed (systemctl --failed)" expect_eq "" \
        in_root systemctl --failed --no-legend --plain --no-pager
    check "$label: systemctl is-system-running: running" expect_eq running system_state
    check "$label: the cluster's journal of this boot has no error" expect_eq "" \
        in_root journalctl -b -q --no-pager -p err -u "$(cluster_unit)"
}

scenario_booted() {
    local t0 port
    t0=$(e2e_now_ms)
    port=$(free_port $((E2E_PORT + 2))) || e2e_die "no free port for the booted scenario"
    e2e_log "== booted scenario: fresh root, systemd as PID 1, POSTGRES_PORT=$port"
    root_create booted "$E2E_BOOTED_TARBALL"
    default_config "$port"
    E2E_ENV=(POSTGRES_PORT="$port")
    installed_packages >"$WORK/packages.before"

    # 1. first boot of a fresh host, then the fresh install
    boot_root "boot 1 (fresh root)"
    check "boot 1: the boot finished: systemd says running (nothing failed)" test "$BOOT_STATE" = running
    install_dist
    run booted-fresh
    check_rc "booted, fresh root: ./install.sh exits 0" 0
    check "booted, fresh root: every step and action logged true" log_all_true "$RUN_ID"
    e2e_note "step times, booted fresh: $(step_times "$RUN_ID")"
    if [ "$RC" -ne 0 ]; then
        e2e_fail "booted scenario: stopped after the failed fresh install (nothing else can be checked)"
        root_remove
        return 0
    fi
    check_host
    check_shipped_pgvector "booted, fresh root" "$RUN_ID"
    check_packages_added "booted, fresh root" "$WORK/packages.before"
    check_cluster_unit "booted, fresh root"
    has_step monitoring && check_exporters_up "booted, fresh root"
    check_no_failed "booted, fresh root"
    run booted-rerun
    check_rc "booted rerun: exits 0" 0
    check "booted rerun: no action changed anything" log_unchanged "$RUN_ID"

    # 2. reboot: the cluster comes back by itself, verified, and a rerun changes nothing
    reboot_root "boot 2 (reboot)"
    check_cluster_back "boot 2"
    has_step monitoring && check_exporters_up "boot 2 (the exporters back by themselves)"
    run booted-verify-2 -- --only verify
    check_rc "boot 2: ./install.sh --only verify exits 0" 0
    run booted-rerun-2
    check_rc "boot 2: ./install.sh exits 0" 0
    check "boot 2: no action changed anything" log_unchanged "$RUN_ID"

    # 3. the nuclear reset on the booted host: a new cluster, started as its unit, verified
    run booted-reset -- --reset --yes --reset-cluster
    check_rc "booted: ./install.sh --reset --yes --reset-cluster exits 0" 0
    check "booted reset: every step after the reset logged true" log_all_true "$RUN_ID"
    check_host
    check_cluster_unit "booted reset"
    check_no_failed "booted reset"

    # 4. reboot again: back by itself, verified
    reboot_root "boot 3 (reboot after the reset)"
    check_cluster_back "boot 3"
    has_step monitoring && check_exporters_up "boot 3"
    run booted-verify-3 -- --only verify
    check_rc "boot 3: ./install.sh --only verify exits 0" 0

    # 5. a fault at boot: another process holds the cluster's port while the host boots (the
    #    roots share this host's network). The unit fails; the suite reports it and, the port
    #    free again, repairs it.
    local t_end
    t_end=$(e2e_now_ms)
    boot_end poweroff || true
    check "poweroff: systemctl poweroff ends the namespace, its init ended by SIGINT (exit $BOOT_END_STATUS)" \
        test "$BOOT_END_STATUS" = 130
    TIMINGS+=("$(printf '  %-34s %7ss' "poweroff" "$(e2e_secs $(($(e2e_now_ms) - t_end)))")")
    listener_start "$CFG_PORT"
    boot_root "boot 4 (port $CFG_PORT taken)"
    check "boot 4, port taken: $(cluster_unit) failed at boot" wait_for 20 in_root systemctl is-failed --quiet "$(cluster_unit)"
    check "boot 4, port taken: systemd says degraded" expect_eq degraded system_state
    run booted-port-taken -- --only verify
    check_rc "boot 4, port taken: ./install.sh --only verify reports it (exits 1)" 1
    run booted-port-taken-install
    check_rc "boot 4, port taken: ./install.sh exits 1" 1
    check "boot 4, port taken: the message names the step" grep -qF "step 'postgres' reported false" "$WORK/booted-port-taken-install.out"
    check "boot 4, port taken: the message says the port is in use (the cluster's log)" \
        grep -qi 'already in use' "$WORK/booted-port-taken-install.out"
    check "boot 4, port taken: the message names the port" grep -qw "$CFG_PORT" "$WORK/booted-port-taken-install.out"
    check "boot 4, port taken: no later step ran" log_steps_only "$RUN_ID" service-user postgres
    listener_stop
    run booted-port-free
    check_rc "boot 4, port free again: ./install.sh exits 0" 0
    check "boot 4, port free again: the postgres step started the cluster (changed)" \
        log_has "$RUN_ID" postgres 'is running' '"changed":true'
    check_cluster_unit "boot 4, repaired"
    check "boot 4, repaired: no unit failed (systemctl --failed)" expect_eq "" \
        in_root systemctl --failed --no-legend --plain --no-pager

    # 6. the cluster stopped by hand (start.conf auto): reported, then started again as its unit
    check "stopped by hand: pg_ctlcluster $CFG_PG_VERSION $CFG_CLUSTER stop exits 0" \
        in_root pg_ctlcluster "$CFG_PG_VERSION" "$CFG_CLUSTER" stop
    check "stopped by hand: $(cluster_unit) is inactive" expect_eq inactive unit_state "$(cluster_unit)"
    run booted-stopped-verify -- --only verify
    check_rc "stopped by hand: ./install.sh --only verify reports it (exits 1)" 1
    run booted-stopped
    check_rc "stopped by hand: ./install.sh exits 0" 0
    check "stopped by hand: the postgres step started the cluster (changed)" \
        log_has "$RUN_ID" postgres 'is running' '"changed":true'
    check_cluster_unit "stopped by hand, repaired"
    run booted-final
    check_rc "booted, final rerun: exits 0" 0
    check "booted, final rerun: no action changed anything" log_unchanged "$RUN_ID"

    root_remove
    TIMINGS+=("$(printf '  %-34s %7ss' "booted scenario" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}
