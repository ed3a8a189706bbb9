-- 000005_mcp_server_icons (up): icons of an MCP server version.
--
-- ServerDetail.icons[] of the MCP Registry API: where each icon is, its MIME
-- type, the sizes it is drawn for and the theme (light or dark background) it
-- suits. Pattern: a new enum type and a new table that uses it.

-- Theme an icon is designed for; NULL means any theme.
CREATE TYPE icon_theme AS ENUM (
    'LIGHT',
    'DARK'
);

-- ServerDetail.icons[], in order.
CREATE TABLE mcp_server_icon (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id  UUID NOT NULL REFERENCES mcp_server (version_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL, -- index in icons[]
    source_uri TEXT NOT NULL,    -- src
    mime_type  TEXT,             -- mimeType
    sizes      TEXT[],           -- sizes ("48x48", "any")
    theme      icon_theme,       -- theme; NULL means any
    CONSTRAINT mcp_server_icon_server_id_position_key UNIQUE (server_id, position),
    CONSTRAINT mcp_server_icon_position_check CHECK (position >= 0),
    CONSTRAINT mcp_server_icon_source_uri_check CHECK (source_uri <> '')
);
