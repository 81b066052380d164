-- Deliveries of a message are found by the unique index on (message_id, recipient), whose leading
-- column is message_id: the index on message_id alone duplicated it, and every delivery written
-- (each new one, and each change of state, which is never a heap-only update) paid to keep both.

DROP INDEX deliveries_message_idx;
