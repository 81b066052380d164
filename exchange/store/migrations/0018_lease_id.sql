-- Each claim of a delivery gets an id of its own, and an attempt's outcome is written only under
-- the claim it was made under. The worker's name and the attempt number did not name a claim:
-- an admin's requeue starts the count again, so a late outcome of an earlier claim could match
-- the current one and end it while its push was still in flight.
ALTER TABLE deliveries ADD COLUMN lease_id uuid;
