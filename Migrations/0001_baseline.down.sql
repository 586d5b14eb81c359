-- 0001 baseline, undone. The vector extension stays: the databases step manages it, and
-- other objects may use it.
DROP TABLE memory_shards;
