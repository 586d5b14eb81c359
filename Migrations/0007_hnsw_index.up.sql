-- 0007: HNSW instead of IVFFlat on memory_shards.embedding, when PGVECTOR_INDEX is hnsw:
-- cosine distance as in 0003, m = PGVECTOR_HNSW_M, ef_construction =
-- PGVECTOR_HNSW_EF_CONSTRUCTION (hnsw.ef_search is set per database by the vector-index
-- step). HNSW needs no training, so the index is built on whatever rows there are. With
-- PGVECTOR_INDEX=ivfflat (the default) this revision counts as applied and does nothing.
{{#if PGVECTOR_HNSW_FITS}}
DROP INDEX IF EXISTS memory_shards_embedding_ivfflat_idx;
CREATE INDEX memory_shards_embedding_hnsw_idx ON memory_shards
    USING hnsw (embedding vector_cosine_ops)
    WITH (m = {{PGVECTOR_HNSW_M}}, ef_construction = {{PGVECTOR_HNSW_EF_CONSTRUCTION}});
ANALYZE memory_shards;
{{/if}}
