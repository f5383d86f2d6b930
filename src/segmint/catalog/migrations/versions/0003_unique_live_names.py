"""audience names unique among non-deleted audiences (enforced by the database too)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LIVE = sa.text("status <> 'deleted' AND name IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "uq_audiences_live_name",
        "audiences",
        ["name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_audiences_live_name", table_name="audiences")
