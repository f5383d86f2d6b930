"""destinations, audience links, sync logs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("credentials", sa.LargeBinary, nullable=False),
        sa.Column("config", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "audience_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "audience_id", sa.Integer, sa.ForeignKey("audiences.id"), nullable=False, index=True
        ),
        sa.Column(
            "destination_id",
            sa.Integer,
            sa.ForeignKey("destinations.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("identifier_mapping", sa.Text, nullable=False, server_default="{}"),
        sa.Column("remote_audience_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("cursor", sa.String(36), nullable=True),
        sa.Column("last_synced_at", sa.DateTime, nullable=True),
        sa.Column("last_instant_sync_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_index(
        "uq_audience_links_active",
        "audience_links",
        ["audience_id", "destination_id"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_table(
        "sync_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "link_id", sa.Integer, sa.ForeignKey("audience_links.id"), nullable=False, index=True
        ),
        sa.Column("audience_id", sa.Integer, sa.ForeignKey("audiences.id"), nullable=False),
        sa.Column("destination_id", sa.Integer, sa.ForeignKey("destinations.id"), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("removed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("skipped", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("skipped_reasons", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_class", sa.String(100), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("remedy", sa.Text, nullable=True),
    )
    op.create_index("ix_sync_logs_audience_started", "sync_logs", ["audience_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_sync_logs_audience_started", table_name="sync_logs")
    op.drop_table("sync_logs")
    op.drop_index("uq_audience_links_active", table_name="audience_links")
    op.drop_table("audience_links")
    op.drop_table("destinations")
