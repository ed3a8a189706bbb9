-- 000004_latest_entry_version (up): the latest-version pointer of each entry.
--
-- An entry is one name of one kind in one source, so this is the per-source
-- latest pointer the API needs for isLatest and version=latest: for a name
-- present in several sources, each source has its own latest version. The key
-- on (entry_id, version) guarantees that the pointer names a version of that
-- same entry; deleting that version deletes the pointer, and the writer
-- chooses a new one.
--
-- Pattern: a new table filled from existing rows (a data backfill) in the
-- same transaction, so no reader ever sees the table without its rows. The
-- backfill takes each entry's most recently published version that is not
-- DELETED; the next sync or publish corrects any choice the writer would make
-- differently (semantic-version order).

CREATE TABLE latest_entry_version (
    entry_id   UUID PRIMARY KEY,
    version    TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT latest_entry_version_entry_id_version_fkey
        FOREIGN KEY (entry_id, version) REFERENCES entry_version (entry_id, version)
        ON DELETE CASCADE ON UPDATE CASCADE
);

INSERT INTO latest_entry_version (entry_id, version)
SELECT DISTINCT ON (entry_id) entry_id, version
  FROM entry_version
 WHERE status <> 'DELETED'
 ORDER BY entry_id, published_at DESC, created_at DESC, version DESC;
