-- The exchange: accepted packages, one delivery per recipient, business statuses, and the
-- append-only audit log. Every state change and its audit entry are written in one transaction.

CREATE TYPE message_kind AS ENUM ('edoc', 'status');
CREATE TYPE delivery_state AS ENUM
    ('queued', 'sending', 'delivered', 'acked', 'retry_wait', 'failed', 'expired', 'withdrawn');

CREATE TABLE messages (
    id                  uuid PRIMARY KEY,
    kind                message_kind NOT NULL,
    sender              text NOT NULL,              -- From/OrganId
    sender_system_id    bigint NOT NULL REFERENCES systems (id),
    -- edoc: its DocumentId; status: the DocumentId it reports on (ResponseFor/DocumentId).
    document_id         text NOT NULL,
    business_type       smallint NOT NULL DEFAULT 0 CHECK (business_type BETWEEN 0 AND 3),
    status_code         text CHECK (status_code IN ('01','02','03','04','05','06','13','15','16')),
    code                text,
    subject             text,
    -- 0 ordinary .. 3 flash (Priority 3 and 4 both count as flash): the delivery order.
    urgency             smallint NOT NULL DEFAULT 0 CHECK (urgency BETWEEN 0 AND 3),
    due_date            date,
    sha256              bytea NOT NULL CHECK (octet_length(sha256) = 32),
    size_bytes          integer NOT NULL CHECK (size_bytes >= 0),
    signature           jsonb NOT NULL,             -- the verdict, its reason, the signer
    -- status: the edoc it reports on; revoke/update/replace: the document it acts on.
    related_message_id  uuid REFERENCES messages (id),
    received_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'status') = (status_code IS NOT NULL))
);

-- A resent edoc is the same message; the same DocumentId with other bytes is a conflict.
CREATE UNIQUE INDEX messages_edoc_identity ON messages (sender, document_id, business_type)
    WHERE kind = 'edoc';
-- A resent status package (identical bytes from the same sender) is the same message.
CREATE UNIQUE INDEX messages_status_identity ON messages (sender, sha256) WHERE kind = 'status';
CREATE INDEX messages_document_idx ON messages (document_id);
CREATE INDEX messages_related_idx ON messages (related_message_id) WHERE related_message_id IS NOT NULL;
CREATE INDEX messages_received_idx ON messages (received_at, id);

-- The original bytes, unchanged (evidence); apart so that queries on messages never read them.
CREATE TABLE message_bodies (
    message_id  uuid PRIMARY KEY REFERENCES messages (id),
    body        bytea NOT NULL
);

CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    message_id       uuid NOT NULL REFERENCES messages (id),
    recipient        text NOT NULL REFERENCES agencies (organ_id),
    mode             delivery_mode NOT NULL,
    state            delivery_state NOT NULL,
    urgency          smallint NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    leased_by        text,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    downloaded_at    timestamptz,
    delivered_at     timestamptz,
    acked_at         timestamptz,
    UNIQUE (message_id, recipient)
);

-- The claim query: due push deliveries, most urgent first.
CREATE INDEX deliveries_due_idx ON deliveries (urgency DESC, next_attempt_at)
    WHERE mode = 'push' AND state IN ('queued', 'retry_wait');
-- Expired leases of workers that died.
CREATE INDEX deliveries_leases_idx ON deliveries (lease_until) WHERE state = 'sending';
-- The inbox: what a recipient has not acknowledged yet.
CREATE INDEX deliveries_inbox_idx ON deliveries (recipient, created_at)
    WHERE mode = 'pull' AND state IN ('queued', 'delivered');
CREATE INDEX deliveries_message_idx ON deliveries (message_id);
CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at);

CREATE TABLE business_statuses (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The delivery of the original document to the agency concerned.
    delivery_id        uuid NOT NULL REFERENCES deliveries (id),
    status_message_id  uuid NOT NULL REFERENCES messages (id),
    code               text NOT NULL,
    description        text,
    staff              text,
    reported_at        timestamp,          -- the package's own Timestamp (sender's local time)
    received_at        timestamptz NOT NULL DEFAULT now(),
    -- Set when the status does not follow from the previous one (recorded, never dropped).
    flag               text
);
CREATE INDEX business_statuses_delivery_idx ON business_statuses (delivery_id, id);

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text NOT NULL,          -- a system name, or "axis" for the server itself
    action       text NOT NULL,
    message_id   uuid,
    delivery_id  uuid,
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_message_idx ON audit_log (message_id, id) WHERE message_id IS NOT NULL;
CREATE INDEX audit_log_delivery_idx ON audit_log (delivery_id, id) WHERE delivery_id IS NOT NULL;

-- Append-only: history is never edited or removed through SQL the axis runs.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Retry limits per agency (NULL: the [delivery] settings).
ALTER TABLE agencies ADD COLUMN max_attempts integer CHECK (max_attempts > 0);
ALTER TABLE agencies ADD COLUMN max_age_s integer CHECK (max_age_s > 0);
