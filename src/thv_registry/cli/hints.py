"""What to do next, in the CLI's words: the hint of every engine error, from its fields.

The engine raises errors that say what happened in data terms (versions, the step, the lock
holder, the configured bounds); this module words the advice a user of ``thv-registry-api``
follows: which command, which flag, which config key. :func:`describe` is the paragraph printed
for an error. An error this module does not know keeps the hint it was raised with.
"""

from __future__ import annotations

from thv_registry.errors import (
    ChecksumMismatch,
    ConfigError,
    ConnectionLost,
    DirtyDatabase,
    DirtyRecovery,
    LockTimeout,
    MigrationFailed,
    MissingDownFile,
    MissingFromSource,
    NotEnoughApplied,
    OutOfOrder,
    PermissionDenied,
    SchemaMissing,
    SourceError,
    StateChanged,
    StateTablesDenied,
    StepRef,
    TableLockTimeout,
    ThvError,
    UnknownVersion,
    VersionAlreadySet,
)

__all__ = ["describe", "hint_for", "dirty_recovery", "command"]

PROG = "thv-registry-api"

_SESSION_ENDED = (
    "The session was ended by an administrator (pg_terminate_backend), a server restart or a "
    "network failure"
)
_AGAIN = "then run the command again."


def describe(exc: ThvError) -> str:
    """The error's message followed by what to do next (the CLI's hint, else the error's own)."""
    hint = hint_for(exc)
    if not hint:
        return exc.message
    end = "" if exc.message.rstrip().endswith((".", "!", "?", ":")) else "."
    return f"{exc.message}{end} {hint}"


def command(args: str) -> str:
    """A migrate command as the user types it, quoted for a sentence."""
    return f"`{PROG} migrate {args} --config FILE`"


def _force(version: int | None) -> str:
    return command(f"force {-1 if version is None else version}")


def _shown(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


def dirty_recovery(recovery: DirtyRecovery) -> str:
    """The two ways out of a dirty version, each with the version to force.

    One wording for every dirty state: a refused command, a failed non-transactional step, a
    connection lost in one.
    """
    if recovery.direction == "down":
        finish, undo = "finish the revert", "restore what it already dropped"
    else:
        finish, undo = "finish the change", "undo what it changed"
    text = (
        f"Inspect the schema, then either (1) {finish} by hand and run "
        f"{_force(recovery.if_finished)}, or (2) {undo} by hand and run "
        f"{_force(recovery.if_undone)}; {_AGAIN}"
    )
    if not recovery.recorded and recovery.direction is not None:
        text += " (A step that ran in a transaction needs nothing undone by hand: choose (2).)"
    return (
        f"{text} (force runs no migration: it only rewrites schema_migrations, clean, and "
        "records the force in the history.)"
    )


def hint_for(exc: ThvError) -> str | None:
    """The advice for ``exc`` in CLI terms."""
    from thv_registry.cli.tool_hints import tool_hint  # the tools' and db/'s errors

    if isinstance(exc, ConfigError):
        from thv_registry.cli.config_hints import config_hint

        return config_hint(exc) or exc.hint
    if (hint := tool_hint(exc)) is not None:
        return hint
    if isinstance(exc, DirtyDatabase) and exc.recovery is not None:
        return dirty_recovery(exc.recovery)
    if isinstance(exc, TableLockTimeout):
        return _table_lock_hint(exc)
    if isinstance(exc, MigrationFailed):
        return _step_hint(exc)
    if isinstance(exc, ConnectionLost):
        return _lost_hint(exc)
    if isinstance(exc, LockTimeout):
        return _lock_wait_hint(exc)
    if isinstance(exc, PermissionDenied) and exc.needed_for is not None:
        return _privilege_hint(exc)
    return _refusal_hint(exc)


def _refusal_hint(exc: ThvError) -> str | None:
    """Requests refused before anything ran; a source set that is unusable."""
    if isinstance(exc, UnknownVersion):
        return {
            "goto": "Pick one of the versions in the migration set, or 0 for no version.",
            "force": "Force one of the versions of the migration set, or -1 for no version.",
            "baseline": "Baseline one of the versions of the migration set: the last one whose "
            "changes the schema already has.",
            "accept_changed": "Name in --accept-changed the version of a changed file that "
            "`migrate status` reports.",
        }.get(exc.purpose, exc.hint)
    if isinstance(exc, MissingFromSource):
        return (
            "Run the release whose migrations include that version, or pass --migrations-dir "
            "with the right directory."
        )
    if isinstance(exc, ChecksumMismatch):
        flags = " ".join(f"--accept-changed {c.version}" for c in exc.changed)
        return (
            "Restore the file as it was (e.g. git checkout) and put the change in a new "
            "migration; or, if the edit changes nothing that ran (comments, formatting), accept "
            f"it with `{flags}` (the new checksum is recorded in the history)."
        )
    if isinstance(exc, OutOfOrder):
        return (
            "Renumber the file(s) above the current version (e.g. with the next free number) so "
            "they run in order, then run up again."
        )
    if isinstance(exc, NotEnoughApplied):
        if exc.applied:
            return f"Use --num-steps {exc.applied} (or 0) to revert all of them."
        return "The database has no version; there is nothing to revert."
    if isinstance(exc, MissingDownFile):
        return "Write the down file (or stop above this version) and run again."
    if isinstance(exc, StateChanged):
        return "Run the command again to see the database as it is now."
    if isinstance(exc, VersionAlreadySet):
        return (
            f"To set the version by hand, use {_force(exc.requested)} (it asks for 'yes'); "
            f"{command('status')} shows what is applied."
        )
    if isinstance(exc, SchemaMissing):
        owner = exc.user or "the migration user"
        return (
            f"Create it (CREATE SCHEMA {exc.schema} AUTHORIZATION {owner}; or ask your DBA), "
            "or correct migrations.schema in the configuration."
        )
    if isinstance(exc, SourceError) and exc.missing_directory is not None:
        return (
            "Pass --migrations-dir (or THV_REGISTRY_MIGRATIONS_DIR) with the directory that "
            "holds the NNNNNN_description.up.sql / .down.sql files."
        )
    return exc.hint


def _step_hint(exc: MigrationFailed) -> str | None:
    step = exc.step
    if step is None:
        return exc.hint
    if exc.phase == "recording":
        return (
            "The migration's own statements ran without error; the version update in the same "
            "transaction failed. A migration must leave schema_migrations and its history table "
            f"in place, writable by the migration user; fix the file, {_AGAIN}"
        )
    if exc.phase == "marking":
        return f"Fix what the server reports, {_AGAIN}"
    if exc.phase == "finishing":
        return f"All of the step ran: run {_force(step.target)} to mark it clean; {_AGAIN}"
    if exc.recovery is not None:
        return dirty_recovery(exc.recovery)
    return "Fix the SQL in the file and run the command again."


def _table_lock_hint(exc: TableLockTimeout) -> str:
    pids = ", ".join(map(str, exc.blocker_pids)) or "PID"
    return (
        "Let that session commit or roll back (or end it with SELECT "
        f"pg_terminate_backend({pids})), then run the command again. Waiting longer is possible "
        "with --lock-timeout MS and --lock-retries N (config: migrations.lockTimeoutMs, "
        "migrations.lockRetries; the attempts' bounds grow from 100 ms to --lock-timeout), but "
        "while the migration waits for its lock, every other query on the table waits behind it."
    )


def _lock_wait_hint(exc: LockTimeout) -> str:
    holder = exc.holder
    pid = getattr(holder, "pid", None) or "PID"
    text = (
        "Wait for it to finish and run again, or wait longer with --lock-wait SECONDS (config: "
        "migrations.lockWaitSeconds). If that session is stuck, end it with SELECT "
        f"pg_terminate_backend({pid}); its transactional step is rolled back"
    )
    if getattr(holder, "golang_migrate", False):
        return (
            f"{text}, but it looks like golang-migrate, which marks each step dirty before "
            "running it: ending it leaves the version dirty, and the next command refuses "
            "until the version is forced (it says which)."
        )
    return text + "."


def _lost_hint(exc: ConnectionLost) -> str:
    step = exc.step
    if step is None:
        return f"{_SESSION_ENDED}; run the command again when the server is reachable."
    return f"{_SESSION_ENDED}. {_lost_step_hint(step, exc.phase)}"


def _lost_step_hint(step: StepRef, phase: str | None) -> str:
    if step.transactional:
        if phase == "committing":
            return (
                f"Run {command('version')} to see which, then run the command again (a "
                "committed step is not run twice)."
            )
        return "Run the command again when the server is reachable."
    target = _shown(step.target)
    if phase == "marking":
        return (
            f"If {command('version')} says {target} (dirty), nothing of it ran: run "
            f"{_force(step.before)}; {_AGAIN}"
        )
    if phase == "finishing":
        return f"If {command('version')} says {target} (dirty), run {_force(step.target)}; {_AGAIN}"
    return dirty_recovery(step.recovery())


def _privilege_hint(exc: PermissionDenied) -> str | None:
    user = repr(exc.user) if exc.user else "in use"
    schema = exc.schema or "public"
    if isinstance(exc, StateTablesDenied) and exc.missing:
        by_table: dict[str, list[str]] = {}
        for table, privilege in exc.missing:
            by_table.setdefault(table, []).append(privilege)
        role = _ident(exc.user) if exc.user else "the_migration_user"
        grants = " ".join(
            f"GRANT {', '.join(privileges)} ON {table} TO {role};"
            for table, privileges in by_table.items()
        )
        create = f" GRANT USAGE, CREATE ON SCHEMA {schema} TO {role};" if exc.create else ""
        return (
            f"Ask the tables' owner (or a superuser) to run: {grants}{create} Then run the "
            "command again."
        )
    if exc.needed_for == "state_tables":
        return (
            f"The migration user {user} needs CREATE on the schema (GRANT USAGE, CREATE ON "
            f"SCHEMA {schema} TO that user)."
        )
    if exc.needed_for == "step":
        return (
            f"The migration user {user} needs privileges to create and drop tables, types and "
            f"indexes and to modify the schema, e.g. GRANT USAGE, CREATE ON SCHEMA {schema} TO "
            "that user, or ownership of the objects the migration alters (ALTER TABLE ... OWNER "
            "TO ...)."
        )
    return exc.hint


def _ident(name: str) -> str:
    """A role name as SQL: bare when it is a plain lower-case identifier, else double-quoted."""
    import re

    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'
