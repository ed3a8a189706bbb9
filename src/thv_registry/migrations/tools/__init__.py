"""What authors and operators run on a migration set beside the engine: status, create, lint,
verify (snapshots, sample rows), plan explanation with lock levels, backups."""
