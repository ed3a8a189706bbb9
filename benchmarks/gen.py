"""The generated migration set, written in each tool's own format.

Every step creates a table with an index and inserts three rows; its down drops the table. The
same statements go to every tool, one statement per call where the tool lets us choose.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["up_statements", "down_statements", "write_golang", "write_dbmate", "write_yoyo"]
__all__ += ["write_alembic", "write_sql_migrate", "write_psql_scripts"]


def _table(i: int) -> str:
    return f"bench_{i:06d}"


def up_statements(i: int) -> list[str]:
    t = _table(i)
    return [
        f"CREATE TABLE {t} (id bigint PRIMARY KEY, name text NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now());",
        f"CREATE INDEX {t}_name_idx ON {t} (name);",
        f"INSERT INTO {t} (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    ]


def down_statements(i: int) -> list[str]:
    return [f"DROP TABLE {_table(i)};"]


def _sql(statements: list[str]) -> str:
    return "\n".join(statements) + "\n"


def write_golang(root: Path, n: int) -> Path:
    """golang-migrate's pairs (ours): ``000001_step_1.up.sql`` / ``.down.sql``."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        (root / f"{i:06d}_step_{i}.up.sql").write_text(_sql(up_statements(i)))
        (root / f"{i:06d}_step_{i}.down.sql").write_text(_sql(down_statements(i)))
    return root


def write_dbmate(root: Path, n: int) -> Path:
    """dbmate: one file per version with ``-- migrate:up`` / ``-- migrate:down`` sections."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        text = "-- migrate:up\n" + _sql(up_statements(i))
        text += "\n-- migrate:down\n" + _sql(down_statements(i))
        (root / f"{i:06d}_step_{i}.sql").write_text(text)
    return root


def write_yoyo(root: Path, n: int) -> Path:
    """yoyo: ``NNNNNN_step_i.sql`` and ``.rollback.sql``, each depending on the previous one."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        depends = f"-- depends: {i - 1:06d}_step_{i - 1}\n" if i > 1 else ""
        (root / f"{i:06d}_step_{i}.sql").write_text(depends + _sql(up_statements(i)))
        (root / f"{i:06d}_step_{i}.rollback.sql").write_text(_sql(down_statements(i)))
    return root


_ALEMBIC_ENV = """\
from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

engine = create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
with engine.connect() as connection:
    # one transaction per revision, as the other tools do (alembic's default is one for all)
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
"""

_ALEMBIC_REVISION = '''\
"""step {i}"""
from alembic import op

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None

UP = {up!r}
DOWN = {down_sql!r}


def upgrade():
    for statement in UP:
        op.execute(statement)


def downgrade():
    for statement in DOWN:
        op.execute(statement)
'''


def write_alembic(root: Path, n: int, url: str) -> Path:
    """An alembic environment with raw-SQL revisions; returns the alembic.ini path."""
    versions = root / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (root / "env.py").write_text(_ALEMBIC_ENV)
    (root / "script.py.mako").write_text("")
    for i in range(1, n + 1):
        down = repr(f"{i - 1:06d}") if i > 1 else "None"
        (versions / f"{i:06d}_step_{i}.py").write_text(
            _ALEMBIC_REVISION.format(
                i=i,
                rev=f"{i:06d}",
                down=down,
                up=up_statements(i),
                down_sql=down_statements(i),
            )
        )
    ini = root / "alembic.ini"
    ini.write_text(
        f"[alembic]\nscript_location = {root}\nsqlalchemy.url = {url}\n\n"
        "[loggers]\nkeys = root\n[handlers]\nkeys = console\n[formatters]\nkeys = generic\n"
        "[logger_root]\nlevel = WARNING\nhandlers = console\n"
        "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\n"
        "formatter = generic\n[formatter_generic]\nformat = %(levelname)s %(message)s\n"
    )
    return ini


def write_sql_migrate(root: Path, n: int) -> Path:
    """sql-migrate: one file per version with ``-- +migrate Up`` / ``-- +migrate Down``."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        text = "-- +migrate Up\n" + _sql(up_statements(i))
        text += "\n-- +migrate Down\n" + _sql(down_statements(i))
        (root / f"{i:06d}_step_{i}.sql").write_text(text)
    return root


def write_psql_scripts(root: Path, golang_dir: Path, n: int) -> dict[str, Path]:
    """The psql floors: every up (down) file in one transaction, or one transaction per file."""
    root.mkdir(parents=True, exist_ok=True)
    ups = [golang_dir / f"{i:06d}_step_{i}.up.sql" for i in range(1, n + 1)]
    downs = [golang_dir / f"{i:06d}_step_{i}.down.sql" for i in range(n, 0, -1)]
    scripts = {}
    for name, files in (("up", ups), ("down", downs)):
        per_file = "".join(f"BEGIN;\n\\i {f}\nCOMMIT;\n" for f in files)
        one_tx = "BEGIN;\n" + "".join(f"\\i {f}\n" for f in files) + "COMMIT;\n"
        scripts[f"{name}_per_file"] = root / f"{name}_per_file.sql"
        scripts[f"{name}_per_file"].write_text(per_file)
        scripts[f"{name}_one_tx"] = root / f"{name}_one_tx.sql"
        scripts[f"{name}_one_tx"].write_text(one_tx)
    return scripts
