"""Recall and latency of memory_shards' vector index, measured as an AI's application sees it.

Called by bench/recall.sh (`sudo make bench-recall`), once per data set, on a host that the suite
set up (install.sh): it loads the data into the AI's own database through psycopg, logged in as
the AI with its password, as the AI's application would; runs the suite's own commands where an
operator would (`./install.sh` rerun, hm-migrate for the HNSW option); and measures, for each
configuration, recall@10 against an exact scan and the latency of a query.

recall@10 of a query: of the 10 rows the index returns, how many are among the exact top 10 (a
row as near as the exact 10th counts: ties). Exact top 10: the same query with index scans off
(a sequential scan computing every distance). Latency: the client's wall time of one query
(`SELECT id, embedding <=> q FROM memory_shards ORDER BY embedding <=> q LIMIT 10`, the query
vector a parameter), median and 95th percentile over the queries, after one warm-up pass.
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import time

import numpy as np
import psycopg

QUERY = "SELECT id, embedding <=> %s::vector AS d FROM memory_shards ORDER BY embedding <=> %s::vector LIMIT 10"


def log(*args):
    print("recall:", *args, file=sys.stderr, flush=True)


def vector_text(v):
    return "[" + ",".join("%.6g" % x for x in v) + "]"


# ---------------------------------------------------------------- data sets


def clustered(rows, dim, clusters, queries, seed):
    """Gaussian clusters: centers N(0, 1), points center + N(0, 1) per dimension (in high
    dimensions: a point's cosine to its own center about 0.7, to other clusters about 0):
    yields (chunk of vectors) for the rows, and the queries (fresh points of the same clusters)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)

    def chunks():
        left = rows
        while left > 0:
            n = min(left, 5000)
            labels = rng.integers(0, clusters, n)
            yield centers[labels] + rng.standard_normal((n, dim)).astype(np.float32)
            left -= n

    labels = rng.integers(0, clusters, queries)
    q = centers[labels] + rng.standard_normal((queries, dim)).astype(np.float32)
    return chunks(), q


def digits(dim, queries, seed):
    """scikit-learn's bundled handwritten digits (1,797 x 64, shipped inside the package: no
    download), zero-padded to the column's dimension (cosine distances are unchanged by zero
    padding); `queries` of them, chosen at random, are held out as the queries."""
    from sklearn.datasets import load_digits

    data = load_digits().data.astype(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    held, kept = data[order[:queries]], data[order[queries:]]
    pad = lambda a: np.hstack([a, np.zeros((len(a), dim - a.shape[1]), dtype=np.float32)])
    return iter([pad(kept)]), pad(held)


# ---------------------------------------------------------------- loading


def copy_binary(conn, chunks, dim):
    """COPY memory_shards (content, embedding) FROM STDIN in binary: pgvector's binary form of a
    vector is int16 dim, int16 0, then dim float4, big-endian."""
    total = 0
    with conn.cursor() as cur:
        with cur.copy("COPY memory_shards (content, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))
            for chunk in chunks:
                n = len(chunk)
                content = [("shard %d" % (total + i)).encode() for i in range(n)]
                vec = np.ascontiguousarray(chunk, dtype=">f4")
                head = struct.pack("!hh", dim, 0)
                buf = bytearray()
                for i in range(n):
                    c = content[i]
                    buf += struct.pack("!hi", 2, len(c)) + c + struct.pack("!i", 4 + 4 * dim) + head + vec[i].tobytes()
                copy.write(bytes(buf))
                total += n
            copy.write(struct.pack("!h", -1))
    conn.commit()
    return total


# ---------------------------------------------------------------- measuring


def run_queries(conn, queries, settings=None, exact=False):
    """(results, latencies ms): results[i] = [(id, distance)] of query i."""
    with conn.cursor() as cur:
        if exact:
            cur.execute("SET enable_indexscan = off")
            cur.execute("SET enable_bitmapscan = off")
        for name, value in (settings or {}).items():
            cur.execute("SELECT set_config(%s, %s, false)", (name, str(value)))
        texts = [vector_text(q) for q in queries]
        for t in texts[: min(5, len(texts))]:  # warm-up
            cur.execute(QUERY, (t, t))
            cur.fetchall()
        results, ms = [], []
        for t in texts:
            t0 = time.perf_counter()
            cur.execute(QUERY, (t, t))
            rows = cur.fetchall()
            ms.append((time.perf_counter() - t0) * 1000)
            results.append(rows)
        if exact:
            cur.execute("RESET enable_indexscan")
            cur.execute("RESET enable_bitmapscan")
        for name in settings or {}:
            cur.execute("RESET " + name)  # our own names (ivfflat.probes, hnsw.ef_search)
    conn.commit()
    return results, ms


def uses_index(conn, index, query):
    t = vector_text(query)
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + QUERY, (t, t))
        plan = "\n".join(r[0] for r in cur.fetchall())
    conn.commit()
    return index in plan


def recall(approx, exact):
    total = 0.0
    for got, want in zip(approx, exact):
        if len(want) < 10:
            continue
        tenth = want[9][1]
        ids = {r[0] for r in want}
        total += sum(1 for r in got if r[0] in ids or r[1] <= tenth + 1e-6) / 10.0
    return total / len(exact)


def pct(ms, p):
    s = sorted(ms)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def show(conn, name):
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting(%s, true)", (name,))
        value = cur.fetchone()[0]
    conn.commit()
    return value


def index_info(conn):
    with conn.cursor() as cur:
        cur.execute(
            """SELECT c.relname, am.amname, array_to_string(c.reloptions, ','), obj_description(c.oid, 'pg_class')
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am am ON am.oid = c.relam
               WHERE x.indrelid = 'memory_shards'::regclass AND am.amname IN ('ivfflat', 'hnsw')"""
        )
        row = cur.fetchone()
    conn.commit()
    return row


# ---------------------------------------------------------------- the procedure


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True, help="the AI's connection (password from PGPASSFILE)")
    ap.add_argument("--dataset", required=True, choices=["clustered", "digits"])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--clusters", type=int, default=200)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--rerun", required=True, help="shell command: the operator's ./install.sh rerun")
    ap.add_argument("--lists100", required=True, help="shell command: the vector-index step with PGVECTOR_IVFFLAT_LISTS=100")
    ap.add_argument("--hnsw", default="", help="shell command: switch this database to HNSW (empty: skip)")
    ap.add_argument("--out", required=True, help="JSON lines, one per configuration")
    a = ap.parse_args()

    conn = psycopg.connect(a.dsn, autocommit=False)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM memory_shards")
        assert cur.fetchone()[0] == 0, "memory_shards must be empty (a fresh AI database)"
    conn.commit()
    if a.dataset == "clustered":
        chunks, queries = clustered(a.rows, a.dim, a.clusters, a.queries, a.seed)
        label = "clustered %d x %d (%d clusters)" % (a.rows, a.dim, a.clusters)
    else:
        chunks, queries = digits(a.dim, a.queries, a.seed)
        label = "scikit-learn digits (1,797 x 64, %d held out as queries, zero-padded to %d)" % (a.queries, a.dim)
    t0 = time.perf_counter()
    rows = copy_binary(conn, chunks, a.dim)
    load_s = time.perf_counter() - t0
    log("%s: %d rows loaded by the AI in %.1f s" % (label, rows, load_s))
    with conn.cursor() as cur:
        cur.execute("ANALYZE memory_shards")
    conn.commit()

    out = open(a.out, "a")

    def record(config, approx, ms, exact, extra=None):
        r = {
            "dataset": label, "rows": rows, "config": config, "recall": round(recall(approx, exact), 4),
            "median_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2),
            "index": index_info(conn),
        }
        r.update(extra or {})
        out.write(json.dumps(r) + "\n")
        out.flush()
        log("%-62s recall@10 %.3f  median %.2f ms  p95 %.2f ms" % (config, r["recall"], r["median_ms"], r["p95_ms"]))

    exact, exact_ms = run_queries(conn, queries, exact=True)
    out.write(json.dumps({"dataset": label, "rows": rows, "config": "exact scan (no index)", "recall": 1.0,
                          "median_ms": round(statistics.median(exact_ms), 2), "p95_ms": round(pct(exact_ms, 95), 2),
                          "load_s": round(load_s, 1)}) + "\n")
    log("%-62s median %.2f ms" % ("exact scan", statistics.median(exact_ms)))

    # Before the rerun: the index 0003 built on the empty table (lists 100), as the database's
    # probes stand (auto: 10), and with pgvector's default of 1 (what the host had before).
    assert uses_index(conn, "memory_shards_embedding_ivfflat_idx", queries[0])
    approx, ms = run_queries(conn, queries, {"ivfflat.probes": 1})
    record("before the rerun: 0003's index (built empty, lists 100), probes 1 (the old default)", approx, ms, exact)
    approx, ms = run_queries(conn, queries)
    record("before the rerun: 0003's index (built empty, lists 100), probes %s (auto)" % show(conn, "ivfflat.probes"),
           approx, ms, exact)

    # The operator reruns ./install.sh: the vector-index step trains the index.
    t0 = time.perf_counter()
    subprocess.run(a.rerun, shell=True, check=True, stdout=sys.stderr)
    rerun_s = time.perf_counter() - t0
    conn.close()
    conn = psycopg.connect(a.dsn, autocommit=False)  # a new session: the database's new probes
    info = index_info(conn)
    log("after the rerun (%.1f s): %s" % (rerun_s, info))
    probes = show(conn, "ivfflat.probes")
    approx, ms = run_queries(conn, queries)
    record("**suite defaults** after the rerun: trained (%s), probes %s (auto)" % (info[2], probes), approx, ms, exact,
           {"rerun_s": round(rerun_s, 1), "default": True})
    approx, ms = run_queries(conn, queries, {"ivfflat.probes": 1})
    record("the same trained index (%s), probes 1" % info[2], approx, ms, exact, {"probes1": True})

    # Option: fixed lists 100 (the seed's number), trained on the rows, probes auto (10).
    t0 = time.perf_counter()
    subprocess.run(a.lists100, shell=True, check=True, stdout=sys.stderr)
    lists100_s = time.perf_counter() - t0
    conn.close()
    conn = psycopg.connect(a.dsn, autocommit=False)
    info = index_info(conn)
    approx, ms = run_queries(conn, queries)
    record("PGVECTOR_IVFFLAT_LISTS=100, trained (%s), probes %s (auto)" % (info[2], show(conn, "ivfflat.probes")),
           approx, ms, exact, {"rebuild_s": round(lists100_s, 1)})
    approx, ms = run_queries(conn, queries, {"ivfflat.probes": 1})
    record("PGVECTOR_IVFFLAT_LISTS=100, trained, probes 1", approx, ms, exact)

    # Option: HNSW (revision 0007), ef_search as the database has it (40) and 100.
    if a.hnsw:
        t0 = time.perf_counter()
        subprocess.run(a.hnsw, shell=True, check=True, stdout=sys.stderr)
        hnsw_s = time.perf_counter() - t0
        conn.close()
        conn = psycopg.connect(a.dsn, autocommit=False)
        assert uses_index(conn, "memory_shards_embedding_hnsw_idx", queries[0])
        info = index_info(conn)
        approx, ms = run_queries(conn, queries)
        record("PGVECTOR_INDEX=hnsw (%s), ef_search %s" % (info[2], show(conn, "hnsw.ef_search")), approx, ms, exact,
               {"build_s": round(hnsw_s, 1)})
        approx, ms = run_queries(conn, queries, {"hnsw.ef_search": 100})
        record("PGVECTOR_INDEX=hnsw (%s), ef_search 100" % info[2], approx, ms, exact)
    conn.close()


if __name__ == "__main__":
    main()
