"""The revisions' SQL: Migrations/<id>_*.up.sql rendered with the defaults (EMBEDDING_DIM 1536,
IVFFlat on with 100 lists), the same text hm-migrate runs with the default configuration."""
import glob
import os

VALUES = {"EMBEDDING_DIM": "1536", "PGVECTOR_IVFFLAT_LISTS": "100", "PGVECTOR_ENABLE_IVFFLAT": "true"}
MIGRATIONS = os.environ.get("HM_MIGRATIONS") or os.path.join(os.path.dirname(__file__), "..", "..", "Migrations")


def up_sql(revision):
    [path] = glob.glob(os.path.join(MIGRATIONS, f"{revision}_*.up.sql"))
    out, keep = [], [True]
    for line in open(path, encoding="utf-8").read().splitlines():
        stripped = line.strip()
        if stripped.startswith("{{#if "):
            keep.append(keep[-1] and VALUES[stripped[6:-2].strip()] == "true")
            continue
        if stripped == "{{/if}}":
            keep.pop()
            continue
        if keep[-1]:
            for key, value in VALUES.items():
                line = line.replace("{{" + key + "}}", value)
            out.append(line)
    return "\n".join(out)


def run(op, revision):
    # The whole file as one simple-protocol query (psycopg without parameters), like psql -f.
    op.get_bind().exec_driver_sql(up_sql(revision))
