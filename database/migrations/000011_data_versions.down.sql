-- 000011_data_versions (down): remove the response cache's generations.

DROP TABLE catalog_version;

ALTER TABLE source DROP COLUMN data_version;
