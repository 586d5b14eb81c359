-- 0003: IVFFlat index on memory_shards.embedding (cosine distance), when
-- PGVECTOR_ENABLE_IVFFLAT is true; lists = PGVECTOR_IVFFLAT_LISTS. ANALYZE after building it.
-- With the index switched off this revision still counts as applied, and does nothing.
{{#if PGVECTOR_IVFFLAT_FITS}}
CREATE INDEX memory_shards_embedding_ivfflat_idx ON memory_shards
    USING ivfflat (embedding vector_cosine_ops) WITH (lists = {{PGVECTOR_IVFFLAT_LISTS}});
ANALYZE memory_shards;
{{/if}}
