"""The connection boundary: open a psycopg connection, or fail with one clear paragraph.

libpq reports no SQLSTATE for a failed connection attempt, so a failure is classified in two
steps. Unless the server itself answered (a FATAL message), our own probe of the socket decides
whether anything listens at host:port (refused, name not resolvable, timed out, no Unix socket);
a TCP probe opens and closes one connection, which the server may log as an incomplete startup
packet. Only when something listens do a few stable phrases of the message pick the hint:
authentication, missing role or database, pg_hba.conf, SSL. Messages never contain the password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thv_registry.errors import ConnectionFailed
from thv_registry.redact import redact

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ConnectionParams",
    "connect",
    "connect_waiting",
    "WAITABLE",
    "one_line",
    "server_message",
]

_PASSWORD_SOURCES = (
    "database.migrationPassword or database.password in the configuration, "
    "THV_REGISTRY_DATABASE_MIGRATIONPASSWORD or THV_REGISTRY_DATABASE_PASSWORD in the "
    "environment, or its line in ~/.pgpass (or the file PGPASSFILE names)"
)
_PROBE_TIMEOUT_S = 3.0
_LOCATOR = re.compile(
    r'connection to server (on socket "[^"]*"|at "[^"]*"( \([^)]*\))?, port \d+) failed: '
)


@dataclass(frozen=True)
class ConnectionParams:
    """Everything libpq needs to reach one database as one user."""

    host: str
    port: int
    user: str
    dbname: str
    sslmode: str
    password: str | None = field(default=None, repr=False)  #: None: libpq reads ~/.pgpass
    connect_timeout: int = 10  #: seconds libpq waits for a connection (``connect_timeout``)
    #: the session's search_path (one schema, a plain lower-case identifier); None: the server's
    search_path: str | None = None

    def describe(self) -> str:
        """``user@host:port/dbname``, for messages (never the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``psycopg.connect``; the password only when one is set."""
        kwargs: dict[str, object] = {"host": self.host, "port": self.port, "user": self.user}
        kwargs.update(dbname=self.dbname, sslmode=self.sslmode)
        kwargs["connect_timeout"] = self.connect_timeout
        if self.search_path is not None:  # a validated identifier: nothing to escape
            kwargs["options"] = f"-c search_path={self.search_path}"
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def connect(
    params: ConnectionParams, *, application_name: str, connect_timeout: int | None = None
) -> psycopg.Connection[tuple[Any, ...]]:
    """Open an autocommit connection; raise ``ConnectionFailed`` saying what to do if it fails.

    ``connect_timeout``: seconds, instead of the one ``params`` carries.
    """
    import psycopg

    kwargs: dict[str, Any] = dict(params.connect_kwargs())
    if connect_timeout is not None:
        kwargs["connect_timeout"] = connect_timeout
    try:
        return psycopg.connect(autocommit=True, application_name=application_name, **kwargs)
    except psycopg.Error as exc:
        timeout = float(kwargs["connect_timeout"] or _PROBE_TIMEOUT_S)
        raise _failure(params, str(exc), min(timeout, _PROBE_TIMEOUT_S)) from exc


#: ``ConnectionFailed.reason`` values that a server still starting (or not yet reachable) gives
WAITABLE = frozenset({"unreachable", "starting"})


def connect_waiting(
    params: ConnectionParams,
    *,
    application_name: str,
    wait_s: float,
    on_wait: Callable[[ConnectionFailed, float], None] | None = None,
    interval_s: float = 1.0,
) -> psycopg.Connection[tuple[Any, ...]]:
    """``connect``, retried for up to ``wait_s`` seconds while the server is not there yet.

    Only failures that waiting can cure are retried (nothing listens, the host name does not
    resolve yet, the server is starting up); a wrong password fails at once. ``on_wait`` is
    called once, with the first failure and ``wait_s``, before the first pause. When the time is
    up, the last failure is raised with ``waited_s`` set.
    """
    import time

    started = time.monotonic()
    deadline = started + wait_s
    told = False
    while True:
        try:
            return connect(params, application_name=application_name)
        except ConnectionFailed as exc:
            now = time.monotonic()
            if exc.reason not in WAITABLE or wait_s <= 0:
                raise
            if now >= deadline:
                exc.waited_s = now - started
                exc.message = f"{exc.message.rstrip('.')}; gave up after retrying for {wait_s:g} s."
                exc.args = (exc.message,)
                raise
            if not told and on_wait is not None:
                on_wait(exc, wait_s)
            told = True
            time.sleep(max(0.0, min(interval_s, deadline - now)))


def server_message(exc: Any) -> str:
    """The server's error in one line: severity, message, detail, hint and SQLSTATE."""
    diag = exc.diag
    lines = str(exc).strip().splitlines()
    primary = diag.message_primary or (lines[0] if lines else type(exc).__name__)
    if not diag.severity and not diag.sqlstate:  # raised by libpq (e.g. the socket closed)
        return primary
    parts = [f"{diag.severity or 'ERROR'}: {primary}"]
    if diag.message_detail:
        parts.append(f"DETAIL: {diag.message_detail}")
    if diag.message_hint:
        parts.append(f"HINT: {diag.message_hint}")
    if diag.sqlstate:
        parts.append(f"(SQLSTATE {diag.sqlstate})")
    return " ".join(parts)


def one_line(msg: str) -> str:
    """Collapse a multi-line server message: lines joined with '; ', runs of spaces squeezed."""
    lines = (re.sub(r"\s+", " ", line).strip() for line in msg.splitlines())
    return "; ".join(line for line in lines if line).rstrip(" .;")


def _failure(params: ConnectionParams, raw: str, timeout: float) -> ConnectionFailed:
    """Build the one-paragraph error for a failed connection attempt."""
    why = re.sub(r"^connection (failed|is bad): ", "", one_line(raw))
    answered = "FATAL:" in why  # the server itself refused us: it is reachable, skip the probe
    if len(_LOCATOR.findall(why)) == 1:  # one host tried: our message already says where
        why = re.sub(r"^(FATAL|ERROR): ", "", _LOCATOR.sub("", why))
    unreachable = None if answered else _probe(params.host, params.port, timeout)
    if unreachable is not None:
        message, hint = unreachable
        message = f"Cannot connect to PostgreSQL at {params.describe()}: {message}."
        reason: str | None = "unreachable"
    else:
        message, hint, reason = _explain(params, why)
    return ConnectionFailed(
        redact(message, params.password),
        hint=redact(hint, params.password),
        reason=reason,
        user=params.user,
    )


def _probe(host: str, port: int, timeout: float) -> tuple[str, str] | None:
    """Why nothing answers at host:port, as (reason, hint); None if something listens."""
    if "," in host or host.startswith("@"):  # several hosts, abstract socket: let libpq speak
        return None
    import socket  # only once a connection failed: the error path

    if host.startswith("/"):
        return _probe_unix(host, port, timeout)
    hint = (
        "Check database.host and database.port in the configuration, and that the PostgreSQL "
        "server is running and accepts TCP/IP connections there (listen_addresses, port)."
    )
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        reason = f"the host name {host!r} cannot be resolved ({exc.strerror})"
        return reason, "Check database.host in the configuration (spelling, DNS, /etc/hosts)."
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError:
        return f"nothing listens on {host}:{port} (connection refused)", hint
    except TimeoutError:
        reason = f"{host}:{port} did not answer within {timeout:g} s (connection timed out)"
        return reason, hint + " A firewall may be dropping the connection."
    except OSError as exc:
        return f"{host}:{port} cannot be reached ({exc.strerror or exc})", hint
    return None


def _probe_unix(directory: str, port: int, timeout: float) -> tuple[str, str] | None:
    import socket

    path = os.path.join(directory, f".s.PGSQL.{port}")
    hint = (
        "Check database.host (the socket directory) and database.port in the configuration, "
        "and that the PostgreSQL server is running (see its unix_socket_directories setting)."
    )
    if not os.path.isdir(directory):
        return f"the Unix-socket directory {directory} does not exist", hint
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return f"nothing listens on the Unix socket {path}", hint
        except OSError:  # e.g. permission denied: libpq's message says it better
            return None
    return None


def _explain(p: ConnectionParams, why: str) -> tuple[str, str, str | None]:
    """(message, hint, reason) for a server that answered but refused us, from its message."""
    low = why.lower()
    at = f"{p.host}:{p.port}"
    if "no password supplied" in low:
        return (
            f"Authentication failed for user {p.user!r} at {p.describe()}: the server asks for a "
            f"password and none was given ({why}).",
            f"Give the password for {p.user!r} in {_PASSWORD_SOURCES}.",
            "no_password",
        )
    if "authentication failed" in low:
        note = ""
        if p.password is None:
            note = " No password was configured, so libpq took one from PGPASSWORD or ~/.pgpass."
        return (
            f"Authentication failed for user {p.user!r} at {p.describe()}: {why}.{note}",
            f"Check the password for {p.user!r}: {_PASSWORD_SOURCES}.",
            "auth_failed",
        )
    if re.search(r'role ".*" does not exist', low):
        return (
            f"Role {p.user!r} does not exist on the server at {at} ({why}).",
            "Check database.migrationUser / database.user in the configuration, or create the "
            "role (ask your DBA).",
            "role_missing",
        )
    if re.search(r'database ".*" does not exist', low):
        import shlex

        cmd = shlex.join(["createdb", "-h", p.host, "-p", str(p.port), "-U", p.user, p.dbname])
        return (
            f"Database {p.dbname!r} does not exist on the server at {at} ({why}).",
            f"Create it, e.g. `{cmd}`, or ask your DBA; or check database.database in the "
            "configuration.",
            "database_missing",
        )
    if "starting up" in low or "not yet accepting connections" in low:
        return (
            f"The server at {at} is starting up and does not accept connections yet ({why}).",
            "Wait until it is ready and run the command again.",
            "starting",
        )
    if "pg_hba.conf" in low:
        return (
            f"The server at {at} does not accept this connection (user {p.user!r}, database "
            f"{p.dbname!r}, sslmode {p.sslmode}): {why}.",
            "Ask your DBA for a pg_hba.conf entry for this client, user and database; if the "
            "entry requires SSL (hostssl), set sslmode: require.",
            "pg_hba",
        )
    if "does not support ssl" in low:
        return (
            f"The server at {at} does not support SSL, but sslmode is {p.sslmode} ({why}).",
            "For a local server set `sslmode: disable` in the database block of the "
            "configuration; otherwise enable SSL on the server (ssl = on).",
            "ssl",
        )
    if "ssl" in low or "certificate" in low:
        return (
            f"The SSL connection to {at} failed (sslmode {p.sslmode}): {why}.",
            "Check database.sslmode and the certificates: verify-ca and verify-full need the "
            "server's CA in ~/.postgresql/root.crt (or PGSSLROOTCERT).",
            "ssl",
        )
    if "not permitted to log in" in low:
        return (
            f"Role {p.user!r} may not log in to the server at {at} ({why}).",
            f"Ask your DBA to run ALTER ROLE {p.user} LOGIN, or use another user.",
            "login_refused",
        )
    return (
        f"Cannot connect to PostgreSQL at {p.describe()}: {why}.",
        "Check the database settings in the configuration and the server's log, then run the "
        "command again.",
        None,
    )
