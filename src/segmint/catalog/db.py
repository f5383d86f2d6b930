"""Opening the catalog and keeping its schema current with Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from segmint.errors import (
    WRITE_REFUSED,
    ConfigurationError,
    StorageUnavailable,
    not_writable,
    write_problem,
)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration's revision. A catalog already there is opened without Alembic (whose
# import and migration scripts cost ~0.2 s, at every command); a test checks this is
# Alembic's head.
HEAD_REVISION = "0006"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Catalog:
    """A catalog database: a SQLAlchemy engine and a session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work commits when the block ends, or rolls back on error. A
        catalog that refuses writes (a read-only file or file system, missing permissions)
        raises :class:`NotWritable`, never the database's error with the statement and its
        parameters."""
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            refused = _write_refused(exc, self.engine)
            if refused is None:
                raise
            raise not_writable(*refused) from None

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def open_catalog(url: str, *, upgrade: bool = True) -> Catalog:
    """Open the catalog at ``url`` (creating a SQLite file's folder), migrated to the latest
    schema unless ``upgrade`` is false."""
    file = sqlite_file(url)
    if file is not None and not file.parent.is_dir():
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = WRITE_REFUSED.get(exc.errno or 0, exc.strerror or str(exc))
            raise not_writable(file.parent, reason) from None
    engine = _engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    _reachable(engine)
    if upgrade and not _at_head(engine):
        from alembic import command

        config = alembic_config(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    return Catalog(engine)


_URL_FORMS = "sqlite:///PATH, or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


def _engine(url: str) -> Engine:
    """The SQLAlchemy engine of ``url``; a URL it cannot use is a configuration error."""
    try:
        # Parameters stay out of errors and logs: they hold key and password hashes.
        return create_engine(url, future=True, hide_parameters=True)
    except ModuleNotFoundError as exc:  # the database's driver is not installed
        hint = (
            "; for PostgreSQL, pip install 'segmint[postgres]' (psycopg 3) and write the URL "
            "as postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
            if url.startswith("postgres")
            else ""
        )
        raise ConfigurationError(
            f"the catalog URL (SEGMINT_CATALOG_URL) needs the Python module {exc.name!r}, "
            f"which is not installed{hint}"
        ) from None
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigurationError(
            f"the catalog URL (SEGMINT_CATALOG_URL) {_shown(url)!r} is not one Segmint can "
            f"use ({exc}); use {_URL_FORMS}"
        ) from None


def _shown(url: str) -> str:
    """``url`` with its password hidden, or as given when it does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite catalog URL (``sqlite:///PATH``, or the URI form
    ``sqlite:///file:PATH?mode=ro&uri=true``); ``None`` for another database or memory."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") != "true" or not database.startswith("file:"):
        return Path(database)
    location = urlsplit(database)
    if parsed.query.get("mode") == "memory" or "mode=memory" in location.query:
        return None
    return Path(unquote(location.path))


def _reachable(engine: Engine) -> None:
    """Connect once, so that a catalog that cannot be reached is one clear error."""
    try:
        with engine.connect():  # SQLite's connection pragmas read the file
            pass
    except (DatabaseError, InterfaceError) as exc:
        refused = _write_refused(exc, engine)
        if refused is not None:
            raise not_writable(*refused) from None
        reason = _reason(exc)
        file = sqlite_file(engine.url.render_as_string(hide_password=False))
        if file is not None and file.is_dir():
            hint = "That is a directory: point SEGMINT_CATALOG_URL or --data-dir at the catalog"
        elif file is not None and _damaged(reason):
            hint = (
                "If the file is damaged or not Segmint's, move it aside and restore a backup "
                "(it holds the keys, users, audiences and destinations)"
            )
        elif file is not None:
            hint = "Check the path and that its folder can be read and written"
        else:
            hint = "Is its server running, and the URL right?"
        raise StorageUnavailable(
            f"cannot open the catalog at {engine.url.render_as_string(hide_password=True)} "
            f"(SEGMINT_CATALOG_URL): {reason}. {hint}"
        ) from None


def _reason(exc: DBAPIError) -> str:
    """The database's own words (first line): never SQLAlchemy's, which add the statement
    and its parameters."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__


def _damaged(reason: str) -> bool:
    """Whether SQLite's ``reason`` says the file itself is bad (not its place)."""
    return any(words in reason for words in ("not a database", "malformed", "corrupt"))


def _write_refused(exc: DBAPIError, engine: Engine) -> tuple[str, str] | None:
    """Where and why the catalog refuses to be written, when ``exc`` says it does: its
    folder's or file's problem (read-only file system, permission denied) when there is one,
    else the database's words; ``None`` for any other error."""
    reason = _reason(exc).lower()
    read_only = "readonly" in reason or "read-only" in reason
    file = sqlite_file(engine.url.render_as_string(hide_password=False))
    if file is not None and (read_only or "unable to open" in reason or "denied" in reason):
        for path in (file.parent, file):
            problem = write_problem(path)
            if problem:
                return str(path), problem
    where = str(file) if file is not None else engine.url.render_as_string(hide_password=True)
    if read_only:
        return where, "the database is read-only"
    if "permission denied" in reason:
        return where, "permission denied"
    return None


def _at_head(engine: Engine) -> bool:
    """Whether the catalog is at the newest schema (False when it has none yet)."""
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version"))
            return [row[0] for row in versions] == [HEAD_REVISION]
    except SQLAlchemyError:  # no alembic_version table: a new catalog
        return False
