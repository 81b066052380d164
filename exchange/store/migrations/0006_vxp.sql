-- The VXP-compatible facade: each system's HMAC secret (needed in clear to check HMACs; never
-- logged), and the signed requests recently seen, to refuse replays of state-changing calls.

ALTER TABLE systems ADD COLUMN vxp_secret text CHECK (vxp_secret <> '');

CREATE TABLE vxp_requests (
    system_id    bigint NOT NULL REFERENCES systems (id),
    hash_header  text NOT NULL,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system_id, hash_header)
);
CREATE INDEX vxp_requests_seen_idx ON vxp_requests (seen_at);
