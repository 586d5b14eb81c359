# shellcheck shell=bash
# Memories that survive (issue 22; sourced by Tests/e2e/run.sh after interrupt.sh, whose cut_at
# and run_bounded it uses): backups with pgBackRest on real fresh roots.
#
#   root A  ./install.sh cut (kill -9 of every process) in the middle of its first full backup,
#           then one plain rerun converges; an AI writes a row every 10 ms from then on;
#           hm-backup --test-restore passes while it writes; T is noted; the writing goes on;
#           the rows are listed; then the host is destroyed (the namespace killed, the root
#           deleted), its repository and its root-only password files kept
#   root B  a fresh root: the postgres step alone (the packages, a cluster), the repository put
#           back (chown to this root's postgres, as an operator mounting the old disk would),
#           the password files brought back; ./install.sh --restore cut in the middle of the
#           restore, rerun: the newest state (at most the loss window lost: measured), verify
#           true, the vector index answers, the AI logs in with the password it had; then
#           ./install.sh --restore-to T: every row committed before T, none after; a rerun
#           changes nothing; a byte flipped in the repository: --test-restore fails naming the
#           backup.

BK_WRITER_PID=""
BK_KEEP=""

backup_cleanup() {
    if [ -n "$BK_WRITER_PID" ]; then
        kill -- "-$BK_WRITER_PID" 2>/dev/null || true
        wait "$BK_WRITER_PID" 2>/dev/null || true
    fi
    BK_WRITER_PID=""
    [ -n "$BK_KEEP" ] && rm -rf --one-file-system "$BK_KEEP"
    BK_KEEP=""
}

# bk_psql SQL: the first AI's session (a password login from this host, as its application).
bk_psql() { psql_tcp "${CFG_AIS[0]}" "$(role_password "${CFG_AIS[0]}")" "$(ai_db "${CFG_AIS[0]}")" "$1"; }

# bk_writer_start: the first AI writes a row (with an embedding) every 10 ms, each its own
# transaction, through one session, until bk_writer_stop or the host dies under it.
bk_writer_start() {
    local pass="$WORK/writer.pgpass"
    (umask 077 && printf '127.0.0.1:%s:*:%s:%s\n' "$CFG_PORT" "${CFG_AIS[0]}" "$(role_password "${CFG_AIS[0]}")" >"$pass")
    setsid bash -c '
        while :; do
            printf "%s\n" "INSERT INTO public.memory_shards (content, embedding) SELECT '\''written at '\'' || clock_timestamp(), array_fill(random()::real, ARRAY[1536])::vector;"
            sleep 0.01
        done | env -u PGPASSWORD PGPASSFILE="$1" psql -X -q -w -h 127.0.0.1 -p "$2" -U "$3" -d "$4" >/dev/null 2>&1
    ' bk-writer "$pass" "$CFG_PORT" "${CFG_AIS[0]}" "$(ai_db "${CFG_AIS[0]}")" &
    BK_WRITER_PID=$!
}

bk_writer_stop() {
    [ -n "$BK_WRITER_PID" ] || return 0
    kill -- "-$BK_WRITER_PID" 2>/dev/null || true
    wait "$BK_WRITER_PID" 2>/dev/null || true
    BK_WRITER_PID=""
}

# bk_rows: "count max_id max(created_at) as epoch" of the first AI's memory_shards.
bk_rows() {
    bk_psql "SELECT count(*) || ' ' || coalesce(max(id), 0) || ' ' || coalesce(extract(epoch FROM max(created_at)), 0) FROM public.memory_shards"
}

# bk_no_hole MAX_ID: the root holds exactly the rows of root A's list with an id up to MAX_ID.
bk_no_hole() {
    local want got
    want=$(awk -v m="$1" '$1 <= m' "$BK_KEEP/a-rows" | wc -l)
    got=$(bk_psql "SELECT count(*) FROM public.memory_shards WHERE id <= $1")
    [ "$want" = "$got" ] || { echo "root A had $want rows up to id $1, the restore has $got"; return 1; }
}

# bk_none_after T_EPOCH: no restored row was written after T.
bk_none_after() {
    local n
    n=$(bk_psql "SELECT count(*) FROM public.memory_shards WHERE created_at > to_timestamp($1)")
    [ "$n" = 0 ] || { echo "$n rows written after T are in the restore"; return 1; }
}

# bk_all_before T_EPOCH MAX_ID: every row root A had written more than 0.2 s before T is restored.
bk_all_before() {
    local missing
    missing=$(awk -v t="$1" -v m="$2" '$2 < t - 0.2 && $1 > m' "$BK_KEEP/a-rows" | wc -l)
    [ "$missing" = 0 ] || { echo "$missing rows written before T are missing"; return 1; }
}

# bk_index_answers: the vector index serves a k-NN query by cosine distance, its operator class
# (the planner made to use it).
bk_index_answers() {
    local plan n
    plan=$(bk_psql "SET enable_seqscan = off; EXPLAIN SELECT id FROM public.memory_shards ORDER BY embedding <=> (SELECT embedding FROM public.memory_shards ORDER BY id LIMIT 1) LIMIT 5")
    grep -q "Index Scan using memory_shards_embedding" <<<"$plan" || { echo "$plan"; return 1; }
    n=$(bk_psql "SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM public.memory_shards ORDER BY embedding <=> (SELECT embedding FROM public.memory_shards ORDER BY id LIMIT 1) LIMIT 5) k")
    [ "$n" = 5 ] || { echo "the query returned $n rows"; return 1; }
}

bk_backups() { in_root_as postgres pgbackrest --config-path=/etc/pgbackrest/hearthminds/hearthminds --stanza=hearthminds info; }

scenario_backup() {
    local t0 port t_epoch a_last lost rows max_id newest
    t0=$(e2e_now_ms)
    IR_CUT_BOUND=${E2E_CUT_BOUND:-600}
    IR_RUN_BOUND=${E2E_RUN_BOUND:-900}
    port=$(free_port $((E2E_PORT + 7))) || e2e_die "no free port for the backup scenario"
    e2e_log "== backup scenario: pgBackRest on root A, root A destroyed, restored on root B; port $port"
    BK_KEEP=$(mktemp -d "$E2E_WORK_BASE/hearthminds-e2e-backup-keep.XXXXXX")

    # --- root A ---------------------------------------------------------------------------------
    root_create backup-a
    ns_start
    install_dist
    cp "$E2E_DIR/cut.pl" "$ROOT/root/e2e-cut.pl"
    default_config "$port"
    E2E_ENV=(POSTGRES_PORT="$port" BACKUP_LOSS_WINDOW=10)
    IR_FILES_REF="" IR_BROKEN=""
    CUT_INSTALL_ARGS=()
    # The first install, cut while pgBackRest takes the first full backup (0.3 s into it).
    cut_at backup-full backup proc '^pgbackrest$' '^hm-backup$' ' backup' 300
    cut_landed backup-full backup
    check "cut backup-full: pgbackrest (under hm-backup) ran at the cut" procs_at_cut_have pgbackrest
    converges backup-full
    if [ "${IR_BROKEN:-}" ]; then
        e2e_fail "backup: root A did not converge after the cut in its backup: nothing else can be checked"
        root_remove
        backup_cleanup
        return 0
    fi
    check "backup A: the repository holds a full backup (pgbackrest info)" expect_match 'full backup' bk_backups
    check "backup A: the repository is the postgres account's, 0750" expect_eq "postgres 750" \
        in_root stat -c '%U %a' /var/lib/pgbackrest
    check "backup A: pgBackRest's configuration is root's, group postgres, 0640" expect_eq "root postgres 640" \
        in_root stat -c '%U %G %a' /etc/pgbackrest/hearthminds/hearthminds/pgbackrest.conf
    check "backup A: pgBackRest's configuration holds no password" sh -c \
        "! grep -Eqi 'pass|cipher' '$ROOT/etc/pgbackrest/hearthminds/hearthminds/pgbackrest.conf'"

    bk_writer_start
    sleep 3
    check "backup A: the AI is writing (rows arrive every 10 ms)" expect_match '^[1-9][0-9]* ' bk_rows
    check "backup A: hm-backup --test-restore passes while the AI writes" in_root "$E2E_HM/bootstrap/bin/hm-backup" --test-restore
    check "backup A: verify reports the proof" expect_match 'last test restore .* true for backup' \
        in_root "$E2E_HM/bootstrap/bin/hm-verify"
    sleep 2
    t_epoch=$(bk_psql "SELECT extract(epoch FROM clock_timestamp())")
    e2e_note "backup: T = $t_epoch ($(date -u -d "@${t_epoch%.*}" +%FT%TZ))"
    # Writing on past T for longer than the loss window (10 s) and the archiver's delay: the WAL
    # through T is in the repository when the host dies (what came after may be lost with it).
    sleep 16
    # The rows root A has (id, created_at), then the host dies with the AI still writing.
    bk_psql "SELECT id || ' ' || extract(epoch FROM created_at) FROM public.memory_shards ORDER BY id" >"$BK_KEEP/a-rows"
    a_last=$(tail -n 1 "$BK_KEEP/a-rows" | cut -d' ' -f2)
    e2e_note "backup: root A wrote $(wc -l <"$BK_KEEP/a-rows") rows, the last at $a_last; destroyed now"
    ns_stop
    bk_writer_stop
    cp -a "$ROOT/var/lib/pgbackrest" "$BK_KEEP/repo"
    mkdir -p "$BK_KEEP/etc"
    cp -a "$ROOT/etc/hearthminds/pgpass" "$BK_KEEP/etc/pgpass"
    root_remove

    # --- root B: a new machine reaching the same repository ------------------------------------
    root_create backup-b
    ns_start
    install_dist
    cp "$E2E_DIR/cut.pl" "$ROOT/root/e2e-cut.pl"
    run_bounded backup-b-postgres "$IR_RUN_BOUND" -- --only postgres
    check_rc "backup B: ./install.sh --only postgres exits 0" 0
    rm -rf "$ROOT/var/lib/pgbackrest"
    cp -a "$BK_KEEP/repo" "$ROOT/var/lib/pgbackrest"
    in_root chown -R postgres:postgres /var/lib/pgbackrest
    mkdir -p "$ROOT/etc/hearthminds"
    cp -a "$BK_KEEP/etc/pgpass" "$ROOT/etc/hearthminds/pgpass"

    CUT_INSTALL_ARGS=(--restore)
    cut_at backup-restore restore proc '^pgbackrest$' '^hm-restore$' ' restore' 300
    check "cut backup-restore: pgbackrest (under hm-restore) ran at the cut" procs_at_cut_have pgbackrest
    CUT_INSTALL_ARGS=()
    run_bounded backup-b-restore "$IR_RUN_BOUND" -- --restore
    check_rc "backup B: ./install.sh --restore after the cut exits 0" 0
    check "backup B: every step and action of the restore run logged true" log_all_true "$RUN_ID"
    rows=$(bk_rows) || rows="0 0 0"
    read -r _ max_id newest <<<"$rows"
    lost=$(awk -v a="$a_last" -v b="$newest" 'BEGIN { printf "%.2f", a - b }')
    e2e_note "backup: the newest state restored: $rows; lost the last $lost s of writing (loss window 10 s)"
    check "backup B, newest: no row before the last restored one is missing" bk_no_hole "$max_id"
    check "backup B, newest: at most the loss window lost (10 s + 5 s for the archiver; lost $lost s)" \
        awk -v l="$lost" 'BEGIN { exit !(l <= 15) }'
    check "backup B, newest: the vector index answers" bk_index_answers
    check "backup B: the AI logs in with the password it had on root A" expect_eq 1 bk_psql "SELECT 1"
    check "backup B: the data replaced by the restore is kept aside" sh -c "ls -d '$ROOT'/var/lib/postgresql/15/main.before-restore-* >/dev/null"

    run_bounded backup-b-pitr "$IR_RUN_BOUND" -- --restore-to "$(date -u -d "@${t_epoch%.*}" '+%F %T').${t_epoch#*.}+00"
    check_rc "backup B: ./install.sh --restore-to T exits 0" 0
    check "backup B: every step and action of the restore to T logged true" log_all_true "$RUN_ID"
    rows=$(bk_rows) || rows="0 0 0"
    read -r _ max_id newest <<<"$rows"
    e2e_note "backup: restored to T: $rows"
    check "backup B, T: no row written after T" bk_none_after "$t_epoch"
    check "backup B, T: every row written before T is there" bk_all_before "$t_epoch" "$max_id"
    check "backup B, T: no row up to the last restored one is missing" bk_no_hole "$max_id"
    check "backup B, T: the vector index answers" bk_index_answers
    run_bounded backup-b-rerun "$IR_RUN_BOUND"
    check_rc "backup B: a plain rerun exits 0" 0
    run_bounded backup-b-rerun2 "$IR_RUN_BOUND"
    check "backup B: a further rerun changes nothing" log_unchanged "$RUN_ID"

    # A byte flipped in the newest backup's files: the proof fails, naming the backup.
    newest=$(bk_backups | sed -n 's/^ *\(full\|diff\|incr\) backup: \([0-9FDI_-]*\)$/\2/p' | tail -n 1)
    in_root sh -c "f=\$(find /var/lib/pgbackrest/backup/hearthminds/$newest/pg_data/base -type f -size +20k | head -n 1) &&
        printf '\\377\\377\\377\\377' | dd of=\"\$f\" bs=1 seek=200 conv=notrunc 2>/dev/null"
    check "backup B: a damaged repository fails hm-backup --test-restore, naming the backup $newest" \
        expect_refused "$newest" in_root "$E2E_HM/bootstrap/bin/hm-backup" --test-restore
    root_remove
    backup_cleanup
    TIMINGS+=("$(printf '  %-34s %7ss' "backup scenario" "$(e2e_secs $(($(e2e_now_ms) - t0)))")")
}
