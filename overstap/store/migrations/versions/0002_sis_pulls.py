"""SIS pulls: where each school's SIS is, pull runs with their counts, quarantined records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sis_source",
        sa.Column("school", sa.String(6), nullable=False),
        sa.Column("connector", sa.String(20), nullable=False),
        sa.Column("mapping", sa.String(60), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("watermark", sa.String(200)),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["school"], ["vo_school.location"], name="fk_sis_source_school_vo_school"
        ),
        sa.PrimaryKeyConstraint("school", name="pk_sis_source"),
    )
    op.create_table(
        "sis_pull",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("school", sa.String(6), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("watermark_before", sa.String(200)),
        sa.Column("watermark_after", sa.String(200)),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("records_in", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.ForeignKeyConstraint(
            ["school"], ["vo_school.location"], name="fk_sis_pull_school_vo_school"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sis_pull"),
    )
    op.create_index("ix_sis_pull_school", "sis_pull", ["school"])
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pull_id", sa.Integer(), nullable=False),
        sa.Column("school", sa.String(6), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("field", sa.String(120), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["pull_id"], ["sis_pull.id"], name="fk_quarantine_pull_id_sis_pull"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )
    op.create_index("ix_quarantine_pull_id", "quarantine", ["pull_id"])
    op.create_index("ix_quarantine_school", "quarantine", ["school"])
    op.create_index("ix_quarantine_rule", "quarantine", ["rule"])


def downgrade() -> None:
    op.drop_table("quarantine")
    op.drop_table("sis_pull")
    op.drop_table("sis_source")
