"""Catalog tables (SQLAlchemy 2 declarative). Changing a table means adding an Alembic
migration under ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
