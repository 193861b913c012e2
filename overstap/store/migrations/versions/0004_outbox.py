"""Delivery: routes per institution and the transactional outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delivery_route",
        sa.Column("brin", sa.String(4), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["brin"], ["mbo_institution.brin"], name="fk_delivery_route_brin_mbo_institution"
        ),
        sa.PrimaryKeyConstraint("brin", name="pk_delivery_route"),
    )
    op.create_table(
        "outbox",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("object_ref", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(4), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("lease_until", TZ),
        sa.Column("last_error", sa.Text()),
        sa.Column("receipt", sa.Text()),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ),
        sa.PrimaryKeyConstraint("message_id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_object_ref", "outbox", ["object_ref"])
    op.create_index("ix_outbox_recipient", "outbox", ["recipient"])
    op.create_index("ix_outbox_state", "outbox", ["state"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("delivery_route")
