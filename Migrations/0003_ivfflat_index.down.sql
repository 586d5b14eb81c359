-- 0003 undone: the IVFFlat index goes (it may never have been built).
DROP INDEX IF EXISTS memory_shards_embedding_ivfflat_idx;
