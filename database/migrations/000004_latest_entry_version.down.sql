-- 000004_latest_entry_version (down): remove the latest-version pointers.
--
-- The versions themselves stay; only the record of which one is the latest is
-- lost (000004's up derives it again from the versions).

DROP TABLE latest_entry_version;
