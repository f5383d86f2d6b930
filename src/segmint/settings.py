"""One settings object for the whole engine, read from ``SEGMINT_*`` environment variables.

Every default works on a fresh machine: data lives under ``./.segmint/``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from segmint.errors import WRITE_REFUSED, InvalidInput, NoData, not_writable, write_problem


class Settings(BaseSettings):
    """Runtime configuration. Environment variables are the field names, upper-cased,
    prefixed with ``SEGMINT_`` (``SEGMINT_DATA_DIR``, ``SEGMINT_TIMEZONE`` ...)."""

    model_config = SettingsConfigDict(
        env_prefix="SEGMINT_", env_file=".segmint.env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(Path(".segmint"), description="Where the warehouse and catalog live.")
    warehouse_path: Path | None = Field(
        None, description="DuckDB file of the warehouse; default DATA_DIR/warehouse.duckdb."
    )
    catalog_url: str | None = Field(
        None, description="SQLAlchemy URL of the catalog; default sqlite:///DATA_DIR/catalog.db."
    )
    timezone: str = Field("UTC", description="Workspace time zone for calendar windows.")
    host: str = Field("127.0.0.1", description="Address `segmint serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `segmint serve` listens on.")
    geoip_city_db: Path | None = Field(
        None, description="Optional MaxMind GeoIP2/GeoLite2 City .mmdb file for region and city."
    )
    max_message_bytes: int = Field(32 * 1024, ge=1024, description="Largest single message.")
    max_batch_bytes: int = Field(500 * 1024, ge=1024, description="Largest /v1/batch request.")
    max_batch_messages: int = Field(2500, ge=1, description="Most messages in one batch.")
    dedupe_window_hours: int = Field(
        7 * 24, ge=1, description="How long a messageId is remembered for de-duplication."
    )
    ingest_ack: Literal["journal", "commit"] = Field(
        "journal",
        description="When the collection API answers 200: once a request is synced to the "
        "journal beside the warehouse file (stored in the background; fastest), or once it "
        "is committed to the warehouse (reads right after the answer see it).",
    )
    ingest_max_pending: int = Field(
        100_000,
        ge=1,
        description="Most acknowledged messages waiting in memory to be stored; requests "
        "beyond wait for room.",
    )
    ingest_processes: int | None = Field(
        None,
        ge=0,
        description="Processes that prepare (validate again, enrich, turn into rows) large "
        "groups of journaled events while the server stores the groups before; 0 prepares "
        "them in the server's writer thread. Unset: 2 (1 on a one-core machine). Journal "
        "mode only.",
    )
    scheduler: bool = Field(True, description="Run the refresh scheduler inside `segmint serve`.")
    scheduler_every_seconds: float = Field(
        30.0, gt=0, description="How often the in-process scheduler looks for due refreshes."
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"], description="Origins allowed to post events from browsers."
    )

    @field_validator("data_dir")
    @classmethod
    def _not_a_file(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file; name a directory (made if missing)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'"
            ) from exc
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def warehouse_file(self) -> Path:
        return self.warehouse_path or self.data_dir / "warehouse.duckdb"

    @property
    def journal_dir(self) -> Path:
        """The collection journal of the warehouse, beside its file."""
        return self.warehouse_file.with_name(self.warehouse_file.name + ".journal")

    @property
    def catalog_database_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.data_dir / 'catalog.db'}"

    def ensure_data_dir(self) -> Path:
        """The data directory, made when missing. One that cannot be made or written is
        refused saying why (:class:`NotWritable` for a read-only file system or missing
        permissions, :class:`InvalidInput` for a file in the way), before anything opens
        a database in it."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            chain = (self.data_dir, *self.data_dir.parents)
            blocking = next((p for p in chain if p.is_file()), self.data_dir)
            raise InvalidInput(
                f"cannot make the data directory {self.data_dir}: {blocking} is a file, not a "
                "directory — choose another --data-dir (SEGMINT_DATA_DIR)"
            ) from None
        except OSError as exc:
            reason = WRITE_REFUSED.get(exc.errno or 0, exc.strerror or str(exc))
            raise not_writable(self.data_dir, reason) from None
        problem = write_problem(self.data_dir)
        if problem:
            raise not_writable(self.data_dir, problem)
        return self.data_dir

    def holds_data(self) -> bool:
        """Whether Segmint data is where these settings point: the warehouse file, or the
        catalog's SQLite file. With a catalog database elsewhere (PostgreSQL), an existing
        data directory counts: what it holds cannot be told from here."""
        from segmint.catalog.db import sqlite_file  # SQLAlchemy: only when asked

        if self.warehouse_file.is_file():
            return True
        catalog = sqlite_file(self.catalog_database_url)
        return catalog.is_file() if catalog is not None else self.data_dir.is_dir()

    def require_data(self) -> None:
        """Refuse (:class:`NoData`) settings that point where there is no Segmint data: a
        command that only reads, or changes what exists, must not make an empty workspace of
        a mistyped ``--data-dir``."""
        if not self.holds_data():
            raise NoData(
                f"no Segmint data in {self.data_dir} — check --data-dir / SEGMINT_DATA_DIR, "
                "or create it with `segmint demo` / `segmint generate`"
            )


def get_settings() -> Settings:
    """Settings from the current environment (a fresh read each call: tests change env)."""
    return Settings()
