-- Package bodies in chunks, so that no query ever moves a whole large package at once: intake
-- writes a package as it reads it from its spool file, and pushes, downloads, forwarding and
-- evidence read it back one chunk at a time (see README, "Large packages").
--
-- Ordinary rows rather than large objects: they commit or roll back with the message insert,
-- are replicated by logical replication and dumped with the table by pg_dump (large objects are
-- neither replicated logically nor dumped with a table), need only the table's grants (no
-- pg_largeobject ownership), and retention removes them with a plain DELETE (no lo_unlink, no
-- orphans for vacuumlo to find).
--
-- message_bodies stays as the head of each body (a row exists while the bytes are kept; retention
-- deletes it and its chunks go with it); the bytes move into message_body_chunks.

CREATE TABLE message_body_chunks (
    message_id  uuid NOT NULL REFERENCES message_bodies (message_id) ON DELETE CASCADE,
    seq         integer NOT NULL CHECK (seq >= 0),    -- 0, 1, 2... in the order of the bytes
    data        bytea NOT NULL,
    PRIMARY KEY (message_id, seq)
);
-- Out of line and uncompressed: bodies are mostly base64 of files already compressed (PDF, DOCX),
-- which pglz cannot shrink; trying costs CPU on every write.
ALTER TABLE message_body_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

ALTER TABLE message_bodies ADD COLUMN chunks integer NOT NULL DEFAULT 1 CHECK (chunks >= 1);

-- Bodies stored before: cut into chunks of 1 MiB (the size intake writes).
INSERT INTO message_body_chunks (message_id, seq, data)
SELECT b.message_id, s.seq, substring(b.body FROM s.seq * 1048576 + 1 FOR 1048576)
FROM message_bodies b,
     generate_series(0, greatest((octet_length(b.body) - 1) / 1048576, 0)) AS s (seq);
UPDATE message_bodies SET chunks = greatest((octet_length(body) - 1) / 1048576, 0) + 1;

ALTER TABLE message_bodies DROP COLUMN body;
ALTER TABLE message_bodies ALTER COLUMN chunks DROP DEFAULT;
