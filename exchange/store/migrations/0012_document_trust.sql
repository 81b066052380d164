-- Document authenticity: signatures inside attached PDFs are judged against their own trust store
-- (document-signing CAs and imported CRLs), under a per-agency policy, and the judgement is kept.

-- What the axis does with the signatures inside a sender's attachments (NULL: the global default).
CREATE TYPE attachment_signature_policy AS ENUM ('off', 'record', 'official-required');
ALTER TABLE agencies ADD COLUMN attachment_signature_policy attachment_signature_policy;

-- envelope: anchors for the edXML XML signature; document: anchors for signatures inside PDFs.
ALTER TABLE certificates ADD COLUMN purpose text NOT NULL DEFAULT 'envelope'
    CHECK (purpose IN ('envelope', 'document'));

-- Certificate revocation lists imported from files (nothing is fetched unless configured).
CREATE TABLE certificate_revocation_lists (
    sha256         bytea PRIMARY KEY CHECK (octet_length(sha256) = 32),
    issuer         text NOT NULL,
    this_update    timestamptz NOT NULL,
    next_update    timestamptz,
    revoked_count  integer NOT NULL CHECK (revoked_count >= 0),
    der            bytea NOT NULL,
    imported_at    timestamptz NOT NULL DEFAULT now()
);

-- The validation report of a message's attachments, as judged at receipt (never rewritten).
CREATE TABLE message_attachment_reports (
    message_id  uuid PRIMARY KEY REFERENCES messages (id),
    official    boolean NOT NULL,
    report      jsonb NOT NULL
);
