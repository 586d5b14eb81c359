-- 0005 undone.
DROP TABLE raw_conversations;
