#!/usr/bin/env bash
# HearthMinds bootstrap benchmarks (issues 7 and 15): `sudo make bench`, or `sudo bench/run.sh`.
#
# On a Debian 12 machine as root, against a PostgreSQL 15 cluster of its own (a unique
# PG_CLUSTER_NAME and a free POSTGRES_PORT, made by install.sh itself and dropped at the end;
# never the host's `main` cluster): prints a table and writes it, with the machine it ran on,
# to bench/RESULTS.md. Figures are medians of several runs; comparisons are ratios measured side
# by side in the same run.
#
#   1. a converged rerun of ./install.sh (two AIs): wall time and each step's share; and the same
#      converged job as an Ansible playbook (bench/ansible/, PyPI's ansible in bench/.venv),
#      runs interleaved with install.sh's
#   2. scale: the databases and migrations steps for 1, 10, 50, 200 AI names, against the same
#      SQL through one psql session per database, from empty and converged
#   3. hm-migrate against Alembic itself (PyPI alembic, SQLAlchemy, psycopg in bench/.venv): the
#      same five revisions, 10 databases, empty -> head: Alembic looping over the databases in
#      one process, and the seed's way (one `alembic upgrade head` per database); each tool's
#      overhead above the server's own work (the revision transactions, as hm-migrate times them)
#   4. start-up of one step's command (--help) and the size of the dist tarball
#   and the issue-15 targets against what was measured.
#
# Environment: BENCH_RUNS (install reruns, 7), BENCH_ANSIBLE_RUNS (3), BENCH_SCALE_RUNS (3),
# BENCH_SCALE_COUNTS ("1 10 50 200"), BENCH_ALEMBIC_RUNS (3), BENCH_DIST (a tarball instead of
# `make dist`), BENCH_PORT (first port tried, 55700), BENCH_KEEP=1 (keep the work directory),
# BENCH_RESULTS (the results file, bench/RESULTS.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
RUNS=${BENCH_RUNS:-7}
SCALE_RUNS=${BENCH_SCALE_RUNS:-3}
SCALE_COUNTS=${BENCH_SCALE_COUNTS:-"1 10 50 200"}
ALEMBIC_RUNS=${BENCH_ALEMBIC_RUNS:-3}
ANSIBLE_RUNS=${BENCH_ANSIBLE_RUNS:-3}
PG_VERSION=15
SOCKET=/var/run/postgresql
SERVICE_USER=hmbench-service
CLUSTER=hmbench$$

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (sudo make bench): it makes a cluster and a system user"
for tool in pg_createcluster pg_dropcluster pg_lsclusters psql python3 ss tar; do
    command -v "$tool" >/dev/null || die "$tool is missing (sudo make setup installs PostgreSQL 15 and the tools)"
done
[ -f /usr/share/postgresql/$PG_VERSION/extension/vector.control ] ||
    die "pgvector is not installed for PostgreSQL $PG_VERSION (sudo make setup)"

WORK=$(mktemp -d /var/tmp/hm-bench.XXXXXX)
chmod 0755 "$WORK"
OUT=$WORK/out.log
: >"$OUT"

# ---------------------------------------------------------------- state to restore afterwards
had_etc=0; [ -e /etc/hearthminds ] && had_etc=1 && cp -a /etc/hearthminds "$WORK/etc-hearthminds.orig"
had_dropin=0; [ -e /etc/postgresql-common/createcluster.d/hearthminds.conf ] && had_dropin=1
had_user=0; id "$SERVICE_USER" >/dev/null 2>&1 && had_user=1

cleanup() {
    local rc=$?
    set +e
    if pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$PG_VERSION/$CLUSTER"; then
        pg_dropcluster --stop "$PG_VERSION" "$CLUSTER" >>"$OUT" 2>&1
    fi
    if [ "$had_user" = 0 ] && id "$SERVICE_USER" >/dev/null 2>&1; then
        userdel "$SERVICE_USER" >>"$OUT" 2>&1
        getent group "$SERVICE_USER" >/dev/null && groupdel "$SERVICE_USER" >>"$OUT" 2>&1
        rm -rf "/var/lib/$SERVICE_USER"
    fi
    rm -rf /etc/hearthminds
    [ "$had_etc" = 1 ] && cp -a "$WORK/etc-hearthminds.orig" /etc/hearthminds
    [ "$had_dropin" = 0 ] && rm -f /etc/postgresql-common/createcluster.d/hearthminds.conf
    if [ "$rc" -ne 0 ]; then
        say "bench: failed (exit $rc); the last output:" >&2
        tail -n 30 "$OUT" >&2
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "bench: work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
now_ns() { date +%s%N; }
# timed CMD...: runs CMD (output to the work log; a failure ends the bench), prints its ms.
timed() {
    local t0 t1
    t0=$(now_ns)
    if ! "$@" >>"$OUT" 2>&1; then
        say "bench: command failed: $*" >&2
        exit 1
    fi
    t1=$(now_ns)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
sec() { awk -v a="$1" 'BEGIN { printf "%.3f", a / 1000 }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a + b }'; }

free_port() {
    local port=${BENCH_PORT:-55700} used
    used=$( { ss -Htan | awk '{print $4}' | sed 's/.*://'; pg_lsclusters -h | awk '{print $3}'; } | sort -u)
    while grep -qx "$port" <<<"$used"; do port=$((port + 1)); done
    echo "$port"
}

# psql as the postgres role (root is mapped to it by our pg_ident.conf), script on stdin.
pg() {
    local db=${1:-postgres}
    shift || true
    psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKET" -p "$PORT" -U postgres -d "$db" "$@"
}

# Drops every database and role but the cluster's own: the cluster back to empty.
reset_cluster() {
    pg postgres <<'SQL' >>"$OUT" 2>&1
SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database
 WHERE datname NOT IN ('postgres', 'template0', 'template1') \gexec
SELECT format('DROP ROLE %I', rolname) FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres' \gexec
SQL
}

ai_names() { # N -> ai001,ai002,...
    local n=$1 i out=""
    for ((i = 1; i <= n; i++)); do out+="${out:+,}$(printf 'ai%03d' "$i")"; done
    echo "$out"
}

write_config() { # FILE AI_NAMES(comma list) LOG
    cat >"$1" <<EOF
# bench/run.sh: its own cluster, port, service user and log
PG_CLUSTER_NAME=$CLUSTER
POSTGRES_PORT=$PORT
HEARTHMINDS_SERVICE_USER=$SERVICE_USER
HEARTHMINDS_LOG=$3
AI_NAMES=$2
EOF
    chmod 0600 "$1"
}

RESULTS=$WORK/results.md
# Each line goes to the console and to bench/RESULTS.md at once (a cut-short run keeps what it measured).
OUTPUT=${BENCH_RESULTS:-$HERE/RESULTS.md}
# The sections that bench/recall.sh and bench/backup.sh wrote stay, after this run's sections.
RECALL_SECTION=$WORK/recall-section.md
: >"$RECALL_SECTION"
if [ -f "$OUTPUT" ]; then
    awk '/<!-- (recall|backup):begin/ { keep = 1 } keep { print } /<!-- (recall|backup):end -->/ { keep = 0; print "" }' "$OUTPUT" | cat -s >"$RECALL_SECTION"
fi
emit() {
    printf '%s\n' "$*" | tee -a "$RESULTS"
    { cat "$RESULTS"; if [ -s "$RECALL_SECTION" ]; then echo ""; cat "$RECALL_SECTION"; fi; } >"$OUTPUT"
}

# ---------------------------------------------------------------- the release
say "== bench: building the release tarball"
if [ -n "${BENCH_DIST:-}" ]; then
    DIST=$BENCH_DIST
else
    make -C "$REPO" dist >>"$OUT" 2>&1 || { tail -n 30 "$OUT"; die "make dist failed"; }
    DIST=$REPO/dist/hearthminds-bootstrap.tar.gz
fi
[ -f "$DIST" ] || die "no tarball at $DIST"
tar -C "$WORK" -xzf "$DIST"
ROOT=$WORK/hearthminds-bootstrap
BIN=$ROOT/bootstrap/bin
export HEARTHMINDS_ROOT=$ROOT
PORT=$(free_port)
# Before RESULTS.md (which git tracks) is rewritten: a clean tree is not "dirty" because of it.
COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)

# The bench's Python tools (git ignores bench/.venv): Alembic with SQLAlchemy and psycopg, and
# Ansible with psycopg2 (community.postgresql's driver).
VENV=$HERE/.venv
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
if [ ! -x "$VENV/bin/alembic" ] || [ ! -x "$VENV/bin/ansible-playbook" ]; then
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >>"$OUT" 2>&1 || die "python3 -m venv failed (apt-get install python3-venv)"
    "$VENV/bin/pip" install -q alembic SQLAlchemy 'psycopg[binary]' ansible psycopg2-binary >>"$OUT" 2>&1 ||
        die "pip install of alembic, SQLAlchemy, psycopg, ansible, psycopg2-binary failed"
fi
load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------- the machine
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
: >"$RESULTS"
emit "# HearthMinds bootstrap: benchmarks"
emit ""
emit "Written by \`bench/run.sh\` (\`sudo make bench\`); medians of several runs, ratios measured side by side in the same run."
emit ""
emit "| machine | |"
emit "| --- | --- |"
emit "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
emit "| CPU | ${cpu:-unknown} |"
emit "| nproc | $(nproc) |"
emit "| memory | $mem |"
emit "| kernel | $(uname -r) |"
emit "| Debian | $(cat /etc/debian_version 2>/dev/null || echo unknown) |"
emit "| PostgreSQL | $(psql --version | awk '{print $3}'), cluster \`$PG_VERSION/$CLUSTER\` on port $PORT (fsync on, defaults) |"
emit "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
emit "| commit | $COMMIT |"
emit ""

# ---------------------------------------------------------------- 4. start-up and size
say "== 4. start-up of hm-service-user --help, tarball size"
startup_runs=200
if ! command -v hyperfine >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends hyperfine >>"$OUT" 2>&1 || true
fi
if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 10 --runs "$startup_runs" --export-json "$WORK/startup.json" \
        "$BIN/hm-service-user --help" "/bin/true" >>"$OUT" 2>&1
    read -r start_ms true_ms < <(python3 - "$WORK/startup.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(" ".join("%.2f" % (x["median"] * 1000) for x in r))
PY
)
    how="hyperfine -N, $startup_runs runs, median"
else
    for ((i = 0; i < startup_runs; i++)); do timed "$BIN/hm-service-user" --help; done | median >"$WORK/s"
    for ((i = 0; i < startup_runs; i++)); do timed /bin/true; done | median >"$WORK/t"
    start_ms=$(cat "$WORK/s") true_ms=$(cat "$WORK/t")
    how="$startup_runs runs timed by the shell, median (hyperfine unavailable)"
fi
size=$(stat -c %s "$DIST")
bin_size=$(du -cb "$BIN"/* | tail -n 1 | cut -f1)
emit "## 4. Start-up and size"
emit ""
emit "| what | figure |"
emit "| --- | --- |"
emit "| \`hm-service-user --help\` | $start_ms ms ($how; \`/bin/true\` $true_ms ms; load $(load)) |"
emit "| dist tarball | $(awk -v s="$size" 'BEGIN { printf "%.1f MiB (%d bytes)", s / 1048576, s }') |"
emit "| unpacked executables ($(ls "$BIN" | wc -l) names, $(find "$BIN" -type f -printf '%i\n' | sort -u | wc -l) file: hard links to one, stripped, static Swift runtime) | $(awk -v s="$bin_size" 'BEGIN { printf "%.1f MiB", s / 1048576 }') |"
emit ""

# ---------------------------------------------------------------- 1. converged install.sh
say "== 1. install.sh (two AIs) on cluster $PG_VERSION/$CLUSTER, port $PORT, against Ansible"
INSTALL_LOG=$WORK/install.jsonl
write_config "$WORK/install.env" '["logos", "aletheia"]' "$INSTALL_LOG"
load1=$(load)
first_ms=$(HEARTHMINDS_RUN_ID=bench-first timed "$ROOT/install.sh" --config "$WORK/install.env")

# Ansible's variables: the cluster, the passwords the databases step keeps, a copy of the
# pg_hba.conf the pg-hba step wrote (the playbook copies it as is): root-only.
cp "/etc/postgresql/$PG_VERSION/$CLUSTER/pg_hba.conf" "$WORK/ansible-hba.conf"
"$VENV/bin/python" - "$WORK/ansible-vars.json" "$CLUSTER" "$PORT" "$SERVICE_USER" "$WORK/ansible-hba.conf" "$VENV/bin/python" <<'PY'
import json, os, sys
out, cluster, port, service, hba, python = sys.argv[1:]
ais = ["logos", "aletheia"]
passwords = {}
for role in ["hearthminds"] + ais:
    line = open("/etc/hearthminds/pgpass/" + role).read().split("\n")[0]
    passwords[role] = line.rsplit(":", 1)[1]
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps({"cluster": cluster, "port": int(port), "service_user": service, "hba_file": hba,
                         "passwords": passwords, "ais": ais, "ansible_python_interpreter": python}).encode())
os.close(fd)
PY
run_ansible() {
    ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False \
        "$VENV/bin/ansible-playbook" -i localhost, -c local -e @"$WORK/ansible-vars.json" "$HERE/ansible/converge.yml" \
        >"$WORK/ansible.out" 2>&1 || { cat "$WORK/ansible.out" >>"$OUT"; return 1; }
    cat "$WORK/ansible.out" >>"$OUT"
}
ansible_changed() { awk '/^localhost/ { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { sub("changed=", "", $i); print $i } }' "$WORK/ansible.out"; }
ansible_version=$("$VENV/bin/python" -c 'import ansible_collections.community.postgresql as c, importlib.metadata as m; print("ansible %s (ansible-core %s), community.postgresql %s" % (m.version("ansible"), m.version("ansible-core"), __import__("json").load(open(c.__path__[0] + "/MANIFEST.json"))["collection_info"]["version"]))' 2>/dev/null || echo ansible)
# A first Ansible run: it must find the host converged too (changed=0), or the two disagree.
timed run_ansible >/dev/null
ansible_first_changed=$(ansible_changed)
: >"$WORK/install-walls"; : >"$WORK/ansible-walls"; ansible_changes=0
for ((i = 1; i <= RUNS; i++)); do
    HEARTHMINDS_RUN_ID=bench-conv-$i timed "$ROOT/install.sh" --config "$WORK/install.env" >>"$WORK/install-walls"
    if ((i <= ANSIBLE_RUNS)); then
        timed run_ansible >>"$WORK/ansible-walls"
        ansible_changes=$((ansible_changes + $(ansible_changed)))
    fi
done
load1_end=$(load)
python3 - "$INSTALL_LOG" "$WORK/install-walls" "$RUNS" >"$WORK/install-table" <<'PY'
import json, statistics, sys
log, walls, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
steps, changed, order = {}, 0, []
for line in open(log):
    rec = json.loads(line)
    if not rec.get("run", "").startswith("bench-conv-"):
        continue
    if rec.get("changed"):
        changed += 1
    if rec.get("action") == "(step)":
        if rec["step"] not in order:
            order.append(rec["step"])
        steps.setdefault(rec["step"], []).append(rec["ms"])
wall = statistics.median(float(x) for x in open(walls).read().split())
in_steps = sum(statistics.median(v) for v in steps.values())
print("| step | median ms | share of the wall time |")
print("| --- | ---: | ---: |")
for name in order:
    m = statistics.median(steps[name])
    print("| `%s` | %.1f | %.0f%% |" % (name, m, 100 * m / wall))
print("| install.sh itself and the %d starts of the executable (lock, configuration, log) | %.1f | %.0f%% |" % (len(order), wall - in_steps, 100 * (wall - in_steps) / wall))
print("| **total wall time** | **%.1f** | 100%% |" % wall)
top = max(order, key=lambda n: statistics.median(steps[n]))
print("")
print("WALL=%.1f TOP=%s TOPMS=%.1f CHANGED=%d" % (wall, top, statistics.median(steps[top]), changed))
PY
eval "$(tail -n 1 "$WORK/install-table")"
ANSIBLE_MS=$(median <"$WORK/ansible-walls")
emit "## 1. A converged rerun of ./install.sh (two AIs), and the same job by Ansible"
emit ""
emit "From the tarball, \`--config\` of its own; $RUNS converged reruns (the first install, from packages present, took $(sec "$first_ms") s). Step times from the JSON-lines log's \`(step)\` records. Load average $load1 at the start, $load1_end at the end."
emit ""
head -n -1 "$WORK/install-table" | sed '$d' | tee -a "$RESULTS"
emit ""
emit "Converged rerun: **$(sec "$WALL") s** (target at most 0.30 s: $(awk -v w="$WALL" 'BEGIN { print (w <= 300) ? "met" : "missed" }')); the largest step is \`$TOP\` ($TOPMS ms). Actions that changed something in the reruns: $CHANGED."
emit ""
emit "The same converged job as an Ansible playbook (\`bench/ansible/converge.yml\`, $ansible_version; \`ansible-playbook -c local\`, no fact gathering): the service account, pg_hba.conf (the file the pg-hba step wrote, copied), the four roles with their attributes, marks and passwords, pg_monitor, the three databases, \`vector\` in each, CONNECT grants and none for PUBLIC. It does less than install.sh (no packages, conf.d settings, pgvector proof, readers' grants, migrations or verify). $ANSIBLE_RUNS runs interleaved with install.sh's reruns; its first run found the host converged (changed=$ansible_first_changed), its timed runs changed $ansible_changes."
emit ""
emit "| tool | converged run, median ms | ratio |"
emit "| --- | ---: | ---: |"
emit "| \`./install.sh\` | $WALL | 1.00 |"
emit "| \`ansible-playbook\` | $ANSIBLE_MS | $(ratio "$ANSIBLE_MS" "$WALL") |"
emit ""
emit "install.sh is **$(ratio "$ANSIBLE_MS" "$WALL")x** faster than Ansible on the converged host (target at least 30x: $(awk -v a="$ANSIBLE_MS" -v w="$WALL" 'BEGIN { print (a / w >= 30) ? "met" : "missed" }'))."
emit ""

# ---------------------------------------------------------------- 3. hm-migrate vs Alembic
say "== 3. hm-migrate against Alembic (10 databases, empty -> head)"
versions=$("$VENV/bin/python" -c 'import alembic, sqlalchemy, psycopg; print("alembic %s, SQLAlchemy %s, psycopg %s" % (alembic.__version__, sqlalchemy.__version__, psycopg.__version__))')
ALEMBIC_CFG=$WORK/alembic.env
write_config "$ALEMBIC_CFG" "$(ai_names 9)" "$WORK/alembic.jsonl"
alembic_dbs="hearthminds_db,$(ai_names 9 | sed 's/\([^,]*\)/\1_db/g')"
# hm-migrate works in each database as its owner, logged in itself (an AI with its password over
# loopback): the AIs of this configuration need their pg_hba.conf lines.
"$BIN/hm-pg-hba" --config "$ALEMBIC_CFG" >>"$OUT" 2>&1 || die "hm-pg-hba for the Alembic configuration failed"
fresh_dbs() { reset_cluster; "$BIN/hm-databases" --config "$ALEMBIC_CFG" >>"$OUT" 2>&1; }
# The Alembic project's revisions end at 0006: hm-migrate is asked for the same five (0007,
# Migrations/' HNSW switch, is not in the Alembic project).
ALEMBIC_HEAD=0006
at_head() { # every database at $ALEMBIC_HEAD, with eng_patterns' first row
    local db
    for db in ${alembic_dbs//,/ }; do
        [ "$(pg "$db" -At <<<"SELECT version_num FROM alembic_version; ")" = "$ALEMBIC_HEAD" ] || return 1
        [ "$(pg "$db" -At <<<"SELECT count(*) FROM eng_patterns;")" = 1 ] || return 1
    done
}
# Alembic looping over the 10 databases in one process (env.py), or -x dbs=ONE.
run_alembic() { # [DBS]
    HM_MIGRATIONS=$ROOT/Migrations "$VENV/bin/alembic" -c "$HERE/alembic/alembic.ini" \
        -x host="$SOCKET" -x port="$PORT" -x dbs="${1:-$alembic_dbs}" upgrade head
}
# The seed's way: `alembic upgrade head` once per database, one after another.
run_alembic_seed() {
    local db
    for db in ${alembic_dbs//,/ }; do run_alembic "$db" || return 1; done
}
# hm-migrate one database after another, printing each revision's time: the server's own work
# (its transaction, COMMIT included, timed from hm-migrate's side), summed into $1.
run_hm_serial() { # SERVERFILE
    "$BIN/hm-migrate" up --to "$ALEMBIC_HEAD" --jobs 1 --config "$ALEMBIC_CFG" >"$WORK/hm-serial.out" 2>&1 || { cat "$WORK/hm-serial.out" >>"$OUT"; return 1; }
    cat "$WORK/hm-serial.out" >>"$OUT"
    sed -n 's/.*: applied .* (.*, \([0-9.]*\) ms)$/\1/p' "$WORK/hm-serial.out" | awk '{ s += $1; n++ } END { printf "%.1f %d\n", s, n }' >>"$1"
}
load3=$(load)
for f in hm hm-conv hm1 server alembic alembic-conv seed seed-conv; do : >"$WORK/mig-$f"; done
for ((i = 1; i <= ALEMBIC_RUNS; i++)); do
    # Rotate which goes first, so that none always meets a warmer server.
    order="hm hm1 alembic seed"
    for ((r = 1; r < i; r++)); do order="${order#* } ${order%% *}"; done
    for who in $order; do
        fresh_dbs
        case $who in
            hm)
                timed "$BIN/hm-migrate" up --to "$ALEMBIC_HEAD" --config "$ALEMBIC_CFG" >>"$WORK/mig-hm"
                at_head || { say "bench: hm-migrate did not bring every database to 0006" >&2; exit 1; }
                timed "$BIN/hm-migrate" up --to "$ALEMBIC_HEAD" --config "$ALEMBIC_CFG" >>"$WORK/mig-hm-conv" ;;
            hm1)
                timed run_hm_serial "$WORK/mig-server" >>"$WORK/mig-hm1"
                at_head || { say "bench: hm-migrate --jobs 1 did not bring every database to 0006" >&2; exit 1; } ;;
            alembic)
                timed run_alembic >>"$WORK/mig-alembic"
                at_head || { say "bench: alembic did not bring every database to 0006" >&2; exit 1; }
                timed run_alembic >>"$WORK/mig-alembic-conv" ;;
            seed)
                timed run_alembic_seed >>"$WORK/mig-seed"
                at_head || { say "bench: alembic (per database) did not bring every database to 0006" >&2; exit 1; }
                timed run_alembic_seed >>"$WORK/mig-seed-conv" ;;
        esac
    done
done
load3_end=$(load)
hm_mig=$(median <"$WORK/mig-hm"); hm_conv=$(median <"$WORK/mig-hm-conv"); hm1=$(median <"$WORK/mig-hm1")
al_mig=$(median <"$WORK/mig-alembic"); al_conv=$(median <"$WORK/mig-alembic-conv")
seed_mig=$(median <"$WORK/mig-seed"); seed_conv=$(median <"$WORK/mig-seed-conv")
server_ms=$(cut -d' ' -f1 "$WORK/mig-server" | median)
revisions=$(cut -d' ' -f2 "$WORK/mig-server" | head -n 1)
over() { awk -v a="$1" -v b="$server_ms" 'BEGIN { printf "%.1f", a - b }'; }
hm1_over=$(over "$hm1"); al_over=$(over "$al_mig"); seed_over=$(over "$seed_mig"); hm_over=$(over "$hm_mig")

emit "## 3. Migrations: hm-migrate against Alembic"
emit ""
emit "The five revisions (0001, 0003-0006; hm-migrate \`up --to 0006\`: 0007, the HNSW switch, is not in the Alembic project) as an Alembic project (\`bench/alembic/\`, $versions), the same rendered SQL, one transaction per revision as the owner; 10 databases (\`hearthminds_db\` + 9 AIs) made by \`hm-databases\`, empty -> head. hm-migrate as it runs by default (HEARTHMINDS_DB first, then the AI databases side by side) and with \`--jobs 1\` (one after another, as Alembic); Alembic looping over the 10 databases in one process (\`env.py\`), and the seed's way: \`alembic upgrade head\` once per database. $ALEMBIC_RUNS runs each, the order rotated. Load average $load3 at the start, $load3_end at the end."
emit ""
emit "| tool | empty -> head, median ms | Alembic the seed's way / tool | overhead above the server's work, ms | at head already, median ms |"
emit "| --- | ---: | ---: | ---: | ---: |"
emit "| \`hm-migrate up\` (side by side) | $hm_mig | **$(ratio "$seed_mig" "$hm_mig")** | ($hm_over: the server's work overlaps) | $hm_conv |"
emit "| \`hm-migrate up --jobs 1\` | $hm1 | $(ratio "$seed_mig" "$hm1") | **$hm1_over** | |"
emit "| \`alembic upgrade head\`, one process over the 10 | $al_mig | $(ratio "$seed_mig" "$al_mig") | $al_over | $al_conv |"
emit "| \`alembic upgrade head\` per database (the seed's way) | $seed_mig | 1.00 | $seed_over | $seed_conv |"
emit ""
emit "The server's own work: the $revisions revision transactions (COMMIT included) as \`hm-migrate --jobs 1\` times them from its side, summed: **$server_ms ms** (median); the same SQL for every tool. A tool's overhead is its wall time less that. hm-migrate is **$(ratio "$seed_mig" "$hm_mig")x** faster than Alembic the seed's way (target at least 15x: $(awk -v a="$seed_mig" -v b="$hm_mig" 'BEGIN { print (a / b >= 15) ? "met" : "missed" }')) and $(ratio "$al_mig" "$hm_mig")x faster than Alembic looping in one process; one database after another, its overhead above the server's work is $hm1_over ms against Alembic's $al_over ms (looping) and $seed_over ms (the seed's way): $(ratio "$al_over" "$hm1_over")x and $(ratio "$seed_over" "$hm1_over")x less (target at most 50 ms: $(awk -v o="$hm1_over" 'BEGIN { print (o <= 50) ? "met" : "missed" }')). With nothing to do: $(ratio "$al_conv" "$hm_conv")x (looping) and $(ratio "$seed_conv" "$hm_conv")x (the seed's way)."
emit ""

# ---------------------------------------------------------------- 2. scale
say "== 2. scale: databases and migrations steps against psql"
# The SQL the databases step applies on an empty cluster, for the baseline: the cluster-wide
# statements in one session (as the step's connection to postgres), then one session per database.
baseline_sql() { # N DIR
    local n=$1 dir=$2 ai names owner readers
    names=$(ai_names "$n" | tr , ' ')
    rm -rf "$dir"; mkdir -p "$dir"
    readers=$(for ai in $names; do printf '%s, ' "$ai"; done; echo hearthminds)
    {
        echo "CREATE ROLE hearthminds;"
        echo "ALTER ROLE hearthminds WITH SUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 VALID UNTIL 'infinity'; GRANT pg_monitor TO hearthminds; ALTER ROLE hearthminds PASSWORD 'hearthminds';"
        echo "CREATE ROLE \"$SERVICE_USER\";"
        echo "ALTER ROLE \"$SERVICE_USER\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 VALID UNTIL 'infinity'; ALTER ROLE \"$SERVICE_USER\" PASSWORD NULL;"
        for ai in $names; do
            echo "CREATE ROLE $ai;"
            echo "ALTER ROLE $ai WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 VALID UNTIL 'infinity'; ALTER ROLE $ai PASSWORD '$ai';"
        done
        echo "CREATE DATABASE hearthminds_db OWNER \"$SERVICE_USER\" ENCODING 'UTF8' TEMPLATE template0;"
        for ai in $names; do echo "CREATE DATABASE ${ai}_db OWNER $ai ENCODING 'UTF8' TEMPLATE template0;"; done
    } >"$dir/cluster.sql"
    {
        echo "SET ROLE hearthminds; CREATE EXTENSION IF NOT EXISTS vector; RESET ROLE;"
        echo "GRANT USAGE ON SCHEMA public TO $readers; GRANT SELECT ON ALL TABLES IN SCHEMA public TO $readers;"
        echo "ALTER DEFAULT PRIVILEGES FOR ROLE \"$SERVICE_USER\" IN SCHEMA public GRANT SELECT ON TABLES TO $readers;"
    } >"$dir/hearthminds_db.sql"
    {
        echo "REVOKE ALL ON DATABASE hearthminds_db FROM PUBLIC; GRANT ALL ON DATABASE hearthminds_db TO \"$SERVICE_USER\";"
        for ai in $names hearthminds; do
            echo "REVOKE ALL ON DATABASE hearthminds_db FROM $ai; GRANT CONNECT ON DATABASE hearthminds_db TO $ai;"
        done
        for ai in $names; do
            echo "REVOKE ALL ON DATABASE ${ai}_db FROM PUBLIC; GRANT ALL ON DATABASE ${ai}_db TO $ai;"
            echo "SET ROLE hearthminds; CREATE EXTENSION IF NOT EXISTS vector; RESET ROLE;" >"$dir/${ai}_db.sql"
        done
    } >"$dir/privileges.sql"
}
baseline_databases() { # DIR
    local f
    cat "$1/cluster.sql" "$1/privileges.sql" | pg postgres
    for f in "$1"/*_db.sql; do pg "$(basename "$f" .sql)" <"$f"; done
}
baseline_migrations() { # DIR of <db>.sql scripts from hm-migrate up --sql
    local f
    for f in "$1"/*.sql; do pg "$(basename "$f" .sql)" <"$f"; done
}

emit "## 2. Scale: the databases and migrations steps against psql"
emit ""
emit "N AI names make N+1 databases (\`hearthminds_db\` too). From an empty cluster: \`hm-databases\` then \`hm-migrations\`, against a baseline that issues the same SQL through one \`psql\` session per database (the databases step's statements; for the migrations, each database's script from \`hm-migrate up --sql\`, generated beforehand). Converged: the steps rerun on the finished cluster (no baseline: psql would run nothing). $SCALE_RUNS runs each, medians in ms."
emit ""
emit "| N | databases step | psql | ratio | migrations step | psql | ratio | both steps | psql | **ratio** | databases converged | migrations converged | both converged |"
emit "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
load2=$(load)
for n in $SCALE_COUNTS; do
    cfg=$WORK/scale-$n.env
    write_config "$cfg" "$(ai_names "$n")" "$WORK/scale.jsonl"
    base=$WORK/baseline-$n
    baseline_sql "$n" "$base"
    # Each AI logs in to its database (the migrations step works as the owner): its pg_hba.conf lines.
    "$BIN/hm-pg-hba" --config "$cfg" >>"$OUT" 2>&1 || die "hm-pg-hba for $n AIs failed"
    for f in db mig dbc migc bdb bmig; do : >"$WORK/s-$f"; done
    for ((i = 1; i <= SCALE_RUNS; i++)); do
        say "   N=$n run $i/$SCALE_RUNS"
        reset_cluster
        timed "$BIN/hm-databases" --config "$cfg" >>"$WORK/s-db"
        if [ "$i" = 1 ]; then # the migration scripts, from the databases at base (not timed)
            mkdir -p "$base/mig"
            for db in hearthminds_db $(ai_names "$n" | sed 's/\([^,]*\)/\1_db/g' | tr , ' '); do
                "$BIN/hm-migrate" up --sql --config "$cfg" --database "$db" >"$base/mig/$db.sql" 2>>"$OUT"
            done
        fi
        timed "$BIN/hm-migrations" --config "$cfg" >>"$WORK/s-mig"
        timed "$BIN/hm-databases" --config "$cfg" >>"$WORK/s-dbc"
        timed "$BIN/hm-migrations" --config "$cfg" >>"$WORK/s-migc"
        reset_cluster
        timed baseline_databases "$base" >>"$WORK/s-bdb"
        timed baseline_migrations "$base/mig" >>"$WORK/s-bmig"
    done
    db=$(median <"$WORK/s-db"); mig=$(median <"$WORK/s-mig"); bdb=$(median <"$WORK/s-bdb"); bmig=$(median <"$WORK/s-bmig")
    both=$(paste -d' ' "$WORK/s-db" "$WORK/s-mig" | awk '{ printf "%.1f\n", $1 + $2 }' | median)
    bboth=$(paste -d' ' "$WORK/s-bdb" "$WORK/s-bmig" | awk '{ printf "%.1f\n", $1 + $2 }' | median)
    bothc=$(paste -d' ' "$WORK/s-dbc" "$WORK/s-migc" | awk '{ printf "%.1f\n", $1 + $2 }' | median)
    emit "| $n | $db | $bdb | $(ratio "$db" "$bdb") | $mig | $bmig | $(ratio "$mig" "$bmig") | $both | $bboth | **$(ratio "$both" "$bboth")** | $(median <"$WORK/s-dbc") | $(median <"$WORK/s-migc") | $bothc |"
    echo "$n $both $bboth $(median <"$WORK/s-dbc") $(median <"$WORK/s-migc")" >>"$WORK/scale-summary"
    SCALE_N=$n SCALE_BOTH=$both SCALE_PSQL=$bboth SCALE_CONV=$bothc
done
emit ""
python3 - "$WORK/scale-summary" <<'PY' | tee -a "$RESULTS"
import sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
if len(rows) >= 2:
    (n0, a0, b0, c0, m0), (n1, a1, b1, c1, m1) = rows[-2], rows[-1]
    per = (a1 - a0) / (n1 - n0)
    print("Growth: from N=%d to N=%d the two steps take %.1f ms more per database (psql %.1f ms); "
          "a converged rerun %.2f ms (databases) and %.2f ms (migrations) more per database. "
          "At N=%d the steps are %.2fx the psql baseline (target within 1.3x)."
          % (n0, n1, per, (b1 - b0) / (n1 - n0), (c1 - c0) / (n1 - n0), (m1 - m0) / (n1 - n0), n1, a1 / b1))
PY
emit ""

emit "Load average $load2 at the start of the scale runs, $(load) at the end."
emit ""

# ---------------------------------------------------------------- the targets of issue 15
met() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { if (dir == "<=") print (v <= t) ? "met" : "missed"; else print (v >= t) ? "met" : "missed" }'; }
emit "## Targets (issue 15)"
emit ""
emit "| measure | measured | target | |"
emit "| --- | ---: | ---: | --- |"
emit "| converged \`./install.sh\`, two AIs | $(sec "$WALL") s | at most 0.30 s | $(met "$WALL" 300 "<=") |"
emit "| Ansible / install.sh, converged, same run | $(ratio "$ANSIBLE_MS" "$WALL")x | at least 30x | $(met "$(ratio "$ANSIBLE_MS" "$WALL")" 30 ">=") |"
if [ -n "${SCALE_N:-}" ]; then
    emit "| converged databases + migrations, $SCALE_N AIs | $(sec "$SCALE_CONV") s | at most 1.5 s | $(met "$SCALE_CONV" 1500 "<=") |"
    emit "| first run, databases + migrations, $SCALE_N AIs | $(sec "$SCALE_BOTH") s (psql $(sec "$SCALE_PSQL") s) | at most 30 s | $(met "$SCALE_BOTH" 30000 "<=") |"
fi
emit "| Alembic the seed's way / hm-migrate, 10 dbs, empty -> head | $(ratio "$seed_mig" "$hm_mig")x ($(sec "$hm_mig") s against $(sec "$seed_mig") s) | at least 15x (at most 0.6 s) | $(met "$(ratio "$seed_mig" "$hm_mig")" 15 ">=") |"
emit "| overhead above the server's work, 10 dbs | $(sec "$hm1_over") s (Alembic $(sec "$al_over") s looping, $(sec "$seed_over") s the seed's way) | at most 0.05 s | $(met "$hm1_over" 50 "<=") |"
emit "| tarball | $(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }') | at most 8 MiB | $(met "$size" 8388608 "<=") |"
emit "| \`--help\` start-up | $start_ms ms | at most 15 ms | $(met "$start_ms" 15 "<=") |"
emit ""

{ cat "$RESULTS"; if [ -s "$RECALL_SECTION" ]; then echo ""; cat "$RECALL_SECTION"; fi; } >"$OUTPUT"
say ""
say "bench: written to $OUTPUT"
