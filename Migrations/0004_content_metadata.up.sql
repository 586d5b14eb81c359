-- 0004: where a memory shard came from, and free-form metadata.
ALTER TABLE memory_shards
    ADD COLUMN source text,
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
