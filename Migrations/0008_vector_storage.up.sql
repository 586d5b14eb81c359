-- 0008 (issue 24): how memory_shards.embedding is stored and indexed, PGVECTOR_STORAGE:
-- - vector (the default): as before; nothing is converted;
-- - halfvec: the column becomes halfvec(EMBEDDING_DIM) (half the bytes), every row converted,
--   and the index of PGVECTOR_INDEX is built again with halfvec_cosine_ops (an IVFFlat index is
--   trained again by the vector-index step);
-- - binary: the column stays vector; 0007's HNSW index is replaced by an HNSW index on its
--   binary quantization (bit_hamming_ops), whose candidates memory_search re-ranks in full
--   precision (PGVECTOR_RERANK of them).
-- And on every host public.memory_search(query vector, k integer): the k rows nearest to query
-- by cosine distance (id, content, distance), searched as the kind chosen wants. It is the
-- owner's, SECURITY INVOKER, STRICT (a NULL k is no rows, not every row), its search_path pinned
-- and every name in it schema-qualified, so nothing planted in another schema or on a caller's
-- search_path changes what it runs. It sets none of pgvector's settings itself (a SET clause
-- naming hnsw.iterative_scan cannot be restored by pg_restore as the owner: the server does not
-- know the setting before pgvector's library is loaded), so an HNSW index gives at most
-- hnsw.ef_search rows (the database's, PGVECTOR_HNSW_EF_SEARCH; a session may SET
-- hnsw.iterative_scan). The vector-index step and verify compare its body with this one
-- (EmbeddingStorage.searchBody): keep the two the same.
{{#if PGVECTOR_STORAGE_HALFVEC}}
DROP INDEX IF EXISTS memory_shards_embedding_ivfflat_idx;
DROP INDEX IF EXISTS memory_shards_embedding_hnsw_idx;
DROP INDEX IF EXISTS memory_shards_embedding_binary_idx;
ALTER TABLE memory_shards ALTER COLUMN embedding TYPE public.halfvec({{EMBEDDING_DIM}})
    USING embedding::public.halfvec({{EMBEDDING_DIM}});
{{#if PGVECTOR_IVFFLAT_INDEX}}
CREATE INDEX memory_shards_embedding_ivfflat_idx ON memory_shards
    USING ivfflat (embedding public.halfvec_cosine_ops) WITH (lists = {{PGVECTOR_IVFFLAT_LISTS}});
{{/if}}
{{#if PGVECTOR_HNSW}}
CREATE INDEX memory_shards_embedding_hnsw_idx ON memory_shards
    USING hnsw (embedding public.halfvec_cosine_ops)
    WITH (m = {{PGVECTOR_HNSW_M}}, ef_construction = {{PGVECTOR_HNSW_EF_CONSTRUCTION}});
{{/if}}
ANALYZE memory_shards;
CREATE FUNCTION public.memory_search(query public.vector, k integer)
    RETURNS TABLE (id bigint, content text, distance double precision)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
AS $memory_search$
    SELECT r.id, r.content, r.distance
    FROM (SELECT s.id, s.content, s.embedding OPERATOR(public.<=>) $1::public.halfvec({{EMBEDDING_DIM}}) AS distance
          FROM public.memory_shards s
          WHERE s.embedding IS NOT NULL
          ORDER BY s.embedding OPERATOR(public.<=>) $1::public.halfvec({{EMBEDDING_DIM}})
          LIMIT $2) r
    ORDER BY r.distance, r.id
$memory_search$;
{{/if}}
{{#if PGVECTOR_STORAGE_BINARY}}
DROP INDEX IF EXISTS memory_shards_embedding_hnsw_idx;
CREATE INDEX memory_shards_embedding_binary_idx ON memory_shards
    USING hnsw ((public.binary_quantize(embedding)::bit({{EMBEDDING_DIM}})) public.bit_hamming_ops)
    WITH (m = {{PGVECTOR_HNSW_M}}, ef_construction = {{PGVECTOR_HNSW_EF_CONSTRUCTION}});
ANALYZE memory_shards;
CREATE FUNCTION public.memory_search(query public.vector, k integer)
    RETURNS TABLE (id bigint, content text, distance double precision)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
AS $memory_search$
    SELECT c.id, c.content, c.embedding OPERATOR(public.<=>) $1
    FROM (SELECT s.id, s.content, s.embedding
          FROM public.memory_shards s
          WHERE s.embedding IS NOT NULL
          ORDER BY public.binary_quantize(s.embedding)::bit({{EMBEDDING_DIM}})
              OPERATOR(public.<~>) public.binary_quantize($1)
          LIMIT GREATEST($2, {{PGVECTOR_RERANK}})) c
    ORDER BY 3, 1
    LIMIT $2
$memory_search$;
{{/if}}
{{#if PGVECTOR_STORAGE_VECTOR}}
CREATE FUNCTION public.memory_search(query public.vector, k integer)
    RETURNS TABLE (id bigint, content text, distance double precision)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
AS $memory_search$
    SELECT r.id, r.content, r.distance
    FROM (SELECT s.id, s.content, s.embedding OPERATOR(public.<=>) $1 AS distance
          FROM public.memory_shards s
          WHERE s.embedding IS NOT NULL
          ORDER BY s.embedding OPERATOR(public.<=>) $1
          LIMIT $2) r
    ORDER BY r.distance, r.id
$memory_search$;
{{/if}}
