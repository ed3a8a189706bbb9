"""``prime-db``: create the application's role and user and grant them the schema (thin wrapper).

The library (:mod:`thv_registry.db.prime`) plans and runs; this reads the password (one line on
standard input, or a prompt without echo on a terminal) only when one is needed, and shows the
plan (``--dry-run``, password masked) or the outcome.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli.context import (
    AppContext,
    config_option,
    database_url_option,
    global_options,
    pass_app,
)
from thv_registry.errors import Cancelled, UsageError

if TYPE_CHECKING:
    from thv_registry.db.prime import PrimePlan, PrimeResult

__all__ = ["prime_db_command", "read_password"]


@click.command("prime-db", short_help="Create the application role and user, and grant access.")
@click.argument("username", required=False)
@config_option
@database_url_option
@click.option("--dry-run", is_flag=True, help="Print the SQL (password masked); change nothing.")
@click.option(
    "--role",
    "role_option",
    metavar="NAME",
    help="The group role to create and grant the schema to. Roles are shared by every database "
    "of the server, so give each database its own. [config: database.appRole; default "
    "toolhive_registry_server]",
)
@click.option(
    "--update-password", is_flag=True, help="Also set the password of a user that already exists."
)
@global_options
@pass_app
def prime_db_command(
    app: AppContext,
    username: str | None,
    dry_run: bool,
    role_option: str | None,
    update_password: bool,
) -> None:
    """Create the group role (--role, database.appRole, default toolhive_registry_server) and the
    application user USERNAME (default: database.user), and grant the role read/write access to
    the schema's tables, including
    tables that migrations create later. Connects as database.migrationUser, which needs
    CREATEROLE. The password is read from standard input (one line) or, on a terminal, prompted
    for without echo. Running it again changes nothing; an existing user's password changes only
    with --update-password.
    """
    from thv_registry.db import prime as prime_db

    settings = app.settings
    if settings is None and app.database_url is None:
        raise UsageError(
            "prime-db needs --config FILE (its database: block names the server, the migration "
            "user to connect as and, by default, the application user to create) or "
            "--database-url URL with the USERNAME to create.",
            hint="Pass --config (or set THV_REGISTRY_CONFIG), or --database-url and USERNAME.",
        )
    params = app.migration_params()
    database = settings.database if settings is not None else None
    user = username or (database.user if database is not None else None)
    if user is None:
        raise UsageError(
            "prime-db with --database-url needs USERNAME, the application user to create (the "
            "URL's user is the migration user it connects as).",
            hint="e.g. thv-registry-api prime-db app --database-url URL",
        )
    role = role_option or (settings and settings.database and settings.database.app_role)
    role = role or prime_db.APP_ROLE
    plan = prime_db.plan(params, user, update_password=update_password, role=role)
    if dry_run:
        show_dry_run(plan, json_mode=app.json_mode)
        return
    password = read_password(user, existing=plan.user_exists) if plan.sets_password else None
    result = prime_db.prime(params, user, password, update_password=update_password, role=role)
    show_result(result, json_mode=app.json_mode)


def read_password(username: str, *, existing: bool) -> str:
    """One line from standard input, or a prompt without echo (asked twice) on a terminal."""
    stream = sys.stdin
    if stream is not None and not stream.closed and stream.isatty():
        what = "New password for" if existing else "Password for the new user"
        answer: str = click.prompt(
            f"{what} {username}", hide_input=True, confirmation_prompt=True, err=True
        )
        return answer
    line = ""
    if stream is not None and not stream.closed:
        try:
            line = stream.readline()
        except (OSError, ValueError):  # bad descriptor, undecodable bytes
            line = ""
    if not line:
        raise Cancelled(
            f"A password is needed for user {username!r}, but standard input is closed or empty "
            "and is not a terminal; nothing was changed.",
            hint="Pipe the password in as one line (e.g. from a secret store), or run "
            "interactively to be prompted.",
        )
    return line.removesuffix("\n").removesuffix("\r")


def show_dry_run(plan: PrimePlan, *, json_mode: bool) -> None:
    if json_mode:
        click.echo(json.dumps({"event": "plan", **_facts(plan), "statements": _sql(plan)}))
        return
    lines = [
        f"-- prime-db dry run on {plan.target} (schema {plan.schema}): nothing was changed.",
        f"-- {_state(plan)}",
    ]
    if plan.sets_password:
        lines.append("-- The password is masked: '********' stands for its SCRAM-SHA-256 hash.")
    lines += ["BEGIN;", *(f"{s.sql};" for s in plan.statements), "COMMIT;"]
    click.echo("\n".join(lines))
    _warn_shared_role(plan)


def show_result(result: PrimeResult, *, json_mode: bool) -> None:
    plan = result.plan
    if json_mode:
        fields = {"event": "done", **_facts(plan), "warnings": list(result.warnings)}
        click.echo(json.dumps(fields | {"statements": _sql(plan)}))
        return
    if not plan.user_exists:
        user = "created with the password given"
    elif plan.sets_password:
        user = "exists; password updated"
    else:
        user = "exists; password left unchanged (pass --update-password to change it)"
    click.echo(
        "\n".join(
            [
                f"Database: {plan.target} (schema {plan.schema})",
                f"Role {plan.role}: {'exists' if plan.role_exists else 'created'}.",
                f"User {plan.username}: {user}.",
                f"Membership: {plan.username} "
                f"{'was already' if plan.is_member else 'is now'} a member of {plan.role}.",
                f"Granted to {plan.role}: CONNECT on database {plan.database}, USAGE on schema "
                f"{plan.schema}, SELECT, INSERT, UPDATE, DELETE on its tables and USAGE, SELECT "
                f"on its sequences, now and for those {plan.migration_user} creates later.",
            ]
        )
    )
    _warn_shared_role(plan)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if not plan.user_can_login and plan.user_exists:
        click.echo(f"Warning: user {plan.username} exists but cannot log in (NOLOGIN).", err=True)


def _state(plan: PrimePlan) -> str:
    role = "exists" if plan.role_exists else "is missing"
    if plan.user_exists:
        how = "will be updated" if plan.sets_password else "is left unchanged"
        user = f"user {plan.username} exists (its password {how})"
    else:
        user = f"user {plan.username} is missing"
    return f"Role {plan.role} {role}; {user}."


def _facts(plan: PrimePlan) -> dict[str, Any]:
    return {
        "database": plan.target,
        "schema": plan.schema,
        "role": plan.role,
        "role_created": not plan.role_exists,
        "user": plan.username,
        "user_created": not plan.user_exists,
        "password_set": plan.sets_password,
        "membership_granted": not plan.is_member,
        "role_in_other_databases": list(plan.other_databases),
    }


def _warn_shared_role(plan: PrimePlan) -> None:
    """Roles are cluster-wide: a role primed for another database lets its users in here too."""
    if not plan.other_databases:
        return
    where = ", ".join(plan.other_databases)
    click.echo(
        f"Warning: role {plan.role} already holds privileges in other databases of this server "
        f"({where}); its members there (their application users) can read and write the tables "
        f"of {plan.database} too. Give each database its own role: --role NAME "
        "(or database.appRole in the config).",
        err=True,
    )


def _sql(plan: PrimePlan) -> list[str]:
    return [s.sql for s in plan.statements]
