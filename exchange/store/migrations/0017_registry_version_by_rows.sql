-- The registry's version moved on with every statement on its tables, even one that changed no
-- row: each entry of the upstream registry sync (an upsert that mostly changes nothing) and each
-- package naming an upstream agency already registered moved it on, and with it every package in
-- flight was checked twice and everything the server processes keep of the registry was dropped.
-- It now moves on with each row inserted, deleted or actually changed, and with TRUNCATE.

DROP TRIGGER agencies_changed ON agencies;
DROP TRIGGER systems_changed ON systems;
DROP TRIGGER certificates_changed ON certificates;
DROP TRIGGER revocation_lists_changed ON certificate_revocation_lists;

CREATE TRIGGER agencies_rows_added_or_removed AFTER INSERT OR DELETE ON agencies
    FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER agencies_rows_changed AFTER UPDATE ON agencies
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION registry_changed();
CREATE TRIGGER agencies_truncated AFTER TRUNCATE ON agencies
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();

CREATE TRIGGER systems_rows_added_or_removed AFTER INSERT OR DELETE ON systems
    FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER systems_rows_changed AFTER UPDATE ON systems
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION registry_changed();
CREATE TRIGGER systems_truncated AFTER TRUNCATE ON systems
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();

CREATE TRIGGER certificates_rows_added_or_removed AFTER INSERT OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER certificates_rows_changed AFTER UPDATE ON certificates
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION registry_changed();
CREATE TRIGGER certificates_truncated AFTER TRUNCATE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();

CREATE TRIGGER revocation_lists_rows_added_or_removed AFTER INSERT OR DELETE ON certificate_revocation_lists
    FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER revocation_lists_rows_changed AFTER UPDATE ON certificate_revocation_lists
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION registry_changed();
CREATE TRIGGER revocation_lists_truncated AFTER TRUNCATE ON certificate_revocation_lists
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
