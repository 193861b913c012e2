"""Student fingerprint: recognise an unchanged student in a pull without reading its row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows from before have none and are compared in full once, then get one.
    with op.batch_alter_table("student") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("student") as batch:
        batch.drop_column("fingerprint")
