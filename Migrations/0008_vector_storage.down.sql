-- 0008 undone: memory_search goes; a halfvec column becomes vector(EMBEDDING_DIM) again, every
-- row converted, with the index 0003 or 0007 built (the vector-index step trains an IVFFlat
-- index again); binary's index is replaced by 0007's HNSW index. Run it under the value of
-- PGVECTOR_STORAGE it was applied with (hm-migrate down --to 0007 --set PGVECTOR_STORAGE=...).
DROP FUNCTION IF EXISTS public.memory_search(public.vector, integer);
-- (only 0008 makes the binary index: gone whatever the value, so that a down run under another
-- value than the one applied still leaves no index of another kind)
DROP INDEX IF EXISTS memory_shards_embedding_binary_idx;
{{#if PGVECTOR_STORAGE_HALFVEC}}
DROP INDEX IF EXISTS memory_shards_embedding_ivfflat_idx;
DROP INDEX IF EXISTS memory_shards_embedding_hnsw_idx;
ALTER TABLE memory_shards ALTER COLUMN embedding TYPE public.vector({{EMBEDDING_DIM}})
    USING embedding::public.vector({{EMBEDDING_DIM}});
{{#if PGVECTOR_IVFFLAT_INDEX_FITS}}
CREATE INDEX memory_shards_embedding_ivfflat_idx ON memory_shards
    USING ivfflat (embedding vector_cosine_ops) WITH (lists = {{PGVECTOR_IVFFLAT_LISTS}});
{{/if}}
{{#if PGVECTOR_HNSW_FITS}}
CREATE INDEX memory_shards_embedding_hnsw_idx ON memory_shards
    USING hnsw (embedding vector_cosine_ops)
    WITH (m = {{PGVECTOR_HNSW_M}}, ef_construction = {{PGVECTOR_HNSW_EF_CONSTRUCTION}});
{{/if}}
ANALYZE memory_shards;
{{/if}}
{{#if PGVECTOR_STORAGE_BINARY}}
{{#if PGVECTOR_HNSW_FITS}}
CREATE INDEX memory_shards_embedding_hnsw_idx ON memory_shards
    USING hnsw (embedding vector_cosine_ops)
    WITH (m = {{PGVECTOR_HNSW_M}}, ef_construction = {{PGVECTOR_HNSW_EF_CONSTRUCTION}});
ANALYZE memory_shards;
{{/if}}
{{/if}}
