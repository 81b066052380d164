-- Trust: certificates the axis knows (trusted CAs, certificates pinned to agencies, revocations),
-- client certificates of systems (mutual TLS), and per-agency acceptance of legacy algorithms.

CREATE TYPE certificate_role AS ENUM ('ca', 'agency', 'known');

CREATE TABLE certificates (
    -- SHA-256 of the DER encoding.
    fingerprint        bytea PRIMARY KEY CHECK (octet_length(fingerprint) = 32),
    -- ca: a trust anchor; agency: pinned to organ_id; known: recorded only to be revoked.
    role               certificate_role NOT NULL,
    organ_id           text REFERENCES agencies (organ_id),
    subject            text NOT NULL,
    issuer             text NOT NULL,
    serial             text NOT NULL,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    der                bytea NOT NULL,
    revoked_at         timestamptz,
    revocation_reason  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'agency') = (organ_id IS NOT NULL))
);

CREATE INDEX certificates_organ_id_idx ON certificates (organ_id) WHERE organ_id IS NOT NULL;

-- NULL: the global setting trust.allow_legacy_sha1.
ALTER TABLE agencies ADD COLUMN allow_sha1 boolean;

ALTER TABLE systems ADD COLUMN client_cert_fingerprint bytea UNIQUE
    CHECK (octet_length(client_cert_fingerprint) = 32);
