-- 000002_claims (down): remove the claims columns.
--
-- Dropping a column drops its CHECK constraint with it. THE CLAIMS STORED ON
-- SOURCES, REGISTRIES AND ENTRIES ARE LOST: without them every item becomes
-- visible to every caller.

ALTER TABLE registry_entry DROP COLUMN claims;
ALTER TABLE registry DROP COLUMN claims;
ALTER TABLE source DROP COLUMN claims;
