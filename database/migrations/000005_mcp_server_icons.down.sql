-- 000005_mcp_server_icons (down): remove the icons table and its enum type.
--
-- THE ICONS OF ALL MCP SERVER VERSIONS ARE LOST.

DROP TABLE mcp_server_icon;
DROP TYPE icon_theme;
