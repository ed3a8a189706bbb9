-- 000001_init (up): create the registry's core schema.
--
-- Creates the enum types and tables that hold registry data sources, the
-- registries built from them, per-source sync state, and the MCP server
-- catalogue (entries, their versions, and each version's ServerDetail with its
-- packages and remotes).
--
-- The layout follows the Go ToolHive Registry API Server's schema
-- (github.com/stacklok/toolhive-registry-server, database/migrations/ as it
-- stands after its migration 000026), with the same table and column names so
-- that its queries carry over: source, registry, registry_source,
-- registry_sync, registry_entry, entry_version, mcp_server,
-- mcp_server_package, mcp_server_remote. Deliberate differences: NOT NULL
-- timestamps, enums instead of free text where the value set is closed, a
-- status per version, explicit positions for packages and remotes, and
-- integrity enforced by keys instead of triggers.
--
-- The later migrations complete the data model: claims (000002), the
-- scheduling interval (000003), the latest-version pointer (000004), icons
-- (000005), skills (000006), sync counters (000007) and the claims index
-- (000008).
--
-- Every statement here is transactional; the migration engine runs this file
-- in one transaction together with its schema_migrations update. Only
-- built-in functionality is used (gen_random_uuid() is core since PostgreSQL 13).
-- 000001_init.down.sql removes exactly these objects.

-- ============================================================================
-- Enum types
-- ============================================================================

-- Kind of a data source. Lower-case values, as the Go server writes them.
CREATE TYPE source_type AS ENUM (
    'git',
    'api',
    'file',
    'managed',
    'kubernetes'
);

-- Whether a source or registry came from the configuration file or the API.
CREATE TYPE creation_type AS ENUM (
    'API',
    'CONFIG'
);

-- State of the last sync of a source. A row is created when a sync starts,
-- so there is no 'PENDING' state.
CREATE TYPE sync_status AS ENUM (
    'IN_PROGRESS',
    'COMPLETED',
    'FAILED'
);

-- Kind of catalogue entry. 000006_skills adds 'SKILL'.
CREATE TYPE entry_type AS ENUM (
    'MCP'
);

-- Lifecycle status of one version (the MCP Registry API's
-- _meta."io.modelcontextprotocol.registry/official".status).
CREATE TYPE version_status AS ENUM (
    'ACTIVE',
    'DEPRECATED',
    'DELETED'
);

-- MCP transport of a package (any) or of a remote (sse, streamable-http).
CREATE TYPE transport_type AS ENUM (
    'stdio',
    'streamable-http',
    'sse'
);

-- ============================================================================
-- Sources and registries
-- ============================================================================

-- A data source: where entries come from (a git repository, an upstream API,
-- a file, the managed store written through the API, or Kubernetes).
CREATE TABLE source (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name          TEXT NOT NULL,
    source_type   source_type NOT NULL,
    creation_type creation_type NOT NULL DEFAULT 'CONFIG',
    source_config JSONB,                       -- type-specific settings (URL, path, branch, ...)
    filter_config JSONB,                       -- name/tag include/exclude rules
    syncable      BOOLEAN NOT NULL DEFAULT true, -- false for managed/kubernetes/inline data
    sync_schedule TEXT,                        -- Go duration as configured (30m); NULL: not synced
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT source_name_key UNIQUE (name),
    CONSTRAINT source_name_check CHECK (btrim(name) <> ''),
    CONSTRAINT source_source_config_check
        CHECK (source_config IS NULL OR jsonb_typeof(source_config) = 'object'),
    CONSTRAINT source_filter_config_check
        CHECK (filter_config IS NULL OR jsonb_typeof(filter_config) = 'object'),
    CONSTRAINT source_sync_schedule_check  -- a Go duration in h, m, s, ms or us
        CHECK (sync_schedule ~ '^([0-9]+(\.[0-9]+)?(h|m|s|ms|us))+$')
);

-- There is at most one managed source (the store written through the API).
CREATE UNIQUE INDEX source_single_managed_idx ON source (source_type)
    WHERE source_type = 'managed';

-- A registry: a named, ordered view over one or more sources.
CREATE TABLE registry (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name          TEXT NOT NULL,
    creation_type creation_type NOT NULL DEFAULT 'CONFIG',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT registry_name_key UNIQUE (name),
    CONSTRAINT registry_name_check CHECK (btrim(name) <> '')
);

-- Which sources make up a registry, in order: for an entry present in several
-- sources, the one with the lowest position wins. The position is unique per
-- registry; the constraint is deferrable so that a reordering UPDATE (or,
-- after SET CONSTRAINTS ... DEFERRED, a whole transaction) may pass through
-- duplicates. A source still used by a registry cannot be deleted.
CREATE TABLE registry_source (
    registry_id UUID NOT NULL REFERENCES registry (id) ON DELETE CASCADE,
    source_id   UUID NOT NULL REFERENCES source (id) ON DELETE RESTRICT,
    position    INTEGER NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (registry_id, source_id),
    CONSTRAINT registry_source_registry_id_position_key UNIQUE (registry_id, position)
        DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT registry_source_position_check CHECK (position >= 0)
);

CREATE INDEX registry_source_source_id_idx ON registry_source (source_id);

-- Sync state of a source: one row per source, updated by every sync attempt.
-- (The Go server kept the name registry_sync when registries became sources.)
CREATE TABLE registry_sync (
    id                       UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    source_id                UUID NOT NULL REFERENCES source (id) ON DELETE CASCADE,
    sync_status              sync_status NOT NULL DEFAULT 'IN_PROGRESS',
    error_msg                TEXT,        -- set when the last attempt failed
    started_at               TIMESTAMPTZ, -- start of the last attempt
    ended_at                 TIMESTAMPTZ, -- end of the last attempt
    last_success_at          TIMESTAMPTZ, -- end of the last successful attempt
    attempt_count            BIGINT NOT NULL DEFAULT 0, -- consecutive attempts since the last success
    last_sync_hash           TEXT,        -- hash of the data applied by the last successful sync
    last_applied_filter_hash TEXT,        -- hash of the filter in force at that sync
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT registry_sync_source_id_key UNIQUE (source_id),
    CONSTRAINT registry_sync_attempt_count_check CHECK (attempt_count >= 0)
);

-- ============================================================================
-- Catalogue entries and versions
-- ============================================================================

-- An entry: one named item (for MCP, a server name such as
-- "io.github.user/weather") in one source, across all its versions.
CREATE TABLE registry_entry (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    source_id  UUID NOT NULL REFERENCES source (id) ON DELETE CASCADE,
    entry_type entry_type NOT NULL DEFAULT 'MCP',
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT registry_entry_source_id_entry_type_name_key UNIQUE (source_id, entry_type, name),
    CONSTRAINT registry_entry_name_check CHECK (btrim(name) <> '' AND char_length(name) <= 200)
);

-- Lookups by server name across sources (GET /v0.1/servers/{serverName}/...).
CREATE INDEX registry_entry_name_idx ON registry_entry (name);

-- One version of an entry, with the registry-managed metadata of that version.
CREATE TABLE entry_version (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    entry_id          UUID NOT NULL REFERENCES registry_entry (id) ON DELETE CASCADE,
    version           TEXT NOT NULL,
    title             TEXT,
    description       TEXT,
    status            version_status NOT NULL DEFAULT 'ACTIVE',
    status_message    TEXT,
    status_changed_at TIMESTAMPTZ,
    published_at      TIMESTAMPTZ NOT NULL DEFAULT now(), -- first published (upstream's publishedAt when synced)
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT entry_version_entry_id_version_key UNIQUE (entry_id, version),
    CONSTRAINT entry_version_version_check
        CHECK (btrim(version) <> '' AND char_length(version) <= 255),
    CONSTRAINT entry_version_status_message_check
        CHECK (status_message IS NULL OR char_length(status_message) <= 500)
);

-- "updated_since" listings and incremental reads.
CREATE INDEX entry_version_updated_at_idx ON entry_version (updated_at);

-- ============================================================================
-- MCP server details (ServerDetail of one version)
-- ============================================================================

-- The ServerDetail fields of an MCP entry version that are not on
-- entry_version (name: registry_entry; version, title, description:
-- entry_version). One row per MCP version.
CREATE TABLE mcp_server (
    version_id           UUID PRIMARY KEY REFERENCES entry_version (id) ON DELETE CASCADE,
    website              TEXT,  -- websiteUrl
    schema_url           TEXT,  -- $schema
    repository_url       TEXT,  -- repository.url
    repository_type      TEXT,  -- repository.source (e.g. github)
    repository_id        TEXT,  -- repository.id
    repository_subfolder TEXT,  -- repository.subfolder
    server_meta          JSONB, -- ServerDetail._meta (publisher-provided)
    upstream_meta        JSONB, -- ServerResponse._meta from an upstream registry
    CONSTRAINT mcp_server_repository_check
        CHECK (repository_url IS NOT NULL
               OR (repository_id IS NULL AND repository_subfolder IS NULL)),
    CONSTRAINT mcp_server_server_meta_check
        CHECK (server_meta IS NULL OR jsonb_typeof(server_meta) = 'object'),
    CONSTRAINT mcp_server_upstream_meta_check
        CHECK (upstream_meta IS NULL OR jsonb_typeof(upstream_meta) = 'object')
);

-- ServerDetail.packages[], in order.
CREATE TABLE mcp_server_package (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id         UUID NOT NULL REFERENCES mcp_server (version_id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,  -- index in packages[]
    registry_type     TEXT NOT NULL,     -- npm, pypi, oci, nuget, mcpb, ...
    pkg_registry_url  TEXT,              -- registryBaseUrl
    pkg_identifier    TEXT NOT NULL,     -- identifier
    pkg_version       TEXT,              -- version
    sha256_hash       TEXT,              -- fileSha256
    runtime_hint      TEXT,              -- runtimeHint (npx, uvx, docker, dnx)
    runtime_arguments JSONB,             -- runtimeArguments: Argument[]
    package_arguments JSONB,             -- packageArguments: Argument[]
    env_vars          JSONB,             -- environmentVariables: KeyValueInput[]
    transport         transport_type NOT NULL, -- transport.type
    transport_url     TEXT,              -- transport.url (sse, streamable-http)
    transport_headers JSONB,             -- transport.headers: KeyValueInput[]
    CONSTRAINT mcp_server_package_server_id_position_key UNIQUE (server_id, position),
    CONSTRAINT mcp_server_package_identity_key
        UNIQUE (server_id, registry_type, pkg_identifier, transport),
    CONSTRAINT mcp_server_package_position_check CHECK (position >= 0),
    CONSTRAINT mcp_server_package_registry_type_check CHECK (registry_type <> ''),
    CONSTRAINT mcp_server_package_pkg_identifier_check CHECK (pkg_identifier <> ''),
    CONSTRAINT mcp_server_package_sha256_hash_check
        CHECK (sha256_hash IS NULL OR sha256_hash ~ '^[a-f0-9]{64}$'),
    CONSTRAINT mcp_server_package_transport_url_check
        CHECK ((transport = 'stdio') = (transport_url IS NULL)),
    CONSTRAINT mcp_server_package_runtime_arguments_check
        CHECK (runtime_arguments IS NULL OR jsonb_typeof(runtime_arguments) = 'array'),
    CONSTRAINT mcp_server_package_package_arguments_check
        CHECK (package_arguments IS NULL OR jsonb_typeof(package_arguments) = 'array'),
    CONSTRAINT mcp_server_package_env_vars_check
        CHECK (env_vars IS NULL OR jsonb_typeof(env_vars) = 'array'),
    CONSTRAINT mcp_server_package_transport_headers_check
        CHECK (transport_headers IS NULL OR jsonb_typeof(transport_headers) = 'array')
);

-- ServerDetail.remotes[], in order.
CREATE TABLE mcp_server_remote (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id           UUID NOT NULL REFERENCES mcp_server (version_id) ON DELETE CASCADE,
    position            INTEGER NOT NULL, -- index in remotes[]
    transport           transport_type NOT NULL, -- type
    transport_url       TEXT NOT NULL,    -- url
    transport_headers   JSONB,            -- headers: KeyValueInput[]
    transport_variables JSONB,            -- variables: {name: Input}
    CONSTRAINT mcp_server_remote_server_id_position_key UNIQUE (server_id, position),
    CONSTRAINT mcp_server_remote_identity_key UNIQUE (server_id, transport, transport_url),
    CONSTRAINT mcp_server_remote_position_check CHECK (position >= 0),
    CONSTRAINT mcp_server_remote_transport_check CHECK (transport IN ('streamable-http', 'sse')),
    CONSTRAINT mcp_server_remote_transport_url_check CHECK (transport_url <> ''),
    CONSTRAINT mcp_server_remote_transport_headers_check
        CHECK (transport_headers IS NULL OR jsonb_typeof(transport_headers) = 'array'),
    CONSTRAINT mcp_server_remote_transport_variables_check
        CHECK (transport_variables IS NULL OR jsonb_typeof(transport_variables) = 'object')
);
