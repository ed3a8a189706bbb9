-- 000002_claims (up): authorization claims on sources, registries and entries.
--
-- Claims are a JSON object of key/value pairs (for example {"org": "stacklok"})
-- that a caller's token must carry to see the item. An entry's claims are set
-- on first publish and are the same for every version; a source's claims are
-- inherited by the entries synced from it.
--
-- Pattern: a nullable column added to existing tables. Without a default the
-- column is added without rewriting the table; the CHECK scans it once (all
-- NULL at this point) and then holds for every new row.

ALTER TABLE source
    ADD COLUMN claims JSONB,
    ADD CONSTRAINT source_claims_check
        CHECK (claims IS NULL OR jsonb_typeof(claims) = 'object');

ALTER TABLE registry
    ADD COLUMN claims JSONB,
    ADD CONSTRAINT registry_claims_check
        CHECK (claims IS NULL OR jsonb_typeof(claims) = 'object');

ALTER TABLE registry_entry
    ADD COLUMN claims JSONB,
    ADD CONSTRAINT registry_entry_claims_check
        CHECK (claims IS NULL OR jsonb_typeof(claims) = 'object');
