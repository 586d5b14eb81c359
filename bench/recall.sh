#!/usr/bin/env bash
# HearthMinds bootstrap: the recall benchmark (issue 14). `sudo make bench-recall`, or
# `sudo bench/recall.sh`. Not part of `make test` or `make bench` (slow: it loads data).
#
# On a Debian 12 machine as root, against a PostgreSQL 15 cluster of its own that ./install.sh
# makes (a unique PG_CLUSTER_NAME and a free port, dropped at the end; /etc/hearthminds and the
# createcluster.d drop-in restored as they were). One AI database per data set; for each, as the
# AI's application would, logged in as the AI with its password (psycopg, PGPASSFILE pointing at
# the suite's own password file, so no secret in an argument or the environment):
#   1. load the data into memory_shards (binary COPY) on the index revision 0003 built on the
#      empty table; measure (probes 1, the old default; probes as the database has them);
#   2. rerun ./install.sh, as the operator would after loading data: the vector-index step
#      trains the index; measure the suite's defaults, and the same index with probes 1;
#   3. the options: PGVECTOR_IVFFLAT_LISTS=100 (hm-vector-index --set), and PGVECTOR_INDEX=hnsw
#      (hm-migrate down --to 0006, up with hnsw; ef_search 40 and 100) where the rows are at
#      most BENCH_RECALL_HNSW_MAX;
# each against an exact scan of the same query (index scans off): recall@10 and latency per
# query (bench/recall.py). The table goes to the console and into bench/RESULTS.md (its
# "Recall" section, which bench/run.sh keeps).
#
# Data sets: scikit-learn's bundled handwritten digits (1,797 x 64, zero-padded to
# EMBEDDING_DIM), and clustered synthetic vectors at EMBEDDING_DIM (200 clusters) of each size in
# BENCH_RECALL_SIZES.
#
# Environment: BENCH_RECALL_DIM (EMBEDDING_DIM, 1536), BENCH_RECALL_SIZES ("20000 200000"),
# BENCH_RECALL_QUERIES (50), BENCH_RECALL_HNSW_MAX (20000), BENCH_RECALL_DATASETS
# ("digits clustered"), BENCH_BIN (a directory with the hm-* executables; default: a
# `swift build -c release` of this checkout), BENCH_PORT (first port tried, 55800),
# BENCH_KEEP=1 (keep the work directory and the cluster's config), BENCH_RESULTS (the results
# file, bench/RESULTS.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
DIM=${BENCH_RECALL_DIM:-1536}
SIZES=${BENCH_RECALL_SIZES:-"20000 200000"}
QUERIES=${BENCH_RECALL_QUERIES:-50}
HNSW_MAX=${BENCH_RECALL_HNSW_MAX:-20000}
DATASETS=${BENCH_RECALL_DATASETS:-"digits clustered"}
PG_VERSION=15
SERVICE_USER=hmrecall-service
CLUSTER=hmrecall$$
OUTPUT=${BENCH_RESULTS:-$HERE/RESULTS.md}

say() { printf '%s\n' "$*"; }
die() { printf 'bench-recall: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (sudo make bench-recall): it makes a cluster and a system user"
for tool in pg_lsclusters pg_dropcluster python3 ss; do
    command -v "$tool" >/dev/null || die "$tool is missing (sudo make setup)"
done
[ -f /usr/share/postgresql/$PG_VERSION/extension/vector.control ] ||
    die "pgvector is not installed for PostgreSQL $PG_VERSION (sudo make setup)"

WORK=$(mktemp -d /var/tmp/hm-recall.XXXXXX)
chmod 0755 "$WORK"
OUT=$WORK/out.log
: >"$OUT"

had_etc=0; [ -e /etc/hearthminds ] && had_etc=1 && cp -a /etc/hearthminds "$WORK/etc-hearthminds.orig"
had_dropin=0; [ -e /etc/postgresql-common/createcluster.d/hearthminds.conf ] && had_dropin=1
had_user=0; id "$SERVICE_USER" >/dev/null 2>&1 && had_user=1

cleanup() {
    local rc=$?
    set +e
    if [ "${BENCH_KEEP:-0}" != 1 ] &&
        pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$PG_VERSION/$CLUSTER"; then
        pg_dropcluster --stop "$PG_VERSION" "$CLUSTER" >>"$OUT" 2>&1
    fi
    if [ "$had_user" = 0 ] && [ "${BENCH_KEEP:-0}" != 1 ] && id "$SERVICE_USER" >/dev/null 2>&1; then
        userdel "$SERVICE_USER" >>"$OUT" 2>&1
        getent group "$SERVICE_USER" >/dev/null && groupdel "$SERVICE_USER" >>"$OUT" 2>&1
        rm -rf "/var/lib/$SERVICE_USER"
    fi
    rm -rf /etc/hearthminds
    [ "$had_etc" = 1 ] && cp -a "$WORK/etc-hearthminds.orig" /etc/hearthminds
    [ "$had_dropin" = 0 ] && rm -f /etc/postgresql-common/createcluster.d/hearthminds.conf
    if [ "$rc" -ne 0 ]; then
        say "bench-recall: failed (exit $rc); the last output:" >&2
        tail -n 30 "$OUT" >&2
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "bench-recall: kept $WORK (cluster $PG_VERSION/$CLUSTER)"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local port=${BENCH_PORT:-55800} used
    used=$( { ss -Htan | awk '{print $4}' | sed 's/.*://'; pg_lsclusters -h | awk '{print $3}'; } | sort -u)
    while grep -qx "$port" <<<"$used"; do port=$((port + 1)); done
    echo "$port"
}

# ---------------------------------------------------------------- the suite, staged as a tarball is
if [ -n "${BENCH_BIN:-}" ]; then
    BIN_SRC=$BENCH_BIN
else
    say "== bench-recall: swift build -c release"
    swift build -c release --package-path "$REPO" >>"$OUT" 2>&1 || die "swift build -c release failed"
    BIN_SRC=$(swift build -c release --package-path "$REPO" --show-bin-path)
fi
ROOT=$WORK/hearthminds-bootstrap
mkdir -p "$ROOT/bootstrap/bin"
cp "$REPO/install.sh" "$REPO/README.md" "$ROOT/"
cp "$REPO/bootstrap/lib.sh" "$REPO/bootstrap/steps" "$ROOT/bootstrap/"
cp -r "$REPO/etc" "$REPO/Migrations" "$ROOT/"
install -m 0755 "$BIN_SRC/hearthminds" "$ROOT/bootstrap/bin/" || die "no hearthminds in $BIN_SRC"
for step in $(awk -F'\t' '!/^(#|$)/ {print $1}' "$REPO/bootstrap/steps") migrate reset; do
    ln -f "$ROOT/bootstrap/bin/hearthminds" "$ROOT/bootstrap/bin/hm-$step"
done
BIN=$ROOT/bootstrap/bin
export HEARTHMINDS_ROOT=$ROOT
PORT=$(free_port)
COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- Python: psycopg, numpy, scikit-learn
VENV=$HERE/.venv
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >>"$OUT" 2>&1 || die "python3 -m venv failed (apt-get install python3-venv)"
if ! "$VENV/bin/python" -c 'import psycopg, numpy, sklearn' 2>/dev/null; then
    say "== bench-recall: pip install psycopg[binary] numpy scikit-learn into bench/.venv"
    "$VENV/bin/pip" install -q 'psycopg[binary]' numpy scikit-learn >>"$OUT" 2>&1 || die "pip install failed"
fi
versions=$("$VENV/bin/python" -c 'import psycopg, numpy, sklearn; print("psycopg %s, numpy %s, scikit-learn %s" % (psycopg.__version__, numpy.__version__, sklearn.__version__))')

# ---------------------------------------------------------------- the host
ais=()
for d in $DATASETS; do
    case "$d" in
        digits) ais+=(digits) ;;
        clustered) for n in $SIZES; do ais+=("clustered$n"); done ;;
        *) die "unknown data set $d (digits, clustered)" ;;
    esac
done
CFG=$WORK/hearthminds.env
cat >"$CFG" <<EOF
# bench/recall.sh: its own cluster, port, service user and log; the suite's defaults otherwise
PG_CLUSTER_NAME=$CLUSTER
POSTGRES_PORT=$PORT
HEARTHMINDS_SERVICE_USER=$SERVICE_USER
HEARTHMINDS_LOG=$WORK/bootstrap.jsonl
AI_NAMES=$(IFS=,; echo "${ais[*]}")
EMBEDDING_DIM=$DIM
EOF
chmod 0600 "$CFG"
say "== bench-recall: ./install.sh (cluster $PG_VERSION/$CLUSTER on port $PORT; AIs ${ais[*]}; EMBEDDING_DIM $DIM)"
"$ROOT/install.sh" --config "$CFG" >>"$OUT" 2>&1 || die "install.sh failed"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

JSONL=$WORK/recall.jsonl
: >"$JSONL"
for ai in "${ais[@]}"; do
    db=${ai}_db
    if [ "$ai" = digits ]; then
        args=(--dataset digits)
        rows=1797
    else
        rows=${ai#clustered}
        args=(--dataset clustered --rows "$rows" --clusters 200)
    fi
    hnsw=""
    if [ "$rows" -le "$HNSW_MAX" ]; then
        hnsw="'$BIN/hm-migrate' down --to 0006 --config '$CFG' --database $db && '$BIN/hm-migrate' up --config '$CFG' --set PGVECTOR_INDEX=hnsw --database $db && '$BIN/hm-vector-index' --config '$CFG' --set PGVECTOR_INDEX=hnsw"
    fi
    say "== bench-recall: $ai ($db)"
    PGPASSFILE=/etc/hearthminds/pgpass/$ai "$VENV/bin/python" "$HERE/recall.py" \
        --dsn "host=127.0.0.1 port=$PORT dbname=$db user=$ai" "${args[@]}" --dim "$DIM" --queries "$QUERIES" \
        --rerun "'$ROOT/install.sh' --config '$CFG'" \
        --lists100 "'$BIN/hm-vector-index' --config '$CFG' --set PGVECTOR_IVFFLAT_LISTS=100" \
        --hnsw "$hnsw" --out "$JSONL" 2>&1 | tee -a "$OUT"
    [ "${PIPESTATUS[0]}" = 0 ] || die "recall.py failed for $ai"
    if [ -n "$hnsw" ]; then # back to the IVFFlat index, so that the next install.sh rerun converges
        "$BIN/hm-migrate" down --to 0006 --config "$CFG" --set PGVECTOR_INDEX=hnsw --database "$db" >>"$OUT" 2>&1
        "$BIN/hm-migrate" up --config "$CFG" --database "$db" >>"$OUT" 2>&1
    fi
done

# A converged rerun on the trained host rebuilds nothing.
"$ROOT/install.sh" --config "$CFG" >>"$OUT" 2>&1 || die "the last install.sh rerun failed"
HEARTHMINDS_RUN_ID=recall-converged "$ROOT/install.sh" --config "$CFG" >>"$OUT" 2>&1 || die "the converged rerun failed"
changed=$(grep -F '"run":"recall-converged"' "$WORK/bootstrap.jsonl" | grep -F '"changed":true' | grep -vcF '"action":"(step)"' || true)

# ---------------------------------------------------------------- the table
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
SECTION=$WORK/section.md
{
    echo "<!-- recall:begin (bench/recall.sh writes this section; bench/run.sh keeps it) -->"
    echo "## Recall: the vector index (bench/recall.sh)"
    echo ""
    echo "Written by \`bench/recall.sh\` (\`sudo make bench-recall\`) on $(date -u '+%Y-%m-%d %H:%M UTC'): ${cpu:-unknown CPU}, $(nproc) cores, PostgreSQL $(psql --version | awk '{print $3}') with pgvector $(awk -F"'" '/default_version/ {print $2}' /usr/share/postgresql/$PG_VERSION/extension/vector.control), commit $COMMIT; $versions; load average at start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: latencies move with it, recall does not). EMBEDDING_DIM $DIM; $QUERIES queries per data set, not in the table. recall@10 against an exact scan of the same query (index scans off; a row as near as the exact 10th counts); latency: the client's wall time per query through psycopg over TCP, median and 95th percentile. \"The rerun\" is \`./install.sh\` after the AI loaded its data: the vector-index step trains the index."
    echo ""
    "$VENV/bin/python" - "$JSONL" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sets = []
for r in rows:
    if r["dataset"] not in sets:
        sets.append(r["dataset"])
for s in sets:
    rs = [r for r in rows if r["dataset"] == s]
    exact = next(r for r in rs if r["config"].startswith("exact"))
    default = next((r for r in rs if r.get("default")), None)
    p1 = next((r for r in rs if r.get("probes1")), None)
    old = next((r for r in rs if r["config"].startswith("before the rerun") and "probes 1 " in r["config"]), None)
    print("### %s: %d rows (loaded in %.1f s)" % (s, exact["rows"], exact.get("load_s", 0)))
    print("")
    print("| configuration | recall@10 | median ms | p95 ms | x exact scan |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rs:
        extra = ""
        if "rerun_s" in r: extra = " (rerun %.1f s)" % r["rerun_s"]
        if "rebuild_s" in r: extra = " (rebuild %.1f s)" % r["rebuild_s"]
        if "build_s" in r: extra = " (down, up with hnsw: %.1f s)" % r["build_s"]
        print("| %s%s | %.3f | %.2f | %.2f | %.2f |" % (r["config"], extra, r["recall"], r["median_ms"], r["p95_ms"], r["median_ms"] / exact["median_ms"]))
    if default and p1:
        print("")
        print("Suite defaults after the rerun: recall@10 **%.3f** (target at least 0.95: %s), %.2f ms a query: %.2fx the latency of probes 1 on the same trained index (target at most 2x: %s), %.2fx that of the old default (0003's index, probes 1: recall %.3f)."
              % (default["recall"], "met" if default["recall"] >= 0.95 else "missed", default["median_ms"],
                 default["median_ms"] / p1["median_ms"], "met" if default["median_ms"] <= 2 * p1["median_ms"] else "missed",
                 default["median_ms"] / old["median_ms"] if old else float("nan"), old["recall"] if old else float("nan")))
    print("")
PY
    echo "A converged \`./install.sh\` rerun on the trained host: $changed action(s) changed anything (target: 0, nothing rebuilt)."
    echo "<!-- recall:end -->"
} >"$SECTION"
cat "$SECTION"

# Into RESULTS.md: the section replaced (or appended), the rest as bench/run.sh wrote it.
if [ -f "$OUTPUT" ]; then
    awk '/<!-- recall:begin/ { skip = 1 } !skip { print } /<!-- recall:end -->/ { skip = 0 }' "$OUTPUT" >"$WORK/rest.md"
else
    : >"$WORK/rest.md"
fi
{ cat "$WORK/rest.md"; [ -s "$WORK/rest.md" ] && echo ""; cat "$SECTION"; } | cat -s >"$OUTPUT"
say ""
say "bench-recall: written to $OUTPUT"
