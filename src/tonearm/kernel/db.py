"""The database handle: one SQLAlchemy `MetaData`, engine creation by URL, shared column types.

Tables live in each domain's `tables.py` and register on `metadata`; `tonearm.kernel.schema`
imports them all so Alembic and tests see the whole model. Nothing connects at import time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones; we store naive UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


def id_column(name: str = "id", **kw: Any) -> sa.Column[str]:
    """22-character base-62 primary key (see kernel.ids)."""
    return sa.Column(name, sa.String(22), primary_key=True, **kw)


def fk(
    name: str, target: str, *, nullable: bool = False, ondelete: str = "CASCADE", **kw: Any
) -> sa.Column[Any]:
    return sa.Column(name, sa.String(22), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable, **kw)


def created_at() -> sa.Column[dt.datetime]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run while the worker writes; NORMAL sync is safe with WAL and much faster.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-8192")  # 8 MiB per connection; the OS page cache does the rest
    cur.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Engine for `sqlite:///...` or `postgresql://...` (psycopg 3), with sane pool settings."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take control so that BEGIN IMMEDIATE
        # can be used for writers (see begin_write) and reads see a consistent snapshot.
        sa.event.listen(engine, "connect", _disable_pysqlite_begin)
        sa.event.listen(engine, "begin", _emit_begin)
        return engine
    return sa.create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _disable_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _emit_begin(conn: sa.Connection) -> None:
    mode = conn.info.pop("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def is_sqlite(engine: Engine | sa.Connection) -> bool:
    return engine.dialect.name == "sqlite"


class Database:
    """The unit of work's entry point: `with db.write() as conn:` is one transaction.

    On SQLite a writer takes the lock up front (BEGIN IMMEDIATE) so two writers never deadlock
    upgrading a read lock; readers use plain deferred transactions and never block under WAL.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)

    def write(self) -> _Tx:
        return _Tx(self.engine, immediate=self.sqlite)

    def read(self) -> _Tx:
        return _Tx(self.engine, immediate=False)

    @contextlib.contextmanager
    def raw(self) -> Iterator[Any]:
        """A pooled driver connection for `RawQuery` reads, without SQLAlchemy's Connection and
        its BEGIN/COMMIT round trip (SQLite runs each SELECT on its own; the pool rolls back
        PostgreSQL's implicit transaction when the connection is returned)."""
        conn = self.engine.raw_connection()
        try:
            yield conn
        finally:
            conn.close()

    def dispose(self) -> None:
        self.engine.dispose()


class _Tx:
    def __init__(self, engine: Engine, *, immediate: bool) -> None:
        self._engine = engine
        self._immediate = immediate
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None

    def __enter__(self) -> sa.Connection:
        self._conn = self._engine.connect()
        if self._immediate:
            self._conn.info["sqlite_begin"] = "IMMEDIATE"
        self._tx = self._conn.begin()
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._conn is not None and self._tx is not None
        try:
            if exc_type is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self._conn.close()


class RawQuery:
    """A fixed SELECT run on the driver's own cursor, skipping SQLAlchemy's per-call result setup.

    For the few hottest reads only (a single-track lookup costs ~40 us in SQLite and ~5x that in
    SQLAlchemy's execution machinery). Write the SQL with `:name` parameters; it is translated once
    to the driver's paramstyle. Rows come back as plain tuples.
    """

    _NAMED = re.compile(r"(?<!:):([a-z_]+)")

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self._pyformat = self._NAMED.sub(r"%(\1)s", sql)

    def run(self, raw: Any, params: dict[str, Any], *, sqlite: bool) -> list[tuple[Any, ...]]:
        """Runs on a connection from `Database.raw()`; `sqlite` picks the parameter style."""
        cur = raw.cursor()
        try:
            cur.execute(self.sql if sqlite else self._pyformat, params)
            return list(cur.fetchall())
        finally:
            cur.close()
