-- Routing and processing states.
-- An agency whose legacy producer writes DocumentIds naming another agency than itself (off by
-- default: such a package is refused with 422 document_id_not_sender).
ALTER TABLE agencies ADD COLUMN foreign_document_ids boolean NOT NULL DEFAULT false;

-- The recipient's last acknowledgement of the copy it holds now (cleared when it fetches the copy
-- again), so that the same acknowledgement repeated gets the same answer and a different one is a
-- conflict.
ALTER TABLE deliveries ADD COLUMN last_ack text CHECK (last_ack IN ('done', 'fail'));
ALTER TABLE deliveries ADD COLUMN last_ack_reason text;
UPDATE deliveries SET last_ack = 'done' WHERE state = 'acked';
