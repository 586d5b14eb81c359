-- 0004 undone.
ALTER TABLE memory_shards
    DROP COLUMN metadata,
    DROP COLUMN source;
