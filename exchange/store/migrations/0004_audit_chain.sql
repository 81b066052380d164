-- The audit log as a hash chain. Writers append unsealed entries (no shared row to contend on);
-- one sealer at a time (an advisory lock) gives each committed entry the next position in the
-- chain and the SHA-256 that links it to the entry before, and signs checkpoints of the head.

ALTER TABLE audit_log ADD COLUMN seq bigint UNIQUE;
ALTER TABLE audit_log ADD COLUMN prev_hash bytea CHECK (octet_length(prev_hash) = 32);
ALTER TABLE audit_log ADD COLUMN hash bytea CHECK (octet_length(hash) = 32);
ALTER TABLE audit_log ADD COLUMN sealed_at timestamptz;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_sealed_together
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL));

CREATE INDEX audit_log_unsealed_idx ON audit_log (id) WHERE seq IS NULL;

-- Append-only, except that an unsealed entry may be sealed, once.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.message_id, NEW.delivery_id, NEW.details)
           IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.message_id, OLD.delivery_id, OLD.details)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TABLE audit_checkpoints (
    seq         bigint PRIMARY KEY,     -- the chain position whose hash is signed
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    signed_at   timestamptz NOT NULL DEFAULT now(),
    -- Compact JWS (RS256) by the axis certificate over {"seq", "hash", "signed_at"}.
    signature   text NOT NULL
);

-- The receipt given for each accepted package (a JWS by the axis), kept for evidence.
ALTER TABLE messages ADD COLUMN receipt text;
