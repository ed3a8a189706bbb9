-- 000006_skills (up): Agent Skills in the catalogue, with their OCI and git packages.
--
-- A skill is a catalogue entry of the new kind 'SKILL' (registry_entry,
-- entry_version hold its name, version, title and description, as for MCP
-- servers); the skill table holds the rest of one version's metadata
-- (https://agentskills.io/specification), and each version is distributed as
-- OCI artifacts and/or git checkouts, in order.
--
-- Pattern: an enum value added with ALTER TYPE ... ADD VALUE. PostgreSQL
-- allows that inside a transaction block but not the use of the new value
-- before the transaction commits, so nothing else in this file mentions
-- 'SKILL'. An enum value cannot be dropped: the down file replaces the type.

ALTER TYPE entry_type ADD VALUE 'SKILL' AFTER 'MCP';

-- The skill-specific fields of one version of a SKILL entry.
CREATE TABLE skill (
    version_id     UUID PRIMARY KEY REFERENCES entry_version (id) ON DELETE CASCADE,
    namespace      TEXT NOT NULL, -- ownership scope, e.g. io.github.stacklok
    license        TEXT,          -- SPDX license identifier
    compatibility  TEXT,          -- environment requirements, free text
    allowed_tools  TEXT[],        -- tools the skill may use without asking
    repository     JSONB,         -- source repository (url, source, subfolder)
    icons          JSONB,         -- Icon[] as in ServerDetail.icons
    metadata       JSONB,         -- the author's key/value pairs
    extension_meta JSONB,         -- _meta (reverse-DNS namespaced extensions)
    CONSTRAINT skill_namespace_check CHECK (btrim(namespace) <> ''),
    CONSTRAINT skill_repository_check
        CHECK (repository IS NULL OR jsonb_typeof(repository) = 'object'),
    CONSTRAINT skill_icons_check CHECK (icons IS NULL OR jsonb_typeof(icons) = 'array'),
    CONSTRAINT skill_metadata_check
        CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    CONSTRAINT skill_extension_meta_check
        CHECK (extension_meta IS NULL OR jsonb_typeof(extension_meta) = 'object')
);

CREATE INDEX skill_namespace_idx ON skill (namespace);

-- OCI artifacts of a skill version, in order.
CREATE TABLE skill_oci_package (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    skill_id   UUID NOT NULL REFERENCES skill (version_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL, -- index in the package list
    identifier TEXT NOT NULL,    -- e.g. ghcr.io/stacklok/skills/pdf-processor:1.0.0
    digest     TEXT,             -- sha256:<hex> of the manifest
    media_type TEXT,             -- e.g. application/vnd.stacklok.skillet.skill.v1
    CONSTRAINT skill_oci_package_skill_id_position_key UNIQUE (skill_id, position),
    CONSTRAINT skill_oci_package_position_check CHECK (position >= 0),
    CONSTRAINT skill_oci_package_identifier_check CHECK (identifier <> ''),
    CONSTRAINT skill_oci_package_digest_check
        CHECK (digest IS NULL OR digest ~ '^sha256:[a-f0-9]{64}$')
);

-- Git checkouts of a skill version, in order.
CREATE TABLE skill_git_package (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    skill_id   UUID NOT NULL REFERENCES skill (version_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL, -- index in the package list
    url        TEXT NOT NULL,    -- e.g. https://github.com/stacklok/skills.git
    ref        TEXT,             -- branch or tag, e.g. v1.0.0
    commit_sha TEXT,             -- the full commit id (SHA-1 or SHA-256 repositories)
    subfolder  TEXT,             -- the skill's directory within the repository
    CONSTRAINT skill_git_package_skill_id_position_key UNIQUE (skill_id, position),
    CONSTRAINT skill_git_package_position_check CHECK (position >= 0),
    CONSTRAINT skill_git_package_url_check CHECK (url <> ''),
    CONSTRAINT skill_git_package_commit_sha_check
        CHECK (commit_sha IS NULL OR commit_sha ~ '^[a-f0-9]{40}([a-f0-9]{24})?$')
);
