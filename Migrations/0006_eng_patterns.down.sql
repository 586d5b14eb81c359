-- 0006 undone: the table and its seeded pattern.
DROP TABLE eng_patterns;
