-- Registry control: agencies registered through the VXP facade wait for an admin's approval, and
-- one definition of an agency "in service" (may send and receive) for the queries that need it.
-- A signed VXP request spent on a state-changing operation records which operation it was.

ALTER TABLE agencies ADD COLUMN pending boolean NOT NULL DEFAULT false;

ALTER TABLE vxp_requests ADD COLUMN operation text NOT NULL DEFAULT '';

-- An agency sends and receives only when it is active (not disabled or deleted), approved (not
-- pending) and its serving system, if any, is not disabled. Deliveries to the others are held.
CREATE VIEW agencies_in_service AS
SELECT a.organ_id
FROM agencies a LEFT JOIN systems s ON s.id = a.system_id
WHERE a.active AND NOT a.pending AND coalesce(s.active, true);
