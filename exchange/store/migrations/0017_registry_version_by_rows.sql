-- The registry's version moved on with every statement on its tables, even one that changed no
-- row: each entry of the upstream registry sync (an upsert that mostly changes nothing) and each
-- package naming an upstream agency already registered moved it on, and with it every package in
-- flight was checked twice and everything the server processes keep of the registry was dropped.
-- It now moves on with each row inserted, deleted or actually changed, and with TRUNCATE.

DROP TRIGGER agencies_changed ON agencies;
DROP TRIGGER systems_changed ON systems;
DROP TRIGGER certificates_changed ON certificates;
DROP TRIGGER revocation_lists_changed ON certificate_revocation_lists;

DO $$
DECLARE
    registry_table text;
BEGIN
    FOREACH registry_table IN ARRAY ARRAY['agencies', 'systems', 'certificates', 'certificate_revocation_lists']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR DELETE ON %I '
            'FOR EACH ROW EXECUTE FUNCTION registry_changed()',
            registry_table || '_rows_added_or_removed', registry_table);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER UPDATE ON %I '
            'FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION registry_changed()',
            registry_table || '_rows_changed', registry_table);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION registry_changed()',
            registry_table || '_truncated', registry_table);
    END LOOP;
END
$$;
