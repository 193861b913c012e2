"""Registration status intake: the message ledger and work items.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "status_message",
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("mbo_brin", sa.String(4), nullable=False),
        sa.Column("subject_key", sa.String(40), nullable=False),
        sa.Column("student_id", sa.Integer()),
        sa.Column("dossier_id", sa.String(64)),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("status_date", sa.Date(), nullable=False),
        sa.Column("sent_at", TZ, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("work_item", sa.String(30)),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name="fk_status_message_student_id_student"
        ),
        sa.PrimaryKeyConstraint("message_id", name="pk_status_message"),
    )
    op.create_index("ix_status_message_mbo_brin", "status_message", ["mbo_brin"])
    op.create_index("ix_status_message_subject_key", "status_message", ["subject_key"])
    op.create_table(
        "work_item",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("subject_key", sa.String(40), nullable=False),
        sa.Column("mbo_brin", sa.String(4), nullable=False),
        sa.Column("student_id", sa.Integer()),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("resolved_at", TZ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name="fk_work_item_student_id_student"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_work_item"),
    )
    op.create_index("ix_work_item_kind", "work_item", ["kind"])
    op.create_index("ix_work_item_message_id", "work_item", ["message_id"])


def downgrade() -> None:
    op.drop_table("work_item")
    op.drop_table("status_message")
