"""The migration engine: files (source, sqlfile), state, lock, planner, runner, ``Migrator``.

Imports nothing from ``thv_registry.cli`` or ``thv_registry.migrations.tools``.
"""
