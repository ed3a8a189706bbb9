"""Split a migration file into statements with PostgreSQL's own parser (pglast).

Every statement knows where it starts, whether it cannot run inside a transaction block, and
whether it is explicit transaction control; ``SqlFile.location`` maps a server error position
back to ``file:line:column``. All offsets count characters of the decoded text, as the server's
``statement_position`` does (from 1); libpg_query counts UTF-8 bytes: pglast 8 converts its
tokens and error positions to characters, and the statement spans of its JSON parse tree are
converted here. pglast is imported only inside the functions.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thv_registry.errors import SourceError

if TYPE_CHECKING:
    from pglast.parser import Token

__all__ = ["Statement", "SqlFile", "parse", "decode"]

_BOM = b"\xef\xbb\xbf"
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_SYNTAX_HINT = "Fix the SQL at that position and run again."


@dataclass(frozen=True)
class Statement:
    """One statement of a file, from its first token to its last (no ``;``, no comments around)."""

    text: str
    start: int  #: 0-based character offset of ``text`` in the file
    line: int  #: 1-based line of the first character
    column: int  #: 1-based column (characters) of the first character
    non_transactional: bool  #: refused in a transaction block (CREATE INDEX CONCURRENTLY, ...)
    transaction_control: bool  #: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ... (``TransactionStmt``)
    kind: str  #: pglast node class name, e.g. ``CreateStmt``


@dataclass(frozen=True)
class SqlFile:
    """A parsed migration file."""

    origin: str  #: path shown to users
    text: str
    statements: tuple[Statement, ...]

    @property
    def runs_in_transaction(self) -> bool:
        """Whether the file can run as one transaction (no CONCURRENTLY, VACUUM, COMMIT, ...)."""
        return not any(s.non_transactional or s.transaction_control for s in self.statements)

    def location(self, statement: Statement, position: int | None = None) -> str:
        """Return ``origin:line:col`` for a 1-based character ``position`` in ``statement.text``.

        ``position`` is PostgreSQL's ``statement_position`` (psycopg: ``diag.statement_position``,
        converted to int); ``None`` gives the statement's own start.
        """
        offset = statement.start
        if position is not None:
            offset += min(max(position, 1), max(len(statement.text), 1)) - 1
        line, column = _line_col(_line_starts(self.text), offset)
        return f"{self.origin}:{line}:{column}"


def decode(data: bytes, origin: str) -> str:
    """Decode a migration file as UTF-8 (a leading BOM is dropped); raise SourceError otherwise."""
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data.count(b"\n", 0, offset) + 1
        problem = (
            f"{origin} is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line}) cannot be decoded"
        )
        raise SourceError(
            [problem],
            origin=origin,
            hint="Save the file as UTF-8 (migrations are always read as UTF-8) and run again.",
        ) from exc


def parse(text: str, origin: str) -> SqlFile:
    """Split ``text`` into statements; raise SourceError naming ``origin:line:col`` if invalid."""
    from pglast.parser import ParseError

    starts = _line_starts(text)
    nul = text.find("\x00")
    if nul >= 0:  # libpg_query reads a C string: everything after a NUL would vanish silently
        line, column = _line_col(starts, nul)
        raise SourceError(
            [f"{origin}:{line}:{column}: the file contains a NUL character"],
            origin=origin,
            hint="Remove it (PostgreSQL cannot execute SQL text containing NUL) and run again.",
        )
    try:
        raws, all_tokens = _parse_and_scan(text)
    except ParseError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        index = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else len(text)
        line, column = _line_col(starts, index)
        raise SourceError(
            [f"{origin}:{line}:{column}: {message}"], origin=origin, hint=_SYNTAX_HINT
        ) from exc

    # Trim each statement's span to its first and last real token: spans may include leading
    # (older libpg_query) or trailing (always) whitespace and comments.
    tokens = [t for t in all_tokens if t.name not in _COMMENTS and t.name != "ASCII_59"]
    token_starts = [t.start for t in tokens]
    statements = []
    for raw in raws:
        first = bisect_right(token_starts, raw.begin - 1)
        last = bisect_right(token_starts, raw.end - 1) - 1
        if last < first:  # an empty statement has no node; kept for safety
            continue
        start, stop = tokens[first].start, tokens[last].end + 1
        line, column = _line_col(starts, start)
        body = text[start:stop]
        statements.append(
            Statement(
                text=body,
                start=start,
                line=line,
                column=column,
                non_transactional=_non_transactional(raw.kind, raw.fields, body),
                transaction_control=raw.kind == "TransactionStmt",
                kind=raw.kind,
            )
        )
    return SqlFile(origin=origin, text=text, statements=tuple(statements))


@dataclass(frozen=True)
class _Raw:
    """One statement of libpg_query's JSON parse tree, its span in characters of the text."""

    kind: str  #: the node type, e.g. ``CreateStmt``
    fields: dict[str, Any]  #: the node's fields as JSON (false, 0 and empty lists are omitted)
    begin: int
    end: int


def _parse_and_scan(text: str) -> tuple[list[_Raw], list[Token]]:
    """Parse and scan ``text`` with pglast; positions are character offsets into ``text``.

    The parse tree comes as libpg_query's JSON, read into dicts: about ten times faster than
    pglast's Python node objects, which matters when a run parses a thousand files. Its statement
    spans count UTF-8 bytes, and pglast maps the scanner's byte offsets to characters with a
    linear search, which makes large non-ASCII files quadratic (a 140 KB seed file took 4 s). So
    pglast first gets an ASCII stand-in of the same length (every non-ASCII character becomes
    ``q``, which the lexer treats alike: an identifier character, or plain content in strings and
    comments), where bytes and characters coincide. If that could have changed a token (a
    dollar-quote tag, a keyword), the real text is parsed instead.
    """
    from pglast.parser import ParseError, scan

    if not text.isascii():
        stand_in = "".join(c if c < "\x80" else "q" for c in text)
        try:
            raws, tokens = _statements(stand_in, None), scan(stand_in)
        except ParseError:
            pass  # parse the real text below, for the real message
        else:
            if all(_same_token(text[t.start : t.end + 1], t) for t in tokens):
                return raws, tokens
    return _statements(text, text.encode() if not text.isascii() else None), scan(text)


def _statements(text: str, encoded: bytes | None) -> list[_Raw]:
    """The statements of ``text``; ``encoded`` (its UTF-8) when byte offsets need converting."""
    import json

    from pglast.parser import parse_sql_json

    def chars(offset: int) -> int:
        return offset if encoded is None else len(encoded[:offset].decode("utf-8", "ignore"))

    raws = []
    for item in json.loads(parse_sql_json(text)).get("stmts", ()):
        ((kind, fields),) = item["stmt"].items()
        begin = item.get("stmt_location", 0)
        length = item.get("stmt_len", 0)
        end = chars(begin + length) if length else len(text)
        raws.append(_Raw(kind, fields, chars(begin), end))
    return raws


def _same_token(original: str, token: Token) -> bool:
    """Whether the stand-in's ``token`` is also a token of the original text."""
    if original.isascii():
        return True
    if token.kind != "NO_KEYWORD":  # a keyword made of stand-in characters
        return False
    if token.name == "SCONST" and original.startswith("$"):  # $tag$ ... $tag$
        tag = original[: original.find("$", 1) + 1]
        return len(original) >= 2 * len(tag) and original.endswith(tag)
    return True


def _line_starts(text: str) -> list[int]:
    starts = [0]
    index = text.find("\n")
    while index >= 0:
        starts.append(index + 1)
        index = text.find("\n", index + 1)
    return starts


def _line_col(starts: Sequence[int], offset: int) -> tuple[int, int]:
    line = bisect_right(starts, offset)
    return line, offset - starts[line - 1] + 1


def _non_transactional(kind: str, node: dict[str, Any], text: str) -> bool:
    """Whether PostgreSQL refuses the statement in a transaction block.

    ``PreventInTransactionBlock`` in PostgreSQL's sources; ``node`` is the statement's JSON parse
    tree. Cases that depend on the catalog (REINDEX or CLUSTER of a partitioned table) cannot be
    known from the text; the server reports them when the step runs.
    """
    match kind:
        case "IndexStmt" | "DropStmt":
            return bool(node.get("concurrent"))
        case "ReindexStmt":
            whole = node.get("kind") in (
                "REINDEX_OBJECT_SCHEMA",
                "REINDEX_OBJECT_SYSTEM",
                "REINDEX_OBJECT_DATABASE",
            )
            return whole or _option(node.get("params"), "concurrently", default=False)
        case "VacuumStmt":
            return bool(node.get("is_vacuumcmd"))  # ANALYZE alone is fine in a transaction
        case "ClusterStmt":
            return "relation" not in node
        case "AlterDatabaseStmt":
            return any(o.get("defname") == "tablespace" for o in _defelems(node.get("options")))
        case "AlterTableStmt":
            return any(
                cmd.get("AlterTableCmd", {})
                .get("def", {})
                .get("PartitionCmd", {})
                .get("concurrent")
                for cmd in node.get("cmds", ())
            )
        case "CreateSubscriptionStmt":
            connect = _option(node.get("options"), "connect", default=True)
            return _option(node.get("options"), "create_slot", default=connect)
        case "AlterSubscriptionStmt":
            action = node.get("kind")
            if action == "ALTER_SUBSCRIPTION_REFRESH":
                return True
            if action in (
                "ALTER_SUBSCRIPTION_SET_PUBLICATION",
                "ALTER_SUBSCRIPTION_ADD_PUBLICATION",
                "ALTER_SUBSCRIPTION_DROP_PUBLICATION",
            ):
                return _option(node.get("options"), "refresh", default=True)
            names = {o.get("defname") for o in _defelems(node.get("options"))}
            return action == "ALTER_SUBSCRIPTION_OPTIONS" and bool(
                names & {"failover", "two_phase"}
            )
        case "DiscardStmt":
            return node.get("target") == "DISCARD_ALL"
        case "DoStmt":
            return _do_commits(node, text)
        case (
            "CreatedbStmt"
            | "DropdbStmt"
            | "CreateTableSpaceStmt"
            | "DropTableSpaceStmt"
            | "AlterSystemStmt"
            | "DropSubscriptionStmt"  # refused whenever the subscription has a slot
        ):
            return True
    return False


def _defelems(options: Iterable[Any] | None) -> list[dict[str, Any]]:
    return [o["DefElem"] for o in options or () if "DefElem" in o]


def _option(options: Iterable[Any] | None, name: str, *, default: bool) -> bool:
    """Read a boolean ``WITH (name = value)`` option the way PostgreSQL's ``defGetBoolean`` does."""
    for option in _defelems(options):
        if option.get("defname") != name:
            continue
        arg = option.get("arg")
        if arg is None:
            return True
        if "Integer" in arg:
            return bool(arg["Integer"].get("ival", 0) != 0)
        if "Boolean" in arg:
            return bool(arg["Boolean"].get("boolval"))
        value = str(arg.get("String", {}).get("sval", "")).lower()
        falsy = value in ("0", "of", "off") or "false".startswith(value) or "no".startswith(value)
        return not falsy
    return default


def _do_commits(node: dict[str, Any], text: str) -> bool:
    """Whether a PL/pgSQL ``DO`` block runs COMMIT or ROLLBACK (refused in a transaction block)."""
    from pglast import parse_plpgsql
    from pglast.error import Error

    options = {o.get("defname"): o.get("arg", {}) for o in _defelems(node.get("args"))}
    language = options.get("language", {}).get("String", {}).get("sval", "plpgsql")
    if str(language).lower() != "plpgsql":
        return False
    try:
        tree: object = parse_plpgsql(text)
    except Error:  # the server will report the body's error when the step runs
        return False
    pending = [tree]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if "PLpgSQL_stmt_commit" in item or "PLpgSQL_stmt_rollback" in item:
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
