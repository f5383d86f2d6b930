"""audiences, versions, refresh runs, usage ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audiences",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=True, index=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("current_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("is_dynamic", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("refresh_interval_seconds", sa.Integer, nullable=True),
        sa.Column("warmup", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("activated_at", sa.DateTime, nullable=True),
        sa.Column("archived_at", sa.DateTime, nullable=True),
        sa.Column("deleted_at", sa.DateTime, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("last_refresh_at", sa.DateTime, nullable=True),
        sa.Column("next_refresh_at", sa.DateTime, nullable=True, index=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "audience_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("audience_id", sa.Integer, sa.ForeignKey("audiences.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("audience_id", "version"),
    )
    op.create_table(
        "refresh_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "audience_id", sa.Integer, sa.ForeignKey("audiences.id"), nullable=False, index=True
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("as_of", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("entered", sa.BigInteger, nullable=True),
        sa.Column("left", sa.BigInteger, nullable=True),
        sa.Column("error_class", sa.String(100), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "audience_id", sa.Integer, sa.ForeignKey("audiences.id"), nullable=False, index=True
        ),
        sa.Column("refresh_id", sa.String(36), nullable=False, unique=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("usage_records", "refresh_runs", "audience_versions", "audiences"):
        op.drop_table(table)
