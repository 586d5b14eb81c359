# shellcheck shell=bash
# The monitoring step's checks (issue 23), and the proof with a real Prometheus: Debian's
# `prometheus` package (its binaries unpacked on this host from `apt-get download`, not
# installed) on loopback scrapes the root's two exporters (the root shares this host's
# network), and its HTTP API must return what the test wrote. Sourced by run.sh.

MON_USER=hearthminds-monitor
MON_TEXTFILES=/var/lib/prometheus/node-exporter
MON_PIDS=()
MON_PROM_DIR=""

# check_monitoring: the account, the role, the files, the textfile metrics of the run.
check_monitoring() {
    check "monitoring: account $MON_USER, shell /usr/sbin/nologin, home /nonexistent" expect_match \
        "^$MON_USER:x:[0-9]+:[0-9]+:HearthMinds monitoring account:/nonexistent:/usr/sbin/nologin\$" \
        grep "^$MON_USER:" "$ROOT/etc/passwd"
    check "monitoring: $MON_USER's password locked" expect_match '^[!*]' \
        sh -c "grep '^$MON_USER:' '$ROOT/etc/shadow' | cut -d: -f2"
    check "monitoring: role $MON_USER: login, no password, member of pg_monitor only" expect_eq "t|f|t|pg_monitor" \
        psql_root postgres postgres "SELECT r.rolcanlogin, r.rolsuper, a.rolpassword IS NULL,
            (SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid)
            FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = '$MON_USER'"
    check "monitoring: pg_stat_statements preloaded and in the postgres database" expect_eq "pg_stat_statements|1" \
        psql_root postgres postgres "SELECT current_setting('shared_preload_libraries'), count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
    check "monitoring: the exporter's queries and drop-in written (root's, 0644)" expect_eq "0:0 644
0:0 644" stat -c '%u:%g %a' "$ROOT/etc/hearthminds/monitoring/postgres-exporter-queries.yaml" \
        "$ROOT/etc/systemd/system/prometheus-postgres-exporter.service.d/hearthminds.conf"
    check "monitoring: the run's textfile says true" grep -qx 'hearthminds_run_success 1' "$ROOT$MON_TEXTFILES/hearthminds_run.prom"
    check "monitoring: each step's textfile says true" sh -c \
        "for s in $(printf '%s ' "${E2E_STEPS[@]}"); do grep -qx \"hearthminds_step_success{step=\\\"\$s\\\"} 1\" '$ROOT$MON_TEXTFILES/hearthminds_step_'\$(echo \$s | tr - _).prom || exit 1; done"
    check "monitoring: every database at head in the schema textfile" sh -c \
        "[ \$(grep -c '^hearthminds_schema_at_head{.*} 1\$' '$ROOT$MON_TEXTFILES/hearthminds_schema.prom') -eq $((1 + ${#CFG_AIS[@]})) ]"
}

# mon_start_exporters PGEXPORTER_PORT NODE_PORT: both exporters started inside the root (no systemd
# there) as their units would run them: the postgres exporter as $MON_USER with the drop-in's
# DATA_SOURCE_NAME and ExecStart (its address moved to a free port), node_exporter as prometheus
# reading the textfile directory.
mon_start_exporters() {
    local dropin="$ROOT/etc/systemd/system/prometheus-postgres-exporter.service.d/hearthminds.conf" dsn exec
    dsn=$(sed -n 's/^Environment="DATA_SOURCE_NAME=\(.*\)"$/\1/p' "$dropin")
    exec=$(sed -n 's/^ExecStart=\(..*\)$/\1/p' "$dropin")
    [ -n "$dsn" ] && [ -n "$exec" ] || { e2e_fail "monitoring: cannot read the exporter's drop-in"; return 1; }
    # shellcheck disable=SC2086 # (the drop-in's ExecStart is a word list, no quotes in it)
    # (each writes its pid in the root's namespace first: monitoring_cleanup ends it by that pid)
    in_root sh -c 'echo $$ >/run/e2e-pg-exporter.pid; exec "$@"' sh setpriv --reuid="$MON_USER" --regid="$MON_USER" \
        --clear-groups env DATA_SOURCE_NAME="$dsn" \
        ${exec/--web.listen-address=127.0.0.1:9187/--web.listen-address=127.0.0.1:$1} >"$WORK/pg-exporter.log" 2>&1 &
    in_root sh -c 'echo $$ >/run/e2e-node-exporter.pid; exec "$@"' sh setpriv --reuid=prometheus --regid=prometheus \
        --clear-groups /usr/bin/prometheus-node-exporter \
        --web.listen-address="127.0.0.1:$2" --collector.textfile.directory="$MON_TEXTFILES" >"$WORK/node-exporter.log" 2>&1 &
}

# mon_query EXPR: the value of Prometheus' instant query EXPR (the first series), or nothing.
mon_query() {
    curl -fsS --max-time 10 -G "http://127.0.0.1:$MON_PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}

# mon_wait_for EXPR WANT: polls Prometheus until EXPR's value is WANT (60 s at most).
mon_wait_for() {
    local i got=""
    for i in $(seq 1 60); do
        got=$(mon_query "$1" 2>/dev/null || true)
        [ "$got" = "$2" ] && return 0
        sleep 1
    done
    echo "$1 = '$got', expected '$2'"
    return 1
}

# The proof: a real Prometheus on loopback scrapes both exporters; promtool checks what they serve
# and the tarball's rules; 1000 rows inserted read 1000; a migration down shows in the revision
# metric; a failed run shows false in the run's textfile.
monitoring_prometheus() {
    local pg_port node_port ai db password body
    ai=${CFG_AIS[0]} db=$(ai_db "${CFG_AIS[0]}")
    MON_PROM_DIR="$WORK/prometheus"
    mkdir -p "$MON_PROM_DIR/deb" && chmod 0755 "$WORK" "$MON_PROM_DIR"
    (cd "$MON_PROM_DIR/deb" && apt-get download -q prometheus >/dev/null 2>&1) || { e2e_fail "monitoring: apt-get download prometheus"; return 0; }
    dpkg-deb -x "$MON_PROM_DIR"/deb/prometheus_*.deb "$MON_PROM_DIR/root" || { e2e_fail "monitoring: cannot unpack prometheus"; return 0; }
    local prom="$MON_PROM_DIR/root/usr/bin/prometheus" promtool="$MON_PROM_DIR/root/usr/bin/promtool"
    pg_port=$(free_port 31900) node_port=$(free_port $((pg_port + 1)))
    MON_PROM_PORT=$(free_port $((node_port + 1)))
    mon_start_exporters "$pg_port" "$node_port"
    cat >"$MON_PROM_DIR/prometheus.yml" <<EOF
global: {scrape_interval: 2s, evaluation_interval: 2s}
rule_files: ["$ROOT$E2E_HM/etc/prometheus/hearthminds-rules.yml"]
scrape_configs:
  - job_name: hearthminds-postgres
    static_configs: [{targets: ["127.0.0.1:$pg_port"]}]
  - job_name: hearthminds-node
    static_configs: [{targets: ["127.0.0.1:$node_port"]}]
EOF
    check "monitoring: the tarball's rules pass promtool check rules" "$promtool" check rules "$ROOT$E2E_HM/etc/prometheus/hearthminds-rules.yml"
    "$prom" --config.file="$MON_PROM_DIR/prometheus.yml" --storage.tsdb.path="$MON_PROM_DIR/data" \
        --web.listen-address="127.0.0.1:$MON_PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
    MON_PIDS+=($!)

    body=""
    for _ in $(seq 1 30); do
        body=$(curl -fsS --max-time 10 "http://127.0.0.1:$pg_port/metrics" 2>/dev/null) && grep -q '^pg_up 1$' <<<"$body" && break
        sleep 1
    done
    printf '%s\n' "$body" >"$WORK/pg-exporter.metrics"
    check "monitoring: the postgres exporter answers as $MON_USER: pg_up 1, no scrape error" sh -c \
        "grep -qx 'pg_up 1' '$WORK/pg-exporter.metrics' && grep -qx 'pg_exporter_last_scrape_error 0' '$WORK/pg-exporter.metrics'"
    check "monitoring: promtool check metrics passes on our families (postgres exporter)" sh -c \
        "grep -E '^(# (HELP|TYPE) )?hearthminds_' '$WORK/pg-exporter.metrics' | '$promtool' check metrics"
    check "monitoring: promtool check metrics passes on the textfile metrics (node_exporter)" sh -c \
        "curl -fsS --max-time 10 http://127.0.0.1:$node_port/metrics | grep -E '^(# (HELP|TYPE) )?hearthminds_' | '$promtool' check metrics"
    check "monitoring: Prometheus scrapes both exporters (up 1 each)" mon_wait_for 'sum(up{job=~"hearthminds-.*"})' 2

    # 1000 rows inserted by the AI: its row metric says 1000.
    password=$(role_password "$ai")
    check "monitoring: $ai inserts 1000 rows into memory_shards" psql_tcp "$ai" "$password" "$db" \
        "INSERT INTO public.memory_shards (content) SELECT 'e2e ' || g FROM generate_series(1, 1000) g"
    check "monitoring: Prometheus says $db's memory_shards holds 1000 rows" \
        mon_wait_for "hearthminds_memory_rows{datname=\"$db\",table=\"memory_shards\"}" 1000

    # A migration down: the revision metric says so (after the monitoring step's run).
    check "monitoring: hm-migrate down --database $db exits 0" \
        in_root "$E2E_HM/bootstrap/bin/hm-migrate" down --database "$db"
    run mon-after-down -- --only monitoring
    check_rc "monitoring: --only monitoring after the down: exits 0" 0
    check "monitoring: Prometheus says $db is not at head" mon_wait_for "hearthminds_schema_at_head{datname=\"$db\"}" 0
    check "monitoring: the rules see it (HearthMindsSchemaBehindHead pending or firing)" \
        mon_wait_for "count(ALERTS{alertname=\"HearthMindsSchemaBehindHead\",datname=\"$db\"})" 1

    # A failed run: the run's textfile says false. (POSTGRES_HOST an address of no interface: the
    # postgres step is false at its first action, before any change.)
    run mon-failed POSTGRES_HOST=192.0.2.1 -- --only postgres
    check_rc "monitoring: a run with POSTGRES_HOST=192.0.2.1 exits 1" 1
    check "monitoring: Prometheus says the last run ended false" mon_wait_for 'hearthminds_run_success' 0
    check "monitoring: ... and names the step" mon_wait_for 'hearthminds_run_failed_step{step="postgres"}' 1

    # Back: the whole run converges (the migration up again), and says true.
    run mon-back
    check_rc "monitoring: the rerun after the failure exits 0" 0
    check "monitoring: Prometheus says the last run ended true" mon_wait_for 'hearthminds_run_success' 1
    check "monitoring: Prometheus says $db is at head again" mon_wait_for "hearthminds_schema_at_head{datname=\"$db\"}" 1
    monitoring_cleanup
}

monitoring_cleanup() {
    local pid f
    for pid in ${MON_PIDS[@]+"${MON_PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${MON_PIDS[@]+"${MON_PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
    MON_PIDS=()
    if [ -n "${ROOT:-}" ] && [ -n "${NS_PID:-}" ]; then
        for f in e2e-pg-exporter e2e-node-exporter; do
            [ -f "$ROOT/run/$f.pid" ] || continue
            in_root kill "$(cat "$ROOT/run/$f.pid")" 2>/dev/null || true
            rm -f "$ROOT/run/$f.pid"
        done
    fi
}

# check_exporters_up LABEL: on a booted root, both units active and enabled, and the postgres
# exporter (its own unit, our drop-in) answers on 127.0.0.1:9187 (the roots share this host's
# network) with pg_up 1 and our metrics; node_exporter on 127.0.0.1:9100 serves the run's textfile.
check_exporters_up() {
    local label=$1 unit
    for unit in prometheus-postgres-exporter prometheus-node-exporter; do
        check "$label: $unit active (systemd)" expect_eq active in_root systemctl is-active "$unit"
        check "$label: $unit enabled" expect_eq enabled in_root systemctl is-enabled "$unit"
    done
    check "$label: the postgres exporter answers on 127.0.0.1:9187 as its unit: pg_up 1, our metrics" mon_scrape_ok 127.0.0.1:9187
    check "$label: node_exporter answers on 127.0.0.1:9100 with the run's textfile" sh -c \
        "curl -fsS --max-time 10 http://127.0.0.1:9100/metrics | grep -q '^hearthminds_run_success '"
}

# mon_scrape_ok ADDRESS: pg_up 1, no scrape error and hearthminds_memory_rows, within 30 s.
mon_scrape_ok() {
    local i
    for i in $(seq 1 30); do
        curl -fsS --max-time 10 -o "$WORK/scrape.$$" "http://$1/metrics" 2>/dev/null &&
            grep -qx 'pg_up 1' "$WORK/scrape.$$" && grep -qx 'pg_exporter_last_scrape_error 0' "$WORK/scrape.$$" &&
            grep -q '^hearthminds_memory_rows{' "$WORK/scrape.$$" && { rm -f "$WORK/scrape.$$"; return 0; }
        sleep 1
    done
    echo "no pg_up 1 with our metrics and no scrape error from $1:"
    grep -E '^(pg_up|pg_exporter_last_scrape_error) ' "$WORK/scrape.$$" 2>/dev/null
    rm -f "$WORK/scrape.$$"
    return 1
}
