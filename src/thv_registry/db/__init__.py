"""Connections to PostgreSQL: libpq parameters to a session (``connect``), the embedded server."""
