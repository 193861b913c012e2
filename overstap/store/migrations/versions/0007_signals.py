"""Signals: the signal table as the rules need it, residence history, the cohort calendar, and the
two student facts the rules read (left the cohort, startkwalificatie).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The signal table of 0001 was never written to (no code raised signals before this revision), so
it is replaced rather than altered; the upgrade refuses if it holds rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    held = op.get_bind().execute(sa.text("SELECT count(*) FROM signal")).scalar_one()
    if held:
        raise RuntimeError(f"signal holds {held} rows; this revision expects it empty")
    op.add_column("student", sa.Column("cohort_left_on", sa.Date()))
    op.add_column("student", sa.Column("startkwalificatie_on", sa.Date()))
    op.create_table(
        "residence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.Date()),
        sa.Column("gemeente", sa.String(6), nullable=False),
        sa.Column("straat", sa.String(200)),
        sa.Column("huisnummer", sa.String(20)),
        sa.Column("postcode", sa.String(6)),
        sa.Column("plaats", sa.String(100)),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name="fk_residence_student_id_student"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_residence"),
    )
    op.create_index("ix_residence_student_id", "residence", ["student_id"])
    op.create_table(
        "school_calendar",
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("registration_deadline", sa.Date(), nullable=False),
        sa.Column("zomerlek_date", sa.Date(), nullable=False),
        sa.Column("afgewezen_grace_days", sa.Integer(), nullable=False),
        sa.Column("diploma_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("school_year", name="pk_school_calendar"),
    )
    op.create_index(
        "ix_status_message_registration", "status_message", ["student_id", "mbo_brin", "sent_at"]
    )
    op.drop_index("ix_signal_gemeente", "signal")
    op.drop_index("ix_signal_state", "signal")
    op.drop_table("signal")
    op.create_table(
        "signal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signal_ref", sa.String(36), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("gemeente", sa.String(6), nullable=False),
        sa.Column("regio", sa.String(4)),
        sa.Column("signal_date", sa.Date(), nullable=False),
        sa.Column("raised_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("withdrawn_on", sa.Date()),
        sa.Column("withdraw_reason", sa.Text()),
        sa.Column("file_id", sa.String(64)),
        sa.Column("withdrawal_file_id", sa.String(64)),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name="fk_signal_student_id_student"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_signal"),
        sa.UniqueConstraint("signal_ref", name="uq_signal_signal_ref"),
        sa.UniqueConstraint(
            "student_id", "kind", "school_year", name="uq_signal_student_id_kind_school_year"
        ),
    )
    op.create_index("ix_signal_state", "signal", ["state"])
    op.create_index("ix_signal_gemeente", "signal", ["gemeente"])
    op.create_index("ix_signal_file_id", "signal", ["file_id"])
    op.create_table(
        "municipality_route",
        sa.Column("gemeente", sa.String(6), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["gemeente"], ["municipality.code"], name="fk_municipality_route_gemeente_municipality"
        ),
        sa.PrimaryKeyConstraint("gemeente", name="pk_municipality_route"),
    )
    # Signal files go to municipalities: a recipient is a BRIN or a GMnnnn code. (Batch mode:
    # SQLite cannot alter a column, so it copies the table; PostgreSQL alters it in place.)
    with op.batch_alter_table("outbox") as outbox:
        outbox.alter_column("recipient", type_=sa.String(6), existing_type=sa.String(4))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as outbox:
        outbox.alter_column("recipient", type_=sa.String(4), existing_type=sa.String(6))
    op.drop_table("municipality_route")
    op.drop_index("ix_signal_file_id", "signal")
    op.drop_index("ix_signal_gemeente", "signal")
    op.drop_index("ix_signal_state", "signal")
    op.drop_table("signal")
    op.create_table(
        "signal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("gemeente", sa.String(6), nullable=False),
        sa.Column("raised_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name="fk_signal_student_id_student"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_signal"),
        sa.UniqueConstraint(
            "student_id", "kind", "school_year", name="uq_signal_student_id_kind_school_year"
        ),
    )
    op.create_index("ix_signal_state", "signal", ["state"])
    op.create_index("ix_signal_gemeente", "signal", ["gemeente"])
    op.drop_index("ix_status_message_registration", "status_message")
    op.drop_table("school_calendar")
    op.drop_index("ix_residence_student_id", "residence")
    op.drop_table("residence")
    op.drop_column("student", "startkwalificatie_on")
    op.drop_column("student", "cohort_left_on")
