-- 000001_init (down): remove the registry's core schema.
--
-- Drops exactly the tables and enum types that 000001_init.up.sql created
-- (their indexes and constraints go with them): tables first, dependants
-- before the tables they reference, then the types. ALL DATA IN THESE TABLES
-- IS LOST. The schema itself and the migration state tables are left alone.

DROP TABLE mcp_server_remote;
DROP TABLE mcp_server_package;
DROP TABLE mcp_server;
DROP TABLE entry_version;
DROP TABLE registry_entry;
DROP TABLE registry_sync;
DROP TABLE registry_source;
DROP TABLE registry;
DROP TABLE source;

DROP TYPE transport_type;
DROP TYPE version_status;
DROP TYPE entry_type;
DROP TYPE sync_status;
DROP TYPE creation_type;
DROP TYPE source_type;
