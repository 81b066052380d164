-- Chained axes: a local system that stands for an upstream axis (it may act for senders no local
-- system serves), and the id an upstream axis gave a forwarded delivery.
ALTER TABLE systems ADD COLUMN relay boolean NOT NULL DEFAULT false;
ALTER TABLE deliveries ADD COLUMN remote_id text;

-- Forwarding to an upstream axis is claimed like a push.
DROP INDEX deliveries_due_idx;
CREATE INDEX deliveries_due_idx ON deliveries (urgency DESC, next_attempt_at)
    WHERE mode IN ('push', 'upstream') AND state IN ('queued', 'retry_wait');
