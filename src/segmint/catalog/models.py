"""Catalog tables (SQLAlchemy 2 declarative). Changing a table means adding an Alembic
migration under ``migrations/versions``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class WriteKey(Base):
    """A key: ``write`` keys let sources send events; ``admin`` keys call the REST API
    (``/api/v1``). Only its SHA-256 is stored; the key itself is shown once, at creation."""

    __tablename__ = "keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    key_prefix: Mapped[str] = mapped_column(String(12), nullable=False)
    scope: Mapped[str] = mapped_column(String(10), nullable=False, default="write")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Audience(Base):
    """A named definition and its lifecycle. ``status`` is ``draft``, ``active``,
    ``archived`` or ``deleted``; names are unique among audiences that are not deleted."""

    __tablename__ = "audiences"
    __table_args__ = (
        Index(
            "uq_audiences_live_name",
            "name",
            unique=True,
            sqlite_where=text("status <> 'deleted' AND name IS NOT NULL"),
            postgresql_where=text("status <> 'deleted' AND name IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    current_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    is_dynamic: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    refresh_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    warmup: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_refresh_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    next_refresh_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    versions: Mapped[list[AudienceVersion]] = relationship(
        back_populates="audience", order_by="AudienceVersion.version", cascade="all"
    )


class AudienceVersion(Base):
    """One version of an audience's definition: every change makes a new one."""

    __tablename__ = "audience_versions"
    __table_args__ = (UniqueConstraint("audience_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")

    audience: Mapped[Audience] = relationship(back_populates="versions")


class RefreshRun(Base):
    """One refresh of an audience: when, how long, what came of it (PRODUCT B9)."""

    __tablename__ = "refresh_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)
    as_of: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    entered: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    left: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error_class: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class UsageRecord(Base):
    """The usage ledger (R11): each refresh consumes events equal to the audience size."""

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), nullable=False, index=True)
    refresh_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    day: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)


class User(Base):
    """A person who signs in to the web UI. Only an Argon2id hash of the password is kept."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


from segmint.catalog import sync_models as _sync_models  # noqa: E402,F401  (so Alembic sees them)
