-- 0007 undone: the HNSW index goes and 0003's IVFFlat index comes back (when
-- PGVECTOR_ENABLE_IVFFLAT is true), as 0003 builds it: the vector-index step trains it again.
{{#if PGVECTOR_HNSW}}
DROP INDEX IF EXISTS memory_shards_embedding_hnsw_idx;
{{#if PGVECTOR_IVFFLAT_FITS}}
CREATE INDEX IF NOT EXISTS memory_shards_embedding_ivfflat_idx ON memory_shards
    USING ivfflat (embedding vector_cosine_ops) WITH (lists = {{PGVECTOR_IVFFLAT_LISTS}});
ANALYZE memory_shards;
{{/if}}
{{/if}}
