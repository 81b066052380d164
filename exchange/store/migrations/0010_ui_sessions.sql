-- Sessions of the auditor web page: the browser holds a random session id, the axis only its
-- SHA-256. A session ends when it expires, at logout, when its system's key is rotated, or when
-- the system is deactivated; it never carries the API key itself.

CREATE TABLE ui_sessions (
    id_hash     bytea PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    system_id   bigint NOT NULL REFERENCES systems (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX ui_sessions_system_idx ON ui_sessions (system_id) WHERE revoked_at IS NULL;
