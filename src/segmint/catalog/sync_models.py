"""Catalog tables of destinations and sync (PRODUCT R16–R23): the destinations audiences sync
to, the links between an audience and a destination, and the log of every sync attempt.

They live on the same declarative ``Base`` as the other catalog tables; migration ``0004``
creates them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from segmint.catalog.models import Base


class Destination(Base):
    """A configured platform account audiences sync to. ``status`` is ``active``,
    ``auth_expired``, ``error`` or ``disabled``; ``credentials`` is a Fernet token (never
    plaintext, see :mod:`segmint.sync.secrets`); ``config`` is JSON text of non-secret
    settings (ad account id, file format ...)."""

    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    platform: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    credentials: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    config: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    def __repr__(self) -> str:
        # The default repr would not include the token either, but say so explicitly.
        return (
            f"Destination(id={self.id!r}, name={self.name!r}, platform={self.platform!r}, "
            f"status={self.status!r}, credentials=<encrypted>)"
        )


class AudienceLink(Base):
    """An audience synced to a destination. ``mode`` is ``list`` (R16) or ``event`` (R17);
    ``identifier_mapping`` is JSON text (R18); ``status`` is ``active``, ``unlinked`` (R22:
    syncing stopped, the remote audience left in place) or ``deleted`` (the remote audience was
    removed too). ``cursor`` is the ``refresh_id`` of the last refresh whose changes the
    platform accepted; NULL until the first sync succeeds."""

    __tablename__ = "audience_links"
    __table_args__ = (
        Index(
            "uq_audience_links_active",
            "audience_id",
            "destination_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), nullable=False, index=True)
    destination_id: Mapped[int] = mapped_column(
        ForeignKey("destinations.id"), nullable=False, index=True
    )
    mode: Mapped[str] = mapped_column(String(8), nullable=False)
    identifier_mapping: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    remote_audience_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    cursor: Mapped[str | None] = mapped_column(String(36), nullable=True)
    in_flight: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The refresh a sync started delivering and has not finished: the next sync completes
    that step first, so a partial delivery is never overtaken by a newer target."""
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_instant_sync_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SyncLog(Base):
    """One sync attempt of a link (R23): when, which mode and trigger, how many added,
    removed and skipped (``skipped_reasons`` is JSON text: reason → count), and on failure
    the error's class, message and what to do about it (``remedy``). ``status`` is
    ``running``, ``succeeded``, ``failed`` or ``refused``."""

    __tablename__ = "sync_logs"
    __table_args__ = (Index("ix_sync_logs_audience_started", "audience_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(
        ForeignKey("audience_links.id"), nullable=False, index=True
    )
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"), nullable=False)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id"), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    mode: Mapped[str] = mapped_column(String(8), nullable=False)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)
    added: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    removed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    skipped: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    skipped_reasons: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    error_class: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    remedy: Mapped[str | None] = mapped_column(Text, nullable=True)
    refresh_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The refresh whose membership the attempt delivered (or tried to)."""
