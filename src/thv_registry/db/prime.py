"""prime-db: the application's role and login user, and what they may do in the schema.

The migration user owns the schema's tables; the application connects as another user that may
read and write them but not change or drop them. ``prime`` creates the group role
``toolhive_registry_server`` (NOLOGIN) and the user if missing, makes the user a member, and
grants the role CONNECT on the database, USAGE on the schema, DML on every table and USAGE/SELECT
on every sequence there, plus default privileges for the tables and sequences the migration user
creates later. Everything runs in one transaction; running it again changes nothing, and the
password of an existing user changes only when asked.

Roles are cluster-wide: two databases of one server primed with the same group role share it,
so the application user of one could write the other's tables. ``role`` names another group
role per database (``database.appRole``); the plan lists the other databases where the role
already holds privileges (from the shared catalog ``pg_shdepend``), so the caller can warn.

Identifiers and literals are composed with ``psycopg.sql``, never formatted into text. The
password never reaches the server in clear: libpq hashes it into a SCRAM-SHA-256 verifier on the
client (``PQencryptPasswordConn``, as psql's ``\\password`` does), so it appears in no server log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thv_registry.db.connect import server_message
from thv_registry.db.roles import check_password as _check_password
from thv_registry.db.roles import check_role as _check_role
from thv_registry.db.roles import check_username as _check_username
from thv_registry.db.roles import role_name_problem
from thv_registry.errors import PrimeDenied, ThvError, UsageError
from thv_registry.redact import MASK

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    from thv_registry.db.connect import ConnectionParams

__all__ = [
    "APP_ROLE", "MASK", "PrimeStatement", "PrimePlan", "PrimeResult", "plan", "prime",
    "role_name_problem",
]  # fmt: skip

APP_ROLE = "toolhive_registry_server"
APPLICATION_NAME = "thv-registry-api prime-db"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
#: the migration state tables (the Migrator's default names), read-only for the application
STATE_TABLES = ("schema_migrations", "schema_migrations_history")
_LOCK_KEY = 0x7468765F70726D  # serialises concurrent prime-db runs (pg_advisory_xact_lock)


@dataclass(frozen=True)
class PrimeStatement:
    """One statement of the plan: what it is for and its SQL with the password masked."""

    purpose: str
    sql: str
    requires: str  #: the privilege the migration user needs for it, for error messages


@dataclass(frozen=True)
class PrimePlan:
    """What ``prime`` would do, read from the server without changing anything."""

    target: str  #: migration user@host:port/database
    migration_user: str
    database: str
    schema: str
    role: str
    username: str
    role_exists: bool
    user_exists: bool
    user_can_login: bool
    is_member: bool
    sets_password: bool  #: a new user, or an existing one with ``update_password``
    statements: tuple[PrimeStatement, ...]
    #: other databases of the server where the group role already holds privileges
    other_databases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrimeResult:
    plan: PrimePlan
    warnings: tuple[str, ...]  #: the server's WARNINGs, e.g. "no privileges were granted for x"


@dataclass(frozen=True)
class _Step:
    """A statement to compose: ``{}`` take ``args`` in order, ``{password}`` the password."""

    purpose: str
    requires: str
    text: str
    args: tuple[sql.Composable, ...]

    def compose(self, password: sql.Composable) -> sql.Composed:
        from psycopg import sql

        return sql.SQL(self.text).format(*self.args, password=password)


@dataclass(frozen=True)
class _Facts:
    migration_user: str
    database: str
    schema: str
    can_create_roles: bool
    role_exists: bool
    user_exists: bool
    user_can_login: bool
    is_member: bool
    state_tables: tuple[str, ...]  #: the migration state tables that exist in the schema
    other_databases: tuple[str, ...] = ()  #: where the role holds privileges besides this one


def plan(
    params: ConnectionParams, username: str, *, update_password: bool = False, role: str = APP_ROLE
) -> PrimePlan:
    """Read the roles and the schema; return the statements ``prime`` would run (read-only)."""
    _check_role(role)
    _check_username(username, role)
    with _connect(params) as conn:
        facts = _facts(conn, username, role)
        return _plan(conn, params, facts, username, role, update_password)[0]


def prime(
    params: ConnectionParams,
    username: str,
    password: str | None,
    *,
    update_password: bool = False,
    role: str = APP_ROLE,
) -> PrimeResult:
    """Create what is missing and grant the privileges, in one transaction.

    :param password: for a new user, or with ``update_password`` for an existing one;
        otherwise unused (``None`` is fine).
    """
    import psycopg
    from psycopg import sql

    _check_role(role)
    _check_username(username, role)
    warnings: list[str] = []
    with _connect(params) as conn:
        conn.add_notice_handler(lambda diag: _collect(warnings, diag))
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            facts = _facts(conn, username, role)  # read again under the lock
            result, steps = _plan(conn, params, facts, username, role, update_password)
            _require_createrole(conn, result, facts)
            secret = sql.Literal(MASK)  # used by no statement unless a password is set
            if result.sets_password:
                if password is None:
                    raise UsageError(
                        f"A password is needed to {_changes(result)}, and none was given.",
                        hint="Give it on standard input (one line) or at the prompt.",
                    )
                _check_password(password)
                secret = sql.Literal(_verifier(conn, username, password))
            for statement, step in zip(result.statements, steps, strict=True):
                try:
                    conn.execute(step.compose(secret))
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise _denied(result, statement, exc) from exc
                except psycopg.Error as exc:
                    raise ThvError(
                        f"prime-db failed at `{statement.sql}` on {result.target}: "
                        f"{server_message(exc)}. Nothing was changed (all statements run in one "
                        "transaction).",
                        hint="Fix the cause and run the command again.",
                    ) from exc
    return PrimeResult(result, tuple(warnings))


# -- planning ------------------------------------------------------------------------------------


def _facts(conn: psycopg.Connection[Any], username: str, role: str) -> _Facts:
    row = conn.execute(
        """SELECT current_user, current_database(), current_schema(),
                  (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user),
                  EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s),
                  EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(user)s),
                  coalesce((SELECT rolcanlogin FROM pg_roles WHERE rolname = %(user)s), false),
                  EXISTS (SELECT 1 FROM pg_auth_members m
                            JOIN pg_roles r ON r.oid = m.roleid
                            JOIN pg_roles u ON u.oid = m.member
                           WHERE r.rolname = %(role)s AND u.rolname = %(user)s),
                  ARRAY(SELECT t FROM unnest(%(state)s::text[]) t
                         WHERE to_regclass(format('%%I.%%I', current_schema(), t)) IS NOT NULL),
                  ARRAY(SELECT DISTINCT d.datname::text FROM pg_shdepend s
                          JOIN pg_database d ON d.oid = CASE
                               WHEN s.dbid = 0 AND s.classid = 'pg_database'::regclass
                               THEN s.objid ELSE s.dbid END
                         WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype = 'a'
                           AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
                           AND d.datname <> current_database()
                         ORDER BY 1)""",
        {"role": role, "user": username, "state": list(STATE_TABLES)},
    ).fetchone()
    assert row is not None
    if row[2] is None:
        raise ThvError(
            f"The migration user {row[0]!r} has no current schema in database {row[1]!r} (no "
            "schema of its search_path exists), so there is nothing to grant on.",
            hint="Create the schema or fix search_path, run `migrate up`, then run prime-db again.",
        )
    if username == row[0]:
        raise UsageError(
            f"User {username!r} is the migration user itself (database.migrationUser, or "
            "database.user when migrationUser is not set); it already owns the tables.",
            hint="prime-db creates a separate application user: set database.migrationUser to "
            "the role that owns the schema and database.user (or USERNAME) to the application's "
            "user, then run it again.",
        )
    role_exists, user_exists, can_login, member = (bool(v) for v in row[4:8])
    return _Facts(row[0], row[1], row[2], bool(row[3]), role_exists, user_exists, can_login,
                  member, tuple(row[8]), tuple(row[9]))  # fmt: skip


def _plan(
    conn: psycopg.Connection[Any],
    params: ConnectionParams,
    facts: _Facts,
    username: str,
    role: str,
    update_password: bool,
) -> tuple[PrimePlan, list[_Step]]:
    """The plan (password masked) and its steps, to be composed again with the password."""
    from psycopg import sql

    ident = sql.Identifier
    r, u, s, owner = ident(role), ident(username), ident(facts.schema), ident(facts.migration_user)
    tables = sql.SQL(", ".join(TABLE_PRIVILEGES))
    sequences = sql.SQL(", ".join(SEQUENCE_PRIVILEGES))
    owns = f"ownership of the objects (or the grant option on them) to grant to {role}"
    member = f"membership in role {facts.migration_user!r}"
    steps: list[_Step] = []
    if not facts.role_exists:
        steps.append(_Step(f"create the group role {role}", "CREATEROLE",
                           "CREATE ROLE {} NOLOGIN", (r,)))  # fmt: skip
    if not facts.user_exists:
        steps.append(_Step(f"create the user {username}", "CREATEROLE",
                           "CREATE ROLE {} LOGIN PASSWORD {password}", (u,)))  # fmt: skip
    elif update_password:
        steps.append(_Step(f"set the password of {username}",
                           f"CREATEROLE and the admin option on role {username!r}",
                           "ALTER ROLE {} PASSWORD {password}", (u,)))  # fmt: skip
    if not facts.is_member:
        steps.append(_Step(f"make {username} a member of {role}",
                           f"the admin option on role {role!r}",
                           "GRANT {} TO {}", (r, u)))  # fmt: skip
    steps += [
        _Step("allow connecting to the database", owns, "GRANT CONNECT ON DATABASE {} TO {}",
              (ident(facts.database), r)),
        _Step("allow using the schema", owns, "GRANT USAGE ON SCHEMA {} TO {}", (s, r)),
        _Step("read and write the existing tables", owns,
              "GRANT {} ON ALL TABLES IN SCHEMA {} TO {}", (tables, s, r)),
        _Step("use the existing sequences", owns,
              "GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}", (sequences, s, r)),
        _Step("read and write the tables migrations create later", member,
              "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}",
              (owner, s, tables, r)),
        _Step("use the sequences migrations create later", member,
              "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON SEQUENCES TO {}",
              (owner, s, sequences, r)),
    ]  # fmt: skip
    if (
        facts.state_tables
    ):  # only migrators write the migration state (the engine, if created later)
        steps.append(_Step("keep the migration state read-only", owns,
                           "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}",
                           (sql.SQL(", ").join(map(ident, facts.state_tables)), r)))  # fmt: skip
    masked = sql.Literal(MASK)
    statements = tuple(
        PrimeStatement(step.purpose, step.compose(masked).as_string(conn), step.requires)
        for step in steps
    )
    result = PrimePlan(
        target=params.describe(),
        migration_user=facts.migration_user,
        database=facts.database,
        schema=facts.schema,
        role=role,
        username=username,
        role_exists=facts.role_exists,
        user_exists=facts.user_exists,
        user_can_login=facts.user_can_login,
        is_member=facts.is_member,
        sets_password=not facts.user_exists or update_password,
        statements=statements,
        other_databases=facts.other_databases,
    )
    return result, steps


def _verifier(conn: psycopg.Connection[Any], username: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed by libpq on this side."""
    raw = conn.pgconn.encrypt_password(password.encode(), username.encode(), b"scram-sha-256")
    return raw.decode("ascii")


# -- checks and errors ---------------------------------------------------------------------------


def _require_createrole(conn: psycopg.Connection[Any], p: PrimePlan, facts: _Facts) -> None:
    """Refuse before anything runs when roles must be created or changed without CREATEROLE."""
    changes = not p.role_exists or not p.user_exists or (p.user_exists and p.sets_password)
    if changes and not facts.can_create_roles:
        from psycopg import sql

        grant = sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(facts.migration_user))
        statement = grant.as_string(conn)
        raise PrimeDenied(
            f"The migration user {facts.migration_user!r} on {p.target} may not create or alter "
            f"roles: prime-db must {_changes(p)}, which needs the CREATEROLE privilege. Nothing "
            "was changed.",
            hint=f"Ask a superuser to run `{statement}`, or to run the planned statements "
            "themselves.",
            user=facts.migration_user,
            grant=statement,
        )


def _changes(p: PrimePlan) -> str:
    what = []
    if not p.role_exists:
        what.append(f"create the role {p.role}")
    if not p.user_exists:
        what.append(f"create the user {p.username}")
    elif p.sets_password:
        what.append(f"set the password of {p.username}")
    return " and ".join(what)


def _denied(p: PrimePlan, statement: PrimeStatement, exc: Any) -> PrimeDenied:
    return PrimeDenied(
        f"prime-db could not {statement.purpose} on {p.target} (`{statement.sql}`): "
        f"{server_message(exc)}. The migration user {p.migration_user!r} needs "
        f"{statement.requires}. Nothing was changed (all statements run in one transaction).",
        hint="Ask a superuser or the objects' owner to grant that, or to run the planned "
        "statements themselves.",
        user=p.migration_user,
        grant=None,
    )


def _collect(warnings: list[str], diag: Any) -> None:
    if diag.severity_nonlocalized == "WARNING" and diag.message_primary:
        warnings.append(diag.message_primary)


def _connect(params: ConnectionParams) -> psycopg.Connection[tuple[Any, ...]]:
    from thv_registry.db.connect import connect

    return connect(params, application_name=APPLICATION_NAME)
