#!/usr/bin/env python3
"""HearthMinds bootstrap: the memory workload benchmark (issue 24). `sudo bench/vectors.py`.

On a Debian 12 machine as root, with PostgreSQL 15, pgvector, pgbench and python3-numpy:

  * a cluster of its own (hmvec<pid>, a free port) made and configured by the suite's own
    postgres step (hm-postgres, from .build/debug or BENCH_BIN): once sized to the machine
    (PG_TUNE=true, the default) and once with PostgreSQL's defaults (PG_TUNE=false), dropped
    at the end;
  * the data: BENCH_ROWS (500000) embeddings of 768 dimensions, clustered synthetic: 1000
    cluster centres in a 48-dimensional latent space (N(0,1)), each row its centre plus
    N(0, 0.35^2) per latent dimension, mapped to 768 dimensions by one fixed random matrix,
    plus N(0, 0.02^2) per dimension, L2-normalised (real text embeddings are normalised and of
    low intrinsic dimension); 200 query vectors drawn the same way; exact top-10 by cosine
    computed with numpy (the ground truth);
  * per server configuration (tuned, defaults) and index (IVFFlat with the suite's auto lists
    and probes, HNSW with the suite's m 16, ef_construction 64, ef_search 40): the build time,
    table + index bytes, recall@10 of the 200 queries at the suite's probes/ef_search (and, if
    below 0.95, at the first larger value that reaches it), then pgbench for BENCH_SECONDS
    (60): 2 clients, k-NN top-10 (weight 9) mixed with inserts (weight 1): queries/s,
    p50/p95 latency, inserts/s;
  * under the tuned server: halfvec (a halfvec(768) copy of the table, HNSW) against vector,
    and binary quantization (an HNSW index on binary_quantize(embedding)::bit(768)) with
    re-ranking of BENCH_RERANK (100) candidates in full precision.

Other phases (BENCH_PHASES, comma-separated): `revision-0008` (the suite's own revision 0008,
PGVECTOR_STORAGE, rendered from Migrations/ as hm-migrate renders it, run up and down on a
memory_shards table of the rows with 0007's HNSW index, on the tuned server: the time of each
conversion, which holds memory_shards' ACCESS EXCLUSIVE lock, and the bytes after it),
`ivf-suite-defaults` (IVFFlat on the defaults with
the training memory the vector-index step sets), `workers` (IVFFlat and HNSW builds on the tuned
server at each max_parallel_maintenance_workers of BENCH_WORKERS, "1,2").

A build under the defaults that passes BENCH_DEFAULT_CAP seconds (1800) is cut there and
reported as "more than" (a lower bound of the speed-up). Everything runs under nice; the load
average is recorded at each phase. Results: a Markdown section written to BENCH_OUT
(bench/RESULTS-vectors.md), meant to be pasted into bench/RESULTS.md.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ROWS = int(os.environ.get("BENCH_ROWS", "500000"))
DIM = 768
LATENT = 48
CENTRES = 1000
QUERIES = 200
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
RERANK = int(os.environ.get("BENCH_RERANK", "100"))
DEFAULT_CAP = int(os.environ.get("BENCH_DEFAULT_CAP", "1800"))
PHASES = os.environ.get("BENCH_PHASES", "tuned,halfvec,binary,defaults").split(",")
BIN = os.environ.get("BENCH_BIN", os.path.join(REPO, ".build", "debug"))
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "RESULTS-vectors.md"))
CLUSTER = "hmvec%d" % os.getpid()
SOCKET = "/var/run/postgresql"
DROPIN = "/etc/postgresql-common/createcluster.d/hearthminds.conf"

WORK = tempfile.mkdtemp(prefix="hm-vectors.", dir="/var/tmp")
os.chmod(WORK, 0o755)
results = {"phases": [], "loads": []}
lines = []


def say(*parts):
    text = " ".join(str(p) for p in parts)
    print(time.strftime("%H:%M:%S"), text, flush=True)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port(start=55800):
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.split().count(str(port)) == 0:
            return port
    raise SystemExit("no free port")


PORT = free_port()
CONFIG = os.path.join(WORK, "hearthminds.env")


def hm_postgres(tune):
    with open(CONFIG, "w") as f:
        f.write("PG_CLUSTER_NAME=%s\nPOSTGRES_PORT=%d\nHEARTHMINDS_LOG=%s/bootstrap.jsonl\nPG_TUNE=%s\n"
                % (CLUSTER, PORT, WORK, "true" if tune else "false"))
    os.chmod(CONFIG, 0o600)
    command = os.path.join(BIN, "hm-postgres")
    if not os.path.exists(command):
        # the multi-call executable, run by the step's name
        command = os.path.join(WORK, "hm-postgres")
        if not os.path.lexists(command):
            os.symlink(os.path.join(BIN, "hearthminds"), command)
    r = subprocess.run([command, "--config", CONFIG], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("hm-postgres failed:\n" + r.stdout + r.stderr)
    return r.stdout


def psql(sql, db="bench", timeout=None, check=True):
    r = subprocess.run(
        ["nice", "runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
         "-h", SOCKET, "-p", str(PORT), "-d", db],
        input=sql, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("psql: " + r.stderr[-2000:])
    return r


def timed_sql(sql, cap=None):
    """Runs sql; (seconds, finished) with statement_timeout `cap` seconds when given."""
    pre = "SET statement_timeout = %d;\n" % (cap * 1000) if cap else ""
    t0 = time.time()
    r = psql(pre + sql, check=False)
    took = time.time() - t0
    if r.returncode != 0:
        if "statement timeout" in r.stderr:
            return took, False
        # (pgvector refuses an IVFFlat build whose sample does not fit maintenance_work_mem)
        if "ERROR:  memory required is" in r.stderr:
            return took, r.stderr.strip().splitlines()[-1]
        raise RuntimeError("psql: " + r.stderr[-2000:])
    return took, True


def show(names):
    rows = psql(db="postgres", sql="SELECT name || '=' || current_setting(name) FROM unnest(ARRAY[%s]) name"
                % ",".join("'%s'" % n for n in names)).stdout.split()
    return dict(r.split("=", 1) for r in rows)


TUNED_NAMES = ["shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem",
               "max_worker_processes", "max_parallel_workers", "max_parallel_maintenance_workers",
               "random_page_cost", "max_wal_size", "checkpoint_timeout"]


# ------------------------------------------------------------------ data
def make_data():
    rng = np.random.default_rng(24)
    centres = rng.standard_normal((CENTRES, LATENT)).astype(np.float32)
    mapping = (rng.standard_normal((LATENT, DIM)) / np.sqrt(LATENT)).astype(np.float32)

    def draw(n):
        which = rng.integers(0, CENTRES, n)
        latent = centres[which] + 0.35 * rng.standard_normal((n, LATENT)).astype(np.float32)
        x = latent @ mapping + 0.02 * rng.standard_normal((n, DIM)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    chunks = []
    for start in range(0, ROWS, 50000):
        chunks.append(draw(min(50000, ROWS - start)))
    base = np.concatenate(chunks)
    queries = draw(QUERIES)
    return base, queries


def copy_binary(table, column, vectors, first_id=1, half=False):
    """COPY ... FROM STDIN (FORMAT binary): pgvector's binary form (int16 dim, int16 unused,
    then float4 big-endian; halfvec: float2)."""
    n = len(vectors)
    kind = ">f2" if half else ">f4"
    width = 2 if half else 4
    row = np.dtype([("fields", ">i2"), ("idlen", ">i4"), ("id", ">i8"), ("vlen", ">i4"),
                    ("dim", ">i2"), ("unused", ">i2"), ("v", kind, (DIM,))])
    proc = subprocess.Popen(
        ["nice", "runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCKET,
         "-p", str(PORT), "-d", "bench", "-c", "COPY %s (id, %s) FROM STDIN (FORMAT binary)" % (table, column)],
        stdin=subprocess.PIPE)
    proc.stdin.write(b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    for start in range(0, n, 20000):
        part = vectors[start:start + 20000]
        rec = np.zeros(len(part), dtype=row)
        rec["fields"] = 2
        rec["idlen"] = 8
        rec["id"] = np.arange(first_id + start, first_id + start + len(part))
        rec["vlen"] = 4 + width * DIM
        rec["dim"] = DIM
        rec["v"] = part.astype(kind)
        proc.stdin.write(rec.tobytes())
    proc.stdin.write((-1).to_bytes(2, "big", signed=True))
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("COPY into %s failed" % table)


def vector_literal(v):
    return "[" + ",".join("%.6f" % x for x in v) + "]"


# ------------------------------------------------------------------ measures
def recall(query_sql, setting, truth):
    """query_sql: the k-NN of the row q of bench_queries, as a subquery text with q.v."""
    sql = ("SET %s;\nSELECT q.qid, (SELECT string_agg(id::text, ',') FROM (%s) s) FROM bench_queries q ORDER BY q.qid;"
           % (setting, query_sql))
    out = psql(sql).stdout.strip().split("\n")
    hits = 0
    t0 = time.time()
    for line in out:
        qid, ids = line.split("|")
        got = set(int(x) for x in ids.split(",")) if ids else set()
        hits += len(got & set(truth[int(qid) - 1]))
    return hits / (10.0 * len(truth))


def explain(query_sql, setting):
    sql = "SET %s;\nEXPLAIN (COSTS OFF) SELECT * FROM (%s) s;" % (
        setting, query_sql.replace("q.v", "(SELECT v FROM bench_queries WHERE qid = 1)"))
    return psql(sql).stdout


def pgbench(query_sql, setting, label):
    """2 clients, SECONDS: the k-NN (weight 9) and an insert (weight 1); per-statement latencies
    from the transaction log."""
    d = tempfile.mkdtemp(dir=WORK)
    os.chmod(d, 0o777)
    q = os.path.join(d, "query.sql")
    i = os.path.join(d, "insert.sql")
    with open(q, "w") as f:
        f.write("\\set qid random(1, %d)\n%s;\n" % (QUERIES, query_sql.replace("q.v", "(SELECT v FROM bench_queries WHERE qid = :qid)")))
    with open(i, "w") as f:
        f.write("\\set qid random(1, %d)\n%s;\n" % (QUERIES, INSERT_SQL[label]))
    for p in (q, i):
        os.chmod(p, 0o644)
    env = dict(os.environ, PGOPTIONS="-c " + setting.replace(" = ", "=").replace(" ", ""))
    r = subprocess.run(
        ["nice", "runuser", "-u", "postgres", "--preserve-environment", "--", "pgbench", "-n", "-h", SOCKET,
         "-p", str(PORT), "-c", "2", "-j", "2", "-T", str(SECONDS), "-l", "--log-prefix", d + "/log",
         "-f", q + "@9", "-f", i + "@1", "bench"],
        capture_output=True, text=True, env=env, cwd=d)
    if r.returncode != 0:
        raise RuntimeError("pgbench: " + r.stderr[-2000:])
    lat = {0: [], 1: []}
    for name in os.listdir(d):
        if name.startswith("log"):
            with open(os.path.join(d, name)) as f:
                for line in f:
                    parts = line.split()
                    lat[int(parts[3])].append(int(parts[2]) / 1000.0)
    qs = np.array(lat[0])
    return {
        "qps": len(qs) / SECONDS, "p50": float(np.percentile(qs, 50)) if len(qs) else None,
        "p95": float(np.percentile(qs, 95)) if len(qs) else None, "ips": len(lat[1]) / SECONDS,
    }


INSERT_SQL = {
    "vector": "INSERT INTO items (embedding) SELECT v FROM bench_queries WHERE qid = :qid",
    "halfvec": "INSERT INTO items_half (embedding) SELECT v::halfvec(768) FROM bench_queries WHERE qid = :qid",
}


def render(path, values):
    """A revision file rendered as MigrationTemplate.swift does: {{NAME}} replaced by its value,
    lines between {{#if NAME}} and {{/if}} kept only when NAME is true."""
    out, keep = [], []
    for line in open(path).read().split("\n"):
        t = line.strip()
        if t.startswith("{{#if "):
            keep.append(values[t[6:-2].strip()])
            continue
        if t == "{{/if}}":
            keep.pop()
            continue
        if all(keep):
            out.append(re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(values[m.group(1)]), line))
    return "\n".join(out)


def revision_0008():
    """0008 up and down for halfvec and binary on memory_shards (the rows of items) with 0007's index."""
    psql("CREATE TABLE memory_shards (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, content text NOT NULL, "
         "embedding vector(%d), created_at timestamptz NOT NULL DEFAULT now(), source text, "
         "metadata jsonb NOT NULL DEFAULT '{}'::jsonb);"
         "INSERT INTO memory_shards (content, embedding) SELECT 'row ' || id, embedding FROM items WHERE id <= %d ORDER BY id;"
         "VACUUM ANALYZE memory_shards" % (DIM, ROWS))
    took, _ = timed_sql("CREATE INDEX memory_shards_embedding_hnsw_idx ON memory_shards USING hnsw (embedding vector_cosine_ops) "
                        "WITH (m = 16, ef_construction = 64)")
    rows = [{"what": "0007's HNSW index (vector), built", "s": took, "bytes": sizes("memory_shards")}]
    base = {"EMBEDDING_DIM": DIM, "PGVECTOR_IVFFLAT_LISTS": 100, "PGVECTOR_ENABLE_IVFFLAT": True, "PGVECTOR_HNSW": True,
            "PGVECTOR_HNSW_M": 16, "PGVECTOR_HNSW_EF_CONSTRUCTION": 64, "PGVECTOR_IVFFLAT_FITS": True,
            "PGVECTOR_HNSW_FITS": True, "PGVECTOR_IVFFLAT_INDEX": False, "PGVECTOR_IVFFLAT_INDEX_FITS": False,
            "PGVECTOR_STORAGE_VECTOR": False, "PGVECTOR_RERANK": RERANK}
    for kind in ["halfvec", "binary"]:
        values = dict(base, PGVECTOR_STORAGE_HALFVEC=kind == "halfvec", PGVECTOR_STORAGE_BINARY=kind == "binary")
        for direction in ["up", "down"]:
            sql = render(os.path.join(REPO, "Migrations", "0008_vector_storage.%s.sql" % direction), values)
            say("0008 %s, %s (%s)" % (direction, kind, load()))
            psql("CHECKPOINT")
            took, _ = timed_sql("SET search_path = public;\nBEGIN;\n%s\nCOMMIT;" % sql)
            rows.append({"what": "0008 %s, PGVECTOR_STORAGE=%s" % (direction, kind), "s": took,
                         "bytes": sizes("memory_shards"), "load": load()})
            write()
    results["revision_0008"] = rows
    psql("DROP TABLE memory_shards")


def sizes(table):
    return int(psql("SELECT pg_total_relation_size('%s')" % table).stdout.strip()), int(
        psql("SELECT pg_table_size('%s')" % table).stdout.strip())


def measure(name, config, table, build_sql, query_for, settings, truth, cap=None, label="vector", defaults_too=False):
    """Builds an index, then recall at each setting until one reaches 0.95, then pgbench there;
    with defaults_too, the same index and setting then served by the server on PostgreSQL's
    defaults (restarted by hm-postgres with PG_TUNE=false, warmed by a recall pass), then back."""
    say("%s: building under %s (%s)" % (name, config, load()))
    psql("CHECKPOINT")
    took, finished = timed_sql(build_sql, cap)
    row = {"name": name, "config": config, "build_s": took, "finished": finished, "load": load()}
    if not finished:
        say("%s: build cut at %d s" % (name, cap))
        results["phases"].append(row)
        return row
    psql("ANALYZE %s" % table)
    total, heap = sizes(table)
    row.update({"bytes_total": total, "bytes_table": heap})
    say("%s: built in %.1f s; table + index %d bytes (table %d)" % (name, took, total, heap))
    tried = []
    for setting in settings:
        r = recall(query_for, setting, truth)
        tried.append((setting, r))
        say("%s: recall@10 %.4f at %s" % (name, r, setting))
        if r >= 0.95:
            break
    row["recalls"] = tried
    setting = tried[-1][0]
    row["plan"] = explain(query_for, setting)
    row["bench"] = pgbench(query_for, setting, label)
    row["bench_setting"] = setting
    psql("DELETE FROM %s WHERE id > %d; VACUUM %s" % (table, ROWS, table))
    say("%s: %s" % (name, json.dumps(row["bench"])))
    if defaults_too:
        hm_postgres(False)
        row["recall_defaults"] = recall(query_for, setting, truth)
        row["bench_defaults"] = pgbench(query_for, setting, label)
        row["load_defaults"] = load()
        psql("DELETE FROM %s WHERE id > %d; VACUUM %s" % (table, ROWS, table))
        say("%s on defaults: %s" % (name, json.dumps(row["bench_defaults"])))
        hm_postgres(True)
    results["phases"].append(row)
    write()
    return row


def build_only(name, config, build_sql, index, cap):
    say("%s: building under %s (%s)" % (name, config, load()))
    psql("CHECKPOINT")
    took, finished = timed_sql(build_sql, cap)
    results["phases"].append({"name": name, "config": config, "build_s": took, "finished": finished, "load": load(),
                              "build_only": True})
    say("%s under %s: %.1f s %s" % (name, config, took, finished))
    write()
    psql("DROP INDEX IF EXISTS %s" % index)


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench/vectors.py runs as root (a cluster of its own, made by hm-postgres)")
    for tool in ["pgbench", "psql", "pg_lsclusters", "runuser"]:
        if not shutil.which(tool):
            raise SystemExit(tool + " is missing")
    had_dropin = os.path.exists(DROPIN)
    try:
        run(had_dropin)
    finally:
        subprocess.run(["pg_dropcluster", "--stop", "15", CLUSTER], capture_output=True)
        if not had_dropin and os.path.exists(DROPIN):
            os.remove(DROPIN)
        shutil.rmtree(WORK, ignore_errors=True)


def run(had_dropin):
    t_start = time.time()
    results["start"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["loads"].append(("start", load()))
    say("cluster 15/%s on port %d; tuned by hm-postgres" % (CLUSTER, PORT))
    hm_postgres(True)
    results["tuned_settings"] = show(TUNED_NAMES)
    results["hm_postgres"] = hm_postgres(True)  # (a rerun: changes nothing)
    psql("CREATE DATABASE bench", db="postgres")
    psql("CREATE EXTENSION vector")
    results["pgvector"] = psql("SELECT extversion FROM pg_extension WHERE extname = 'vector'").stdout.strip()
    say("data: %d x %d (%s)" % (ROWS, DIM, load()))
    base, queries = make_data()
    psql("CREATE TABLE items (id bigint GENERATED BY DEFAULT AS IDENTITY (START %d) PRIMARY KEY, embedding vector(%d) NOT NULL);"
         "CREATE TABLE bench_queries (qid int PRIMARY KEY, v vector(%d) NOT NULL);" % (ROWS + 1, DIM, DIM))
    t0 = time.time()
    copy_binary("items", "embedding", base)
    results["load_s"] = time.time() - t0
    psql("INSERT INTO bench_queries VALUES " + ",".join(
        "(%d, '%s')" % (i + 1, vector_literal(v)) for i, v in enumerate(queries)))
    psql("VACUUM ANALYZE items; VACUUM ANALYZE bench_queries")
    say("ground truth (%s)" % load())
    truth = []
    for q in queries:
        scores = base @ q
        top = np.argpartition(-scores, 10)[:10]
        truth.append(list((top + 1).tolist()))
    del base

    lists = ROWS // 1000 if ROWS <= 1_000_000 else int(ROWS ** 0.5)
    probes = int(np.ceil(lists ** 0.5))
    results["lists"], results["probes"] = lists, probes
    knn = "SELECT id FROM items ORDER BY embedding <=> q.v LIMIT 10"
    ivf_settings = ["ivfflat.probes = %d" % p for p in sorted(set([probes, 2 * probes, 3 * probes, 4 * probes, 6 * probes]))]
    hnsw_settings = ["hnsw.ef_search = %d" % e for e in [40, 64, 100, 160, 250, 400]]
    ivf_build = "CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = %d)" % lists
    hnsw_build = "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"

    if "tuned" in PHASES:
        both = "defaults" in PHASES  # (the searches on the defaults: the same index, the server restarted)
        measure("IVFFlat", "tuned", "items", ivf_build, knn, ivf_settings, truth, defaults_too=both)
        psql("DROP INDEX items_ivf")
        measure("HNSW", "tuned", "items", hnsw_build, knn, hnsw_settings, truth, defaults_too=both)
        psql("DROP INDEX items_hnsw")
        results["loads"].append(("after tuned", load()))

    if "defaults" in PHASES:
        # Builds on PostgreSQL's defaults first (the server restarted with PG_TUNE=false).
        hm_postgres(False)
        results["default_settings"] = show(TUNED_NAMES)
        build_only("IVFFlat", "defaults", ivf_build, "items_ivf", DEFAULT_CAP)
        build_only("HNSW", "defaults", hnsw_build, "items_hnsw", DEFAULT_CAP)
        hm_postgres(True)
        results["loads"].append(("after the defaults' builds", load()))

    if "ivf-suite-defaults" in PHASES:
        # What hm-vector-index does on a server of PostgreSQL's defaults: its training raises
        # maintenance_work_mem for its own session to what pgvector's sample needs
        # (VectorIndex.trainingMemoryMB), where a plain CREATE INDEX is refused.
        samples = min(ROWS, 50 * lists)
        memory = max(64, (samples + 4 * lists) * (4 * DIM + 16) // (1024 * 1024) * 3 // 2 + 64)
        hm_postgres(False)
        results["default_settings"] = show(TUNED_NAMES)
        build_only("IVFFlat (the suite's training memory, %dMB)" % memory, "defaults",
                   "SET maintenance_work_mem = '%dMB';\n%s" % (memory, ivf_build), "items_ivf", DEFAULT_CAP)
        hm_postgres(True)
        if "tuned" not in PHASES:  # (the tuned build beside it, in the same run)
            build_only("IVFFlat", "tuned", ivf_build, "items_ivf", None)

    if "workers" in PHASES:
        # max_parallel_maintenance_workers: the tuned server's auto against other counts, the
        # same builds one after the other in one session each (BENCH_WORKERS, "1,2").
        for workers in [int(w) for w in os.environ.get("BENCH_WORKERS", "1,2").split(",")]:
            for name, build, index in [("IVFFlat", ivf_build, "items_ivf"), ("HNSW", hnsw_build, "items_hnsw")]:
                build_only("%s, max_parallel_maintenance_workers %d" % (name, workers), "tuned",
                           "SET max_parallel_maintenance_workers = %d;\n%s" % (workers, build), index, None)
        results["loads"].append(("after the workers' builds", load()))

    if "halfvec" in PHASES:
        psql("CREATE TABLE items_half (id bigint GENERATED BY DEFAULT AS IDENTITY (START %d) PRIMARY KEY, embedding halfvec(%d) NOT NULL);"
             "INSERT INTO items_half SELECT id, embedding::halfvec(%d) FROM items WHERE id <= %d; VACUUM ANALYZE items_half"
             % (ROWS + 1, DIM, DIM, ROWS))
        measure("HNSW halfvec", "tuned", "items_half",
                "CREATE INDEX items_half_hnsw ON items_half USING hnsw (embedding halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)",
                "SELECT id FROM items_half ORDER BY embedding <=> q.v::halfvec(768) LIMIT 10", hnsw_settings, truth,
                label="halfvec")
        psql("DROP TABLE items_half")
        results["loads"].append(("after halfvec", load()))

    if "binary" in PHASES:
        rerank = ("SELECT id FROM (SELECT id, embedding FROM items ORDER BY binary_quantize(embedding)::bit(768) <~> "
                  "binary_quantize(q.v) LIMIT %d) c ORDER BY c.embedding <=> q.v LIMIT 10" % RERANK)
        measure("HNSW binary + re-rank %d" % RERANK, "tuned", "items",
                "CREATE INDEX items_bq ON items USING hnsw ((binary_quantize(embedding)::bit(768)) bit_hamming_ops) WITH (m = 16, ef_construction = 64)",
                rerank, ["hnsw.ef_search = %d" % e for e in [RERANK, 200, 400, 800]], truth)
        psql("DROP INDEX items_bq")
        results["loads"].append(("after binary", load()))

    if "revision-0008" in PHASES:
        revision_0008()
        results["loads"].append(("after revision 0008", load()))

    results["total_s"] = time.time() - t_start
    write()


def write():
    r = results
    r["total_s"] = r.get("total_s") or 0
    out = []
    out.append("## 5. The memory workload (issue 24): tuned against defaults, halfvec, binary quantization\n")
    out.append("Written by `bench/vectors.py` on %s; %d rows x %d dimensions, clustered synthetic (bench/vectors.py "
               "says how), 200 queries, exact top-10 by numpy; pgvector %s; lists %d, probes %d (the suite's auto); "
               "HNSW m 16, ef_construction 64, ef_search 40 (the suite's). pgbench: 2 clients, %d s, k-NN (9) mixed with "
               "inserts (1). Load averages: %s. Total %.0f s.\n"
               % (r["start"], ROWS, DIM, r.get("pgvector"), r.get("lists", 0), r.get("probes", 0), SECONDS,
                  "; ".join("%s %s" % x for x in r["loads"]), r.get("total_s", 0)))
    out.append("| setting | tuned (hm-postgres, PG_TUNE=true) | defaults (PG_TUNE=false) |\n| --- | --- | --- |")
    for n in TUNED_NAMES:
        out.append("| `%s` | %s | %s |" % (n, r.get("tuned_settings", {}).get(n, "-"), r.get("default_settings", {}).get(n, "-")))
    out.append("")
    out.append("Index builds (the server's settings as above):\n")
    out.append("| index | tuned | defaults | speed-up |\n| --- | ---: | ---: | ---: |")
    for name in ["IVFFlat", "HNSW"] + sorted(set(p["name"] for p in r["phases"] if p["name"].startswith("IVFFlat ("))):
        t = [p for p in r["phases"] if p["name"] == name.split(" (")[0] and p["config"] == "tuned"]
        d = [p for p in r["phases"] if p["name"] == name and p["config"] == "defaults"]
        ts = "%.1f s" % t[0]["build_s"] if t else "-"
        if d and isinstance(d[0]["finished"], str):
            ds, up = "refused: `%s`" % d[0]["finished"], "-"
        else:
            ds = ("%.1f s" % d[0]["build_s"] if d[0]["finished"] else "more than %.0f s (cut)" % d[0]["build_s"]) if d else "-"
            up = ("%s%.2fx" % ("" if d[0]["finished"] else "more than ", d[0]["build_s"] / t[0]["build_s"])) if t and d else "-"
        out.append("| %s | %s | %s | %s |" % (name, ts, ds, up))
    out.append("")
    out.append("Searches (the index built on the tuned server; the same index then served by each server):\n")
    out.append("| index | server | table + index | recall@10 at the suite's setting | setting for recall >= 0.95 (recall) | queries/s | p50 ms | p95 ms | inserts/s |")
    out.append("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for p in r["phases"]:
        if p.get("build_only") or not p.get("finished"):
            continue
        first = p["recalls"][0]
        last = p["recalls"][-1]
        for server, b, rec in [("tuned", p["bench"], last[1]), ("defaults", p.get("bench_defaults"), p.get("recall_defaults"))]:
            if not b:
                continue
            out.append("| %s | %s | %.1f MiB | %.4f (%s) | %s (%.4f) | %.1f | %.1f | %.1f | %.1f |" % (
                p["name"], server, p["bytes_total"] / 2**20, first[1], first[0], last[0], rec,
                b["qps"], b["p50"], b["p95"], b["ips"]))
    if r.get("revision_0008"):
        out.append("")
        out.append("Revision 0008 (PGVECTOR_STORAGE) run up and down on memory_shards of these rows with 0007's HNSW index "
                   "(the conversion holds memory_shards' ACCESS EXCLUSIVE lock: searches and writes wait this long):\n")
        out.append("| what | seconds | table + index | table |\n| --- | ---: | ---: | ---: |")
        for x in r["revision_0008"]:
            out.append("| %s | %.1f | %.1f MiB | %.1f MiB |" % (x["what"], x["s"], x["bytes"][0] / 2**20, x["bytes"][1] / 2**20))
    text = "\n".join(out) + "\n"
    with open(OUT, "w") as f:
        f.write(text)
    with open(OUT + ".json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(text)


if __name__ == "__main__":
    main()
