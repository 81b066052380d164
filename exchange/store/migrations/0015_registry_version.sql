-- One number that moves on with every change to what intake reads of the registry for each
-- package (agencies and their policies, the systems serving them, certificates, revocation lists). A server process keeps
-- what it read between packages for as long as the number stays the same (exchange/sender_facts.py):
-- one short query per package instead of nine, and a change is seen by the next package exactly
-- as if everything were read again.

CREATE TABLE registry_version (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version   bigint NOT NULL
);
INSERT INTO registry_version (only_row, version) VALUES (true, 0);

CREATE FUNCTION registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER agencies_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agencies
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
CREATE TRIGGER systems_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON systems
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
CREATE TRIGGER certificates_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
CREATE TRIGGER revocation_lists_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON certificate_revocation_lists
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
