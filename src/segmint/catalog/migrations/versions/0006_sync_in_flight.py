"""links remember the refresh a sync is delivering; logs record it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audience_links", sa.Column("in_flight", sa.String(36), nullable=True))
    op.add_column("sync_logs", sa.Column("refresh_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_logs") as batch:
        batch.drop_column("refresh_id")
    with op.batch_alter_table("audience_links") as batch:
        batch.drop_column("in_flight")
