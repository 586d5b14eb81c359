#!/usr/bin/env bash
# HearthMinds bootstrap: the backup benchmark (issue 22). `sudo make bench-backup`, or
# `sudo bench/backup.sh`. Not part of `make test` or `make bench` (slow: it loads > 2 GiB).
#
# On a Debian 12 machine as root, against a throwaway PostgreSQL 15 cluster of its own
# (pg_createcluster, a unique name hmbenchbackup<pid> on a free port, dropped at the end, also
# on an error or Ctrl-C) with pgvector:
#   1. the data: two AI databases shaped like Migrations/ (memory_shards with a vector(DIM)
#      embedding, text, source and jsonb metadata; raw_conversations; eng_patterns), text made of
#      sentences of English words from this repository's docs (a skewed draw: compressible as
#      prose is, not repeated), clustered synthetic vectors (200 centroids plus two noise terms),
#      the IVFFlat index as the vector-index step trains it (lists = rows / 1000), VACUUM FREEZE;
#   2. side by side in one run: pgBackRest full backups with the settings of the backup step
#      (stanza hearthminds, repo1-retention-full 2, start-fast, archive_command archive-push,
#      archive_timeout 60 s, as the postgres account) for each compress-type (zst level 3, lz4,
#      none) and process-max (1, 2), against pg_basebackup -Ft (and -z, --compress=lz4,
#      --compress=zstd) of the same cluster: wall time, MiB/s, CPU (the tool's processes, and the
#      server's), the repository's (or the tarballs') size against the data's; each restored into
#      a new data directory and started: the time until it accepts connections, and until it is
#      promoted (read-write);
#   3. the loss window: a writer (pgbench) commits a row every 10 ms; kill -9 of every server
#      process, the data directory deleted, `pgbackrest restore` of the newest state into it,
#      started: the span between the writer's last acknowledged commit and the newest row
#      restored, in seconds, for kills at several points of the archive_timeout cycle.
# The section goes to the console and into bench/RESULTS.md (its "Backup" section, replaced or
# appended; bench/run.sh keeps it).
#
# The host's own /etc/pgbackrest.conf, /var/lib/pgbackrest, /var/log/pgbackrest and
# /tmp/pgbackrest are never used: the configuration, repository, log, lock and spool paths are
# the bench's own under its work directory, passed with --config. pgbackrest, lz4 and zstd are
# installed with apt-get when missing.
#
# Environment: BENCH_BACKUP_SHARDS (memory_shards rows per AI database, 125000; the default makes
# > 2 GiB), BENCH_BACKUP_CONVERSATIONS (raw_conversations rows per AI database, 60000),
# BENCH_BACKUP_DIM (embedding width, 768), BENCH_BACKUP_LOSS_AT (seconds the writer runs before
# each kill, "45 100 130"), BENCH_BACKUP_PGBACKREST ("none:1 lz4:1 zst:2 none:2 lz4:2 zst:1";
# the last one listed is also the newest backup of the loss window), BENCH_BACKUP_BASEBACKUP
# ("plain gzip lz4 zstd"), BENCH_PORT (first port tried, 55900), BENCH_KEEP=1 (keep the work
# directory and the cluster), BENCH_RESULTS (the results file, bench/RESULTS.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
SHARDS=${BENCH_BACKUP_SHARDS:-125000}
CONVERSATIONS=${BENCH_BACKUP_CONVERSATIONS:-60000}
DIM=${BENCH_BACKUP_DIM:-768}
LOSS_AT=${BENCH_BACKUP_LOSS_AT:-"45 100 130"}
PGBR_CONFIGS=${BENCH_BACKUP_PGBACKREST:-"none:1 lz4:1 zst:2 none:2 lz4:2 zst:1"}
BB_CONFIGS=${BENCH_BACKUP_BASEBACKUP:-"plain gzip lz4 zstd"}
OUTPUT=${BENCH_RESULTS:-$HERE/RESULTS.md}
PG_VERSION=15
PGBIN=/usr/lib/postgresql/$PG_VERSION/bin
SOCKET=/var/run/postgresql
CLUSTER=hmbenchbackup$$
STANZA=hearthminds
AIS="logos aletheia"

say() { printf '%s\n' "$*"; }
die() { printf 'bench-backup: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (sudo make bench-backup): it makes a cluster and runs as postgres"
for tool in pg_createcluster pg_dropcluster pg_lsclusters pg_ctlcluster psql python3 ss tar runuser; do
    command -v "$tool" >/dev/null || die "$tool is missing (sudo make setup installs PostgreSQL 15 and the tools)"
done
[ -x "$PGBIN/pg_basebackup" ] && [ -x "$PGBIN/pgbench" ] && [ -x "$PGBIN/pg_ctl" ] ||
    die "PostgreSQL $PG_VERSION's pg_basebackup, pgbench, pg_ctl are missing (sudo make setup)"
[ -f /usr/share/postgresql/$PG_VERSION/extension/vector.control ] ||
    die "pgvector is not installed for PostgreSQL $PG_VERSION (sudo make setup)"
for c in $PGBR_CONFIGS; do
    case $c in zst:[12] | lz4:[12] | none:[12]) ;; *) die "BENCH_BACKUP_PGBACKREST: '$c' is not TYPE:PROCESSES (zst, lz4, none; 1 or 2)" ;; esac
done
for c in $BB_CONFIGS; do
    case $c in plain | gzip | lz4 | zstd) ;; *) die "BENCH_BACKUP_BASEBACKUP: '$c' is not plain, gzip, lz4 or zstd" ;; esac
done
for v in "$SHARDS" "$CONVERSATIONS" "$DIM" $LOSS_AT; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "'$v': a positive whole number expected (BENCH_BACKUP_*)"
done

# ---------------------------------------------------------------- packages
missing=
command -v pgbackrest >/dev/null || missing="$missing pgbackrest"
command -v lz4 >/dev/null || missing="$missing lz4"
command -v zstd >/dev/null || missing="$missing zstd"
if [ -n "$missing" ]; then
    say "== bench-backup: apt-get install$missing"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null ||
        die "apt-get install$missing failed"
fi

WORK=$(mktemp -d /var/tmp/hm-bench-backup.XXXXXX)
chmod 0755 "$WORK"
OUT=$WORK/out.log
: >"$OUT"
RESTORE_PIDS=()

cleanup() {
    local rc=$?
    set +e
    trap '' PIPE # the console may be gone (a pipe to tail, killed): the cleanup goes on
    [ -n "${WRITER_PID:-}" ] && kill "$WRITER_PID" 2>/dev/null
    # A restored copy still running (its own pg_ctl, data directory under $WORK).
    for d in "$WORK"/restore-*; do
        [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate stop >>"$OUT" 2>&1
    done
    if [ "${BENCH_KEEP:-0}" != 1 ] &&
        pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$PG_VERSION/$CLUSTER"; then
        pg_dropcluster --stop "$PG_VERSION" "$CLUSTER" >>"$OUT" 2>&1
    fi
    # pg_dropcluster leaves the configuration directory when conf.d holds a file of ours.
    if [ "${BENCH_KEEP:-0}" != 1 ] && [ -n "${CONF:-}" ] && [ ! -e "$DATA" ]; then
        rm -f "$CONF/conf.d/hm-bench-load.conf" "$CONF/conf.d/hm-bench-backup.conf"
        rmdir "$CONF/conf.d" "$CONF" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ]; then
        say "bench-backup: failed (exit $rc); the last output:" >&2
        tail -n 30 "$OUT" >&2
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "bench-backup: kept $WORK (cluster $PG_VERSION/$CLUSTER)"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # FIRST
    local port=$1 used
    used=$( { ss -Htan | awk '{print $4}' | sed 's/.*://'; pg_lsclusters -h | awk '{print $3}'; } | sort -u)
    while grep -qx "$port" <<<"$used"; do port=$((port + 1)); done
    echo "$port"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }
# psql as postgres (peer), script on stdin or -c.
pg() {
    local db=$1
    shift
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKET" -p "$PORT" -d "$db" "$@"
}
# measure FILE CMD...: runs CMD (output to the work log; a failure ends the bench) and writes
# "wall_s user_s sys_s" to FILE: the wall time, and the CPU of CMD and every process it waited for.
measure() {
    local file=$1
    shift
    python3 - "$file" "$@" >>"$OUT" 2>&1 <<'PY' || { say "bench-backup: command failed: ${*}" >&2; exit 1; }
import resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.call(sys.argv[2:])
t1 = time.monotonic()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write("%.3f %.3f %.3f\n" % (t1 - t0, ru.ru_utime, ru.ru_stime))
sys.exit(rc)
PY
}
# The CPU seconds of a server's whole process tree so far: the postmaster and its children, each
# with the children it reaped (an exited backend or walsender is in the postmaster's).
server_cpu() { # DATADIR
    local pm
    pm=$(head -n 1 "$1/postmaster.pid")
    { echo "$pm"; ps -o pid= --ppid "$pm"; } | while read -r p; do
        [ -r "/proc/$p/stat" ] && sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null
    done | awk -v hz="$(getconf CLK_TCK)" '{ s += $12 + $13 + $14 + $15 } END { printf "%.3f\n", s / hz }'
}

PORT=$(free_port "${BENCH_PORT:-55900}")
DATA=/var/lib/postgresql/$PG_VERSION/$CLUSTER
CONF=/etc/postgresql/$PG_VERSION/$CLUSTER
COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
LOAD_START=$(load)
say "== bench-backup: cluster $PG_VERSION/$CLUSTER on port $PORT (work directory $WORK); load average $LOAD_START"

# ---------------------------------------------------------------- the cluster and the data
pg_createcluster "$PG_VERSION" "$CLUSTER" -p "$PORT" >>"$OUT" 2>&1 || die "pg_createcluster failed"
cat >"$CONF/conf.d/hm-bench-load.conf" <<EOF
# bench/backup.sh, while loading: no archiving yet
wal_level = replica
max_wal_size = 8GB
maintenance_work_mem = 512MB
EOF
pg_ctlcluster "$PG_VERSION" "$CLUSTER" start >>"$OUT" 2>&1 || die "the cluster did not start"

# Words: this repository's own prose (README and docs/), lower-cased; a skewed draw (the square
# of a uniform) makes the frequent words frequent, as in prose.
WORDS=$WORK/words.txt
cat "$REPO/README.md" "$REPO"/docs/*.md | tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | awk 'length($0) > 0' | sort | uniq -c | sort -rn | awk '{print $2}' >"$WORDS"
NWORDS=$(wc -l <"$WORDS")
[ "$NWORDS" -gt 500 ] || die "too few words in README.md and docs/ ($NWORDS)"
# 200000 sentences of 6-22 words, most frequent words first in the list.
SENTENCES=$WORK/sentences.tsv
awk -v seed=22 'BEGIN { srand(seed) } { w[NR - 1] = $0 } END {
    n = NR
    for (i = 0; i < 200000; i++) {
        k = 6 + int(rand() * 17); s = ""
        for (j = 0; j < k; j++) { x = rand(); s = s (j ? " " : "") w[int(x * x * x * n)] }
        printf "%d\t%s%s.\n", i, toupper(substr(s, 1, 1)), substr(s, 2)
    }
}' "$WORDS" >"$SENTENCES"
chmod 0644 "$SENTENCES"
NSENT=200000

schema_sql() {
    cat <<EOF
CREATE EXTENSION IF NOT EXISTS vector;
-- Migrations/ 0001, 0004, 0005, 0006 (EMBEDDING_DIM $DIM); the IVFFlat index after the load, as
-- the vector-index step trains it
CREATE TABLE memory_shards (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    content text NOT NULL,
    embedding vector($DIM),
    created_at timestamptz NOT NULL DEFAULT now(),
    source text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE TABLE raw_conversations (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source text,
    request jsonb NOT NULL,
    response jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX raw_conversations_created_at_idx ON raw_conversations (created_at);
CREATE TABLE eng_patterns (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    content text NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    embedding vector($DIM),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX eng_patterns_tags_idx ON eng_patterns USING gin (tags);
EOF
}

# The load of one AI database: sentences, centroids and noise, then the three tables.
load_sql() { # SEED
    cat <<EOF
SET maintenance_work_mem = '512MB';
SELECT setseed(0.$1);
CREATE UNLOGGED TABLE bench_sentences (i int PRIMARY KEY, s text NOT NULL);
\copy bench_sentences FROM '$SENTENCES'
-- 200 centroids, two noise tables (4093 and 4091 rows, coprime): every id its own vector
CREATE UNLOGGED TABLE bench_centroids AS
SELECT c AS i, (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, $DIM) WHERE c >= 0)::vector($DIM) AS v
FROM generate_series(0, 199) c;
CREATE UNLOGGED TABLE bench_noise_a AS
SELECT c AS i, (SELECT array_agg((random() - 0.5) * 0.3) FROM generate_series(1, $DIM) WHERE c >= 0)::vector($DIM) AS v
FROM generate_series(0, 4092) c;
CREATE UNLOGGED TABLE bench_noise_b AS
SELECT c AS i, (SELECT array_agg((random() - 0.5) * 0.1) FROM generate_series(1, $DIM) WHERE c >= 0)::vector($DIM) AS v
FROM generate_series(0, 4090) c;
ALTER TABLE bench_centroids ADD PRIMARY KEY (i);
ALTER TABLE bench_noise_a ADD PRIMARY KEY (i);
ALTER TABLE bench_noise_b ADD PRIMARY KEY (i);
CREATE FUNCTION pg_temp.para(id bigint, salt int, n int) RETURNS text LANGUAGE sql STABLE AS \$\$
    SELECT string_agg(s.s, ' ' ORDER BY j)
    FROM generate_series(1, n) j
    JOIN bench_sentences s ON s.i = abs(hashint8(id * 64 + salt * 16 + j)) % $NSENT
\$\$;
CREATE FUNCTION pg_temp.vec(id bigint) RETURNS vector LANGUAGE sql STABLE AS \$\$
    SELECT c.v + a.v + b.v FROM bench_centroids c, bench_noise_a a, bench_noise_b b
    WHERE c.i = abs(hashint8(id)) % 200 AND a.i = id % 4093 AND b.i = (id * 7) % 4091
\$\$;
INSERT INTO memory_shards (content, embedding, created_at, source, metadata)
SELECT pg_temp.para(g, 1, 4 + (g % 11)::int), pg_temp.vec(g),
       now() - make_interval(secs => ($SHARDS - g) * 60),
       (ARRAY['conversation', 'reflection', 'document', 'observation'])[1 + g % 4],
       jsonb_build_object('session', g / 40, 'importance', round((random() * 10)::numeric, 2),
                          'tags', jsonb_build_array('t' || (g % 37), 't' || (g % 101)))
FROM generate_series(1, $SHARDS) g;
INSERT INTO raw_conversations (source, request, response, metadata, created_at)
SELECT 'api',
       jsonb_build_object('model', 'local-7b', 'temperature', 0.7, 'messages', jsonb_build_array(
           jsonb_build_object('role', 'system', 'content', pg_temp.para(g, 2, 1)),
           jsonb_build_object('role', 'user', 'content', pg_temp.para(g, 3, 2 + (g % 4)::int)))),
       jsonb_build_object('content', pg_temp.para(g, 4, 3 + (g % 7)::int),
                          'usage', jsonb_build_object('prompt_tokens', 40 + g % 300, 'completion_tokens', 60 + g % 500)),
       jsonb_build_object('latency_ms', (random() * 2000)::int),
       now() - make_interval(secs => ($CONVERSATIONS - g) * 90)
FROM generate_series(1, $CONVERSATIONS) g;
INSERT INTO eng_patterns (name, content, tags, embedding)
SELECT 'pattern-' || g, pg_temp.para(g, 5, 5 + (g % 6)::int),
       ARRAY['t' || (g % 13), 't' || (g % 29), 'engineering'], pg_temp.vec(g + 1000000)
FROM generate_series(1, 500) g;
DROP TABLE bench_sentences, bench_centroids, bench_noise_a, bench_noise_b;
-- the vector-index step's trained index: lists = rows / 1000 (auto)
CREATE INDEX memory_shards_embedding_ivfflat_idx ON memory_shards
    USING ivfflat (embedding vector_cosine_ops) WITH (lists = $(( SHARDS / 1000 > 0 ? SHARDS / 1000 : 1 )));
VACUUM (FREEZE, ANALYZE);
EOF
}

say "== bench-backup: loading $SHARDS memory_shards ($DIM dimensions) and $CONVERSATIONS raw_conversations into each of: $AIS"
t0=$(now)
pids=()
seed=1
for ai in $AIS; do
    pg postgres -c "CREATE ROLE $ai LOGIN" -c "CREATE DATABASE ${ai}_db OWNER $ai" >>"$OUT" 2>&1
    schema_sql | pg "${ai}_db" >>"$OUT" 2>&1
    pg "${ai}_db" -c "GRANT ALL ON ALL TABLES IN SCHEMA public TO $ai" >>"$OUT" 2>&1
    load_sql "$seed" | pg "${ai}_db" >>"$WORK/load-$ai.log" 2>&1 &
    pids+=($!)
    seed=$((seed + 1))
done
for p in "${pids[@]}"; do wait "$p" || { cat "$WORK"/load-*.log >>"$OUT"; die "the load failed"; }; done
pg postgres -c "CHECKPOINT" >>"$OUT" 2>&1
LOAD_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')

# What was loaded: rows and sizes per table (heap with its TOAST, indexes), the databases, the
# data directory without pg_wal.
STATS=$WORK/stats.txt
: >"$STATS"
for ai in $AIS; do
    pg "${ai}_db" -At -F' ' >>"$STATS" <<'SQL'
SELECT current_database(), c.relname, c.reltuples::bigint,
       pg_table_size(c.oid), pg_indexes_size(c.oid),
       coalesce((SELECT avg(octet_length(content))::int FROM memory_shards WHERE c.relname = 'memory_shards'), 0)
FROM pg_class c WHERE c.relname IN ('memory_shards', 'raw_conversations', 'eng_patterns') AND c.relnamespace = 'public'::regnamespace
ORDER BY 2;
SQL
done
DB_BYTES=$(pg postgres -At -c "SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname LIKE '%\_db'")
ALL_DB_BYTES=$(pg postgres -At -c "SELECT sum(pg_database_size(datname)) FROM pg_database")
DATA_BYTES=$(du -sb --exclude=pg_wal "$DATA" | cut -f1)
IVF_BYTES=$(for ai in $AIS; do pg "${ai}_db" -At -c "SELECT pg_relation_size('memory_shards_embedding_ivfflat_idx')"; done | awk '{ s += $1 } END { print s }')
say "   loaded in ${LOAD_S} s: AI databases $(gib "$DB_BYTES") GiB, data directory (without pg_wal) $(gib "$DATA_BYTES") GiB"
awk -v b="$DB_BYTES" 'BEGIN { exit !(b >= 2147483648) }' ||
    say "   warning: the AI databases hold less than 2 GiB (BENCH_BACKUP_SHARDS=$SHARDS)"

# ---------------------------------------------------------------- pgBackRest, as the backup step configures it
PGBR=$WORK/pgbackrest
REPO1=$WORK/repo
install -d -o postgres -g postgres -m 0750 "$PGBR" "$PGBR/log" "$PGBR/lock" "$PGBR/spool" "$REPO1"
PGBR_CONF=$PGBR/pgbackrest.conf
cat >"$PGBR_CONF" <<EOF
# bench/backup.sh: the backup step's settings, every path the bench's own
[global]
repo1-path=$REPO1
repo1-retention-full=2
compress-type=zst
start-fast=y
log-path=$PGBR/log
lock-path=$PGBR/lock
spool-path=$PGBR/spool
log-level-console=warn
log-level-file=info

[$STANZA]
pg1-path=$DATA
pg1-port=$PORT
pg1-socket-path=$SOCKET
EOF
chown postgres:postgres "$PGBR_CONF"
chmod 0640 "$PGBR_CONF"
pgbr() { runuser -u postgres -- pgbackrest --config="$PGBR_CONF" --stanza="$STANZA" "$@"; }

rm -f "$CONF/conf.d/hm-bench-load.conf"
cat >"$CONF/conf.d/hm-bench-backup.conf" <<EOF
# bench/backup.sh: archiving as the backup step configures it
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --config=$PGBR_CONF --stanza=$STANZA archive-push %p'
archive_timeout = 60s
max_wal_size = 4GB
EOF
pg_ctlcluster "$PG_VERSION" "$CLUSTER" restart >>"$OUT" 2>&1 || die "the cluster did not restart with archiving"
pgbr stanza-create >>"$OUT" 2>&1 || die "pgbackrest stanza-create failed"
pgbr check >>"$OUT" 2>&1 || die "pgbackrest check failed"

# ---------------------------------------------------------------- restoring and starting a copy
RPORT=$(free_port $((PORT + 1)))
install -d -o postgres -g postgres -m 0755 "$WORK/sock" "$WORK/copylog"
# The copy's own postgresql.conf and pg_hba.conf (a Debian cluster keeps them in /etc, so no
# backup holds them): another port, a socket of its own, no archiving.
copy_conf() { # DIR
    cat >"$1/postgresql.conf" <<EOF
port = $RPORT
listen_addresses = ''
unix_socket_directories = '$WORK/sock'
archive_mode = off
max_wal_size = 4GB
EOF
    echo 'local all postgres peer' >"$1/pg_hba.conf"
    : >"$1/pg_ident.conf"
    chown postgres:postgres "$1/postgresql.conf" "$1/pg_hba.conf" "$1/pg_ident.conf"
}
# start_copy DIR FILE: starts the copy, writes "accepting_s promoted_s" (from now) to FILE.
start_copy() {
    local dir=$1 t0 ready='' up=''
    t0=$(now)
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" -l "$WORK/copylog/$(basename "$dir").log" -W start >>"$OUT" 2>&1 ||
        die "the copy in $dir did not start"
    while :; do
        # pg_ctl status: 3 when no server runs (after a second: the postmaster has written its pid)
        if awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 1) }' &&
            ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
            tail -n 20 "$WORK/copylog/$(basename "$dir").log" >>"$OUT"
            die "the copy in $dir stopped"
        fi
        if [ -z "$ready" ] && runuser -u postgres -- "$PGBIN/pg_isready" -q -h "$WORK/sock" -p "$RPORT"; then ready=$(now); fi
        if [ -n "$ready" ] && [ "$(runuser -u postgres -- psql -X -At -h "$WORK/sock" -p "$RPORT" -d postgres -c 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ]; then
            up=$(now)
            break
        fi
        awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 600) }' && { tail -n 20 "$WORK/copylog/$(basename "$dir").log" >>"$OUT"; die "the copy in $dir was not up after 600 s"; }
        sleep 0.05
    done
    awk -v a="$t0" -v r="$ready" -v u="$up" 'BEGIN { printf "%.3f %.3f\n", r - a, u - a }' >"$2"
}
# check_copy: the restored copy holds what the cluster holds (rows of every table of each AI).
EXPECTED=$WORK/expected.txt
counts() { # PSQL-ARGS...
    local ai
    for ai in $AIS; do
        "$@" -d "${ai}_db" -X -At -c "SELECT (SELECT count(*) FROM memory_shards), (SELECT count(*) FROM raw_conversations), (SELECT count(*) FROM eng_patterns), (SELECT count(*) FROM (SELECT id FROM memory_shards ORDER BY embedding <=> (SELECT embedding FROM memory_shards WHERE id = 7) LIMIT 5) n)"
    done
}
counts runuser -u postgres -- psql -h "$SOCKET" -p "$PORT" >"$EXPECTED"
check_copy() {
    counts runuser -u postgres -- psql -h "$WORK/sock" -p "$RPORT" >"$WORK/got.txt" 2>>"$OUT"
    cmp -s "$EXPECTED" "$WORK/got.txt" || { diff "$EXPECTED" "$WORK/got.txt" >>"$OUT"; die "the restored copy ($1) does not hold the cluster's rows"; }
}
stop_copy() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$1" -m fast -w stop >>"$OUT" 2>&1; rm -rf "$1"; }
new_dir() { rm -rf "$1"; install -d -o postgres -g postgres -m 0700 "$1"; }

# ---------------------------------------------------------------- the backups, side by side
ROWS=$WORK/rows.txt # tool|setting|wall|user|sys|server|bytes|restore_wall|accepting|promoted|restore_cpu
: >"$ROWS"
bench_pgbackrest() { # TYPE PROCESSES
    local type=$1 pm=$2 s0 s1 label bytes size dir=$WORK/restore-pgbr level=()
    # Each type at pgBackRest's default level, named: zst 3, lz4 1 (lz4 at 3 or more is LZ4 HC,
    # several times the CPU: compress-level must not be set for every type at once).
    case $type in zst) level=(--compress-level=3) ;; lz4) level=(--compress-level=1) ;; esac
    say "== bench-backup: pgBackRest full backup, compress-type $type, process-max $pm"
    s0=$(server_cpu "$DATA")
    measure "$WORK/m" runuser -u postgres -- pgbackrest --config="$PGBR_CONF" --stanza="$STANZA" \
        --type=full --compress-type="$type" "${level[@]}" --process-max="$pm" backup
    s1=$(server_cpu "$DATA")
    read -r wall user sys <"$WORK/m"
    # The newest backup: its label, the data's size and the repository's (the set's files).
    pgbr --output=json info >"$WORK/info.json"
    read -r label size bytes < <(python3 -c 'import json, sys
b = json.load(open(sys.argv[1]))[0]["backup"][-1]
print(b["label"], b["info"]["size"], b["info"]["repository"]["size"])' "$WORK/info.json")
    SOURCE_BYTES=$size
    say "   $label: ${wall} s, data $(mib "$size") MiB, repository $(mib "$bytes") MiB"
    new_dir "$dir"
    measure "$WORK/r" runuser -u postgres -- pgbackrest --config="$PGBR_CONF" --stanza="$STANZA" \
        --pg1-path="$dir" --set="$label" --type=immediate --target-action=promote --archive-mode=off \
        --process-max="$pm" restore
    copy_conf "$dir"
    start_copy "$dir" "$WORK/s"
    read -r rwall ruser rsys <"$WORK/r"
    read -r acc prom <"$WORK/s"
    check_copy "pgBackRest $type/$pm"
    stop_copy "$dir"
    say "   restore ${rwall} s, start: accepting ${acc} s, promoted ${prom} s"
    echo "pgbackrest|compress-type $type, process-max $pm|$wall|$user|$sys|$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.1f", b - a }')|$bytes|$rwall|$acc|$prom|$(awk -v u="$ruser" -v s="$rsys" 'BEGIN { printf "%.1f", u + s }')" >>"$ROWS"
}
bench_basebackup() { # plain|gzip|lz4|zstd
    local kind=$1 s0 s1 bytes dir=$WORK/restore-bb out=$WORK/basebackup f args
    case $kind in
        plain) args=(-Ft) ;;
        gzip) args=(-Ft -z) ;;
        lz4) args=(-Ft --compress=client-lz4) ;;
        zstd) args=(-Ft --compress=client-zstd) ;;
    esac
    say "== bench-backup: pg_basebackup ${args[*]}"
    rm -rf "$out"
    install -d -o postgres -g postgres -m 0700 "$out"
    s0=$(server_cpu "$DATA")
    measure "$WORK/m" runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$SOCKET" -p "$PORT" -D "$out" \
        -X stream -c fast "${args[@]}"
    s1=$(server_cpu "$DATA")
    read -r wall user sys <"$WORK/m"
    bytes=$(du -sb "$out" | cut -f1)
    say "   ${wall} s, $(mib "$bytes") MiB ($(cd "$out" && ls | tr '\n' ' '))"
    # The restore: every tarball unpacked into a new data directory (pg_wal.tar* into pg_wal).
    new_dir "$dir"
    cat >"$WORK/unpack.sh" <<EOF
set -eu
cd "$out"
for f in *; do
    case \$f in pg_wal.*) to="$dir/pg_wal" ;; *) to="$dir" ;; esac
    mkdir -p "\$to"
    case \$f in
        *.tar) tar -xf "\$f" -C "\$to" ;;
        *.tar.gz) tar -xzf "\$f" -C "\$to" ;;
        *.tar.lz4) lz4 -dc "\$f" | tar -xf - -C "\$to" ;;
        *.tar.zst) zstd -dcq "\$f" | tar -xf - -C "\$to" ;;
        backup_manifest) ;;
        *) echo "unknown file \$f"; exit 1 ;;
    esac
done
EOF
    measure "$WORK/r" runuser -u postgres -- bash "$WORK/unpack.sh"
    copy_conf "$dir"
    start_copy "$dir" "$WORK/s"
    read -r rwall ruser rsys <"$WORK/r"
    read -r acc prom <"$WORK/s"
    check_copy "pg_basebackup $kind"
    stop_copy "$dir"
    rm -rf "$out"
    say "   restore (unpack) ${rwall} s, start: accepting ${acc} s, promoted ${prom} s"
    echo "pg_basebackup|${args[*]}|$wall|$user|$sys|$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.1f", b - a }')|$bytes|$rwall|$acc|$prom|$(awk -v u="$ruser" -v s="$rsys" 'BEGIN { printf "%.1f", u + s }')" >>"$ROWS"
}

LOAD_BACKUPS=$(load)
# Interleaved: a pgBackRest run, then a pg_basebackup run, ... (neither always meets the machine
# in the same state); the last pgBackRest configuration listed is the newest backup after.
pg_list=($PGBR_CONFIGS)
bb_list=($BB_CONFIGS)
i=0
while [ "$i" -lt "${#pg_list[@]}" ] || [ "$i" -lt "${#bb_list[@]}" ]; do
    if [ "$i" -lt "${#pg_list[@]}" ]; then bench_pgbackrest "${pg_list[$i]%%:*}" "${pg_list[$i]##*:}"; fi
    if [ "$i" -lt "${#bb_list[@]}" ]; then bench_basebackup "${bb_list[$i]}"; fi
    i=$((i + 1))
done
LOAD_BACKUPS_END=$(load)

# ---------------------------------------------------------------- the loss window
say "== bench-backup: the loss window (archive_timeout 60 s; kills after $LOSS_AT s of writing)"
WRITER_DB=logos_db
pg "$WRITER_DB" -c "CREATE TABLE bench_writes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, trial int NOT NULL, ts timestamptz NOT NULL DEFAULT clock_timestamp())" >>"$OUT" 2>&1
# The table into the archive before any trial (pgbackrest check switches the WAL segment and
# waits for its archiving): a trial measures the loss of the writer's rows, not of the table.
pgbr check >>"$OUT" 2>&1 || die "pgbackrest check failed"
LOSS=$WORK/loss.txt # trial|run_s|acked|restored|lost_rows|lost_s|gap_ok|restore_s|rate
: >"$LOSS"
trial=0
for at in $LOSS_AT; do
    trial=$((trial + 1))
    wdir=$WORK/writer-$trial
    install -d -o postgres -g postgres -m 0755 "$wdir"
    printf 'INSERT INTO bench_writes (trial) VALUES (%d);\n\\sleep 10 ms\n' "$trial" >"$wdir/writer.sql"
    # One client, one row a transaction, 10 ms apart; -l: each acknowledged commit's time.
    (cd "$wdir" && exec runuser -u postgres -- "$PGBIN/pgbench" -n -h "$SOCKET" -p "$PORT" -c 1 -T 3600 \
        -f "$wdir/writer.sql" -l --log-prefix="$wdir/log" "$WRITER_DB") >"$wdir/pgbench.out" 2>&1 &
    WRITER_PID=$!
    sleep "$at"
    # kill -9 every process of the server at once, then the data directory is lost.
    pm=$(head -n 1 "$DATA/postmaster.pid")
    kill_t=$(now)
    kill -9 "$pm" $(ps -o pid= --ppid "$pm") 2>/dev/null || true
    wait "$WRITER_PID" || true
    WRITER_PID=
    # Wait for the last of the server's processes to be gone (kill -9 is asynchronous).
    for _ in $(seq 100); do kill -0 "$pm" 2>/dev/null || break; sleep 0.1; done
    find "$DATA" -mindepth 1 -delete
    say "   trial $trial: killed after ${at} s of writing; the data directory deleted"
    t0=$(now)
    pgbr restore >>"$OUT" 2>&1 || die "pgbackrest restore (newest state) failed"
    pg_ctlcluster "$PG_VERSION" "$CLUSTER" start >>"$OUT" 2>&1 || die "the restored cluster did not start"
    for _ in $(seq 6000); do
        [ "$(pg postgres -At -c 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ] && break
        sleep 0.1
    done
    restore_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    # PostgreSQL 15 after a promotion: the checkpointer computed its sleep while recovery was
    # still in progress (checkpoint_timeout, 5 min, without archive_timeout), so the first
    # archive_timeout switch comes only when it next wakes. A CHECKPOINT wakes it: archive_timeout
    # holds from here (the next trial's writer runs on this cluster).
    pg postgres -c CHECKPOINT >>"$OUT" 2>&1
    read -r restored newest first last < <(pg "$WRITER_DB" -At -F' ' -c "SELECT count(*), coalesce(extract(epoch FROM max(ts)), 0), coalesce(min(id), 0), coalesce(max(id), 0) FROM bench_writes WHERE trial = $trial")
    # The writer's log: client tx time script epoch us; failed transactions are not numbers.
    cat "$wdir"/log* >"$wdir/all.log" 2>/dev/null || : >"$wdir/all.log"
    read -r acked last_ack first_ack < <(awk '$3 ~ /^[0-9]+$/ { n++; t = $5 + $6 / 1e6; if (t > m) m = t; if (!f || t < f) f = t } END { printf "%d %.6f %.6f\n", n, m, f }' "$wdir/all.log")
    [ "$acked" -gt 0 ] || { cat "$wdir/pgbench.out" >>"$OUT"; die "the writer of trial $trial acknowledged nothing"; }
    # Restored rows are a prefix: no gap among the ids (one writer, no failed insert before the kill).
    gap_ok=no; [ "$restored" -eq 0 ] || [ $((last - first + 1)) -eq "$restored" ] && gap_ok=yes
    # None restored: every acknowledged row lost, the span from the first to the last.
    if [ "$restored" -eq 0 ]; then newest=$first_ack; fi
    lost_s=$(awk -v a="$last_ack" -v r="$newest" 'BEGIN { printf "%.1f", a - r }')
    rate=$(awk -v n="$acked" -v a="$first_ack" -v b="$last_ack" 'BEGIN { printf "%.0f", (n - 1) / (b - a) }')
    say "   trial $trial: acknowledged $acked rows ($rate/s), restored $restored; lost $((acked - restored)) rows, ${lost_s} s; restore + start ${restore_s} s"
    echo "$trial|$at|$acked|$restored|$((acked - restored))|$lost_s|$gap_ok|$restore_s|$rate|$(awk -v a="$kill_t" -v b="$last_ack" 'BEGIN { printf "%.2f", a - b }')" >>"$LOSS"
done
LOAD_END=$(load)

# ---------------------------------------------------------------- the section
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
SECTION=$WORK/section.md
{
    echo "<!-- backup:begin (bench/backup.sh writes this section; bench/run.sh keeps it) -->"
    echo "## Backup: pgBackRest against pg_basebackup (bench/backup.sh)"
    echo ""
    echo "Written by \`bench/backup.sh\` (\`sudo make bench-backup\`) on $(date -u '+%Y-%m-%d %H:%M UTC'): ${cpu:-unknown CPU}, $(nproc) cores, $mem, $(df -h --output=source "$DATA" 2>/dev/null | tail -n 1 || echo disk) (one disk for the cluster, the repository and the restores), PostgreSQL $(psql --version | awk '{print $3}'), pgvector $(awk -F"'" '/default_version/ {print $2}' /usr/share/postgresql/$PG_VERSION/extension/vector.control), $(pgbackrest version), commit $COMMIT. Load average at start $LOAD_START, at the end $LOAD_END (a shared machine: 3 other developers build and test on the same 2 cores; one run of each configuration, no medians)."
    echo ""
    echo "### The data"
    echo ""
    echo "Two AI databases (\`logos_db\`, \`aletheia_db\`), each with the tables of Migrations/ (0001, 0004-0006) at EMBEDDING_DIM $DIM: \`memory_shards\` ($SHARDS rows: a text of 4-14 sentences, a clustered synthetic embedding: one of 200 random centroids plus two noise terms, a source, jsonb metadata), \`raw_conversations\` ($CONVERSATIONS rows: request and response jsonb of 1-9 sentences), \`eng_patterns\` (500 rows with embeddings), and the IVFFlat index as the vector-index step trains it (lists = rows / 1000: $(( SHARDS / 1000 ))), then VACUUM (FREEZE, ANALYZE). The sentences: 200,000 of 6-22 words drawn (skewed: the cube of a uniform over the words by frequency) from the words of this repository's README and docs/ ($NWORDS words), so the text compresses as prose does; vectors are float32 noise to a compressor, as real embeddings are. Loaded in $LOAD_S s."
    echo ""
    echo "| database | table | rows | table (with TOAST) MiB | indexes MiB |"
    echo "| --- | --- | ---: | ---: | ---: |"
    awk '{ printf "| `%s` | `%s` | %d | %.1f | %.1f |\n", $1, $2, $3, $4 / 1048576, $5 / 1048576 }' "$STATS"
    echo ""
    echo "The AI databases: **$(gib "$DB_BYTES") GiB** (\`pg_database_size\`; the IVFFlat indexes $(gib "$IVF_BYTES") GiB of it: IVFFlat keeps each vector); every database $(gib "$ALL_DB_BYTES") GiB; the data directory without pg_wal $(gib "$DATA_BYTES") GiB; pgBackRest's \"data\" (what a full backup copies) $(gib "$SOURCE_BYTES") GiB, the figure MiB/s and the size ratios divide by. Average \`memory_shards.content\`: $(awk '$2 == "memory_shards" { print $6; exit }' "$STATS") bytes."
    echo ""
    echo "### Full backup and restore, side by side"
    echo ""
    echo "pgBackRest with the backup step's settings (stanza \`hearthminds\`, \`repo1-retention-full=2\`, \`start-fast=y\`, \`archive_mode=on\`, \`archive_command='pgbackrest --config=... --stanza=hearthminds archive-push %p'\`, \`archive_timeout=60s\`, \`wal_level=replica\`, as postgres; \`--compress-level\` 3 for zst and 1 for lz4, pgBackRest's defaults for each: lz4 at 3 or more is LZ4 HC), a repository on the same disk; \`pgbackrest backup --type=full\` (its wait for the WAL to be archived included). pg_basebackup 15 over the local socket, \`-X stream -c fast\`, tar format: \`-z\` is gzip at its default level; PostgreSQL 15's \`--compress=client-lz4\` and \`--compress=client-zstd\` (default levels) are in the table; the WAL tar is compressed only by gzip. CPU: the tool's processes (user + system, every process it waited for), and the server's (the whole postmaster tree's delta: walsenders, the archiver's archive-push, the checkpoint). The restore: \`pgbackrest restore --set=<that backup> --type=immediate --target-action=promote --archive-mode=off\` with the backup's process-max, or the tarballs unpacked (\`tar\`, \`lz4 -dc\`, \`zstd -dc\`), into a new data directory; then \`pg_ctl start\` on another port: \"accepting\" is the time until \`pg_isready\`, \"read-write\" until \`pg_is_in_recovery()\` is false (pgBackRest's copy fetches its WAL with \`archive-get\`). Each copy is checked: the row counts of every table of both AIs and a vector-index query equal the cluster's. The source files were in the page cache (23 GiB of memory) for every run alike. Load average $LOAD_BACKUPS at the start of the backups, $LOAD_BACKUPS_END at their end."
    echo ""
    echo "| tool | setting | backup s | MiB/s | tool CPU s | server CPU s | size MiB | size / data | restore s | + start: accepting s | read-write s | **restore to read-write s** | restore CPU s |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F'|' -v src="$SOURCE_BYTES" '{
        printf "| %s | `%s` | %.1f | %.0f | %.1f | %.1f | %.0f | %.2f | %.1f | %.1f | %.1f | **%.1f** | %s |\n",
            $1, $2, $3, src / 1048576 / $3, $4 + $5, $6, $7 / 1048576, $7 / src, $8, $9, $10, $8 + $10, $11
    }' "$ROWS"
    echo ""
    python3 - "$ROWS" "$SOURCE_BYTES" <<'PY'
import sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
src = float(sys.argv[2])
pg = [r for r in rows if r[0] == "pgbackrest"]
bb = [r for r in rows if r[0] == "pg_basebackup"]
plain = next((r for r in bb if r[1] == "-Ft"), None)
default = next((r for r in pg if r[1] == "compress-type zst, process-max 1"), None)
def mibs(r): return src / 1048576 / float(r[2])
def restore(r): return float(r[7]) + float(r[9])
if plain:
    print("Against `pg_basebackup -Ft` (%.0f MiB/s): " % mibs(plain) + "; ".join(
        "%s %.2fx" % (r[1], mibs(r) / mibs(plain)) for r in pg) + " (the goal: at least 1x).")
    print("")
if default:
    print("The backup step's default (zst, process-max 1): backup %.0f MiB/s (goal: at least pg_basebackup -Ft's%s: %s); "
          "restore to read-write %.1f s for %.2f GiB (goal: 2 GiB in under a minute: %s); repository %.2f of the data (goal: under half: %s)."
          % (mibs(default), " %.0f" % mibs(plain) if plain else "",
             ("met" if mibs(default) >= mibs(plain) else "missed") if plain else "n/a",
             restore(default), src / 1073741824, "met" if restore(default) * 2147483648 / src < 60 else "missed",
             float(default[6]) / src, "met" if float(default[6]) / src < 0.5 else "missed"))
    print("")
best = max(pg, key=mibs) if pg else None
if best:
    print("Fastest pgBackRest backup: %s, %.0f MiB/s; smallest repository: %s, %.2f of the data; fastest restore to read-write: %s, %.1f s."
          % (best[1], mibs(best), min(pg, key=lambda r: float(r[6]))[1], min(float(r[6]) for r in pg) / src,
             min(pg, key=restore)[1], min(restore(r) for r in pg)))
    print("")
PY
    echo "### The loss window"
    echo ""
    echo "A writer (\`pgbench -c 1\`, one \`INSERT\` a transaction then \`\\sleep 10 ms\`, \`-l\`: each acknowledged commit's time) into \`$WRITER_DB.bench_writes\` (a \`clock_timestamp()\` per row) on the live cluster, archive_timeout 60 s; after the given seconds of writing, \`kill -9\` of the postmaster and every child at once, the data directory deleted, \`pgbackrest restore\` (newest state: the newest full backup then every archived WAL segment), \`pg_ctlcluster start\`, until read-write. Lost: the writer's last acknowledged commit less the newest row restored (seconds), and rows acknowledged but not restored; \"a prefix\": the restored rows have no gap in their ids. Each trial continues on the cluster the previous one restored (pgBackRest follows the new timeline; a \`CHECKPOINT\` after the promotion, see below). The first writer starts just after a segment switch (\`pgbackrest check\`, which put the new table into the archive), so its kill falls 45 s into a 60 s cycle: nothing of it archived yet."
    echo ""
    echo "| trial | writing before the kill, s | rows acknowledged (rate /s) | restored | **lost rows** | **lost, s** | a prefix | restore + start to read-write, s |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
    awk -F'|' '{ printf "| %d | %d | %d (%d) | %d | **%d** | **%s** | %s | %s |\n", $1, $2, $3, $9, $4, $5, $6, $7, $8 }' "$LOSS"
    echo ""
    awk -F'|' '{ if ($6 + 0 > m) m = $6 + 0; s += $6; n++ } END { printf "Loss window: at most **%.1f s** over %d kills (mean %.1f s); archive_timeout is 60 s: a kill just before a segment switch loses up to that, plus the archiving of the last segment.\n", m, n, s / n }' "$LOSS"
    echo ""
    echo "Seen while writing this bench (PostgreSQL 15.20): after a restore's promotion, archive_timeout did not switch segments until the checkpointer next woke (without the \`CHECKPOINT\`, a writer's 80 s of rows stayed in the open segment, none archived, more than 110 s after the promotion): by all appearances the checkpointer had computed its sleep (checkpoint_timeout, 5 min, without archive_timeout) while recovery was still in progress (not traced in PostgreSQL's source). The bench runs a \`CHECKPOINT\` once the restored cluster is read-write; a restore tool should too, or the loss window after a restore is up to checkpoint_timeout, not archive_timeout."
    echo "<!-- backup:end -->"
} >"$SECTION"
say ""
cat "$SECTION"

# Into RESULTS.md: the section replaced (or appended), the rest kept as it was.
if [ -f "$OUTPUT" ]; then
    awk '/<!-- backup:begin/ { skip = 1 } !skip { print } /<!-- backup:end -->/ { skip = 0 }' "$OUTPUT" >"$WORK/rest.md"
else
    : >"$WORK/rest.md"
fi
{ cat "$WORK/rest.md"; [ -s "$WORK/rest.md" ] && echo ""; cat "$SECTION"; } | cat -s >"$OUTPUT"
say ""
say "bench-backup: written to $OUTPUT"
