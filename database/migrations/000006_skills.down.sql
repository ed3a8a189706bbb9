-- 000006_skills (down): remove skills and the 'SKILL' entry type.
--
-- ALL SKILL ENTRIES ARE DELETED, with their versions and packages.
--
-- PostgreSQL cannot drop a value from an enum type, so the type is replaced:
-- the old one is renamed, a new one is created without 'SKILL', the column is
-- converted through text, and the old type is dropped. The column default
-- refers to the type, so it is dropped and set again around the conversion.

DROP TABLE skill_git_package;
DROP TABLE skill_oci_package;
DROP TABLE skill;

DELETE FROM registry_entry WHERE entry_type = 'SKILL';

ALTER TYPE entry_type RENAME TO entry_type_with_skill;

CREATE TYPE entry_type AS ENUM (
    'MCP'
);

ALTER TABLE registry_entry
    ALTER COLUMN entry_type DROP DEFAULT,
    ALTER COLUMN entry_type TYPE entry_type USING entry_type::text::entry_type,
    ALTER COLUMN entry_type SET DEFAULT 'MCP';

DROP TYPE entry_type_with_skill;
