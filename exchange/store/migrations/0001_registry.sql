-- The registry: the systems that call the axis and the agencies they act for.

CREATE TYPE system_role AS ENUM ('system', 'auditor', 'admin');
CREATE TYPE delivery_mode AS ENUM ('pull', 'push', 'upstream');
CREATE TYPE signature_policy AS ENUM ('required', 'if-present', 'record', 'off');

CREATE TABLE systems (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$'),
    role            system_role NOT NULL,
    -- SHA-256 of the API key; the key itself is shown once and never stored.
    api_key_hash    bytea NOT NULL UNIQUE CHECK (octet_length(api_key_hash) = 32),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    key_rotated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agencies (
    organ_id          text PRIMARY KEY
                      CHECK (organ_id ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'),
    name              text NOT NULL CHECK (btrim(name) <> ''),
    -- Deferred so that an import may list a child before its parent.
    parent_organ_id   text REFERENCES agencies (organ_id) DEFERRABLE INITIALLY DEFERRED
                      CHECK (parent_organ_id <> organ_id),
    -- The system that sends and receives for this agency (NULL: nobody yet, or upstream).
    system_id         bigint REFERENCES systems (id),
    delivery_mode     delivery_mode NOT NULL DEFAULT 'pull',
    push_endpoint     text CHECK (push_endpoint ~ '^https?://'),
    -- NULL means the global default of the configuration.
    signature_policy  signature_policy,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (delivery_mode <> 'push' OR push_endpoint IS NOT NULL)
);

CREATE INDEX agencies_system_id_idx ON agencies (system_id);
CREATE INDEX agencies_parent_idx ON agencies (parent_organ_id);
