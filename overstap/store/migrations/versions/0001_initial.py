"""Initial schema: region, students, dossiers, registrations, signals, audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

# The audit table refuses UPDATE, DELETE and TRUNCATE by trigger (SECURITY.md). A superuser or
# someone holding the SQLite file can still drop the trigger: the hash chain is the guarantee.
PG_AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION overstap_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "doorstroompunt_region",
        sa.Column("code", sa.String(4), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("contact_gemeente", sa.String(6), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_doorstroompunt_region"),
    )
    op.create_table(
        "municipality",
        sa.Column("code", sa.String(6), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("region", sa.String(4), nullable=False),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(
            ["region"],
            ["doorstroompunt_region.code"],
            name="fk_municipality_region_doorstroompunt_region",
        ),
        sa.PrimaryKeyConstraint("code", name="pk_municipality"),
        sa.UniqueConstraint("oin", name="uq_municipality_oin"),
    )
    op.create_table(
        "vo_school",
        sa.Column("location", sa.String(6), nullable=False),
        sa.Column("brin", sa.String(4), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.Column("gemeente", sa.String(6), nullable=False),
        sa.Column("sis", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("location", name="pk_vo_school"),
        sa.UniqueConstraint("oin", name="uq_vo_school_oin"),
    )
    op.create_index("ix_vo_school_brin", "vo_school", ["brin"])
    op.create_table(
        "mbo_institution",
        sa.Column("brin", sa.String(4), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("brin", name="pk_mbo_institution"),
        sa.UniqueConstraint("oin", name="uq_mbo_institution_oin"),
    )
    op.create_table(
        "student",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("school", sa.String(6), nullable=False),
        sa.Column("leerlingid", sa.String(64), nullable=False),
        sa.Column("subject_key", sa.String(40), nullable=False),
        sa.Column("bsn", sa.String(9), nullable=True),
        sa.Column("onderwijsnummer", sa.String(9), nullable=True),
        sa.Column("voornamen", sa.String(200), nullable=False),
        sa.Column("roepnaam", sa.String(100), nullable=False),
        sa.Column("voorvoegsel", sa.String(40), nullable=False),
        sa.Column("achternaam", sa.String(200), nullable=False),
        sa.Column("geboortedatum", sa.Date(), nullable=False),
        sa.Column("gemeente", sa.String(6), nullable=False),
        sa.Column("adres_geheim", sa.Boolean(), nullable=False),
        sa.Column("straat", sa.String(200), nullable=True),
        sa.Column("huisnummer", sa.String(20), nullable=True),
        sa.Column("postcode", sa.String(6), nullable=True),
        sa.Column("plaats", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(40), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("guardians", sa.JSON(), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("leerjaar", sa.Integer(), nullable=False),
        sa.Column("leaving_year", sa.Boolean(), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["school"], ["vo_school.location"], name="fk_student_school_vo_school"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_student"),
        sa.UniqueConstraint("school", "leerlingid", name="uq_student_school_leerlingid"),
    )
    op.create_index("ix_student_subject_key", "student", ["subject_key"])
    op.create_index("ix_student_gemeente", "student", ["gemeente"])
    op.create_table(
        "dossier",
        sa.Column("dossier_id", sa.String(64), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("receiving", sa.String(4), nullable=False),
        sa.Column("crebo", sa.String(5), nullable=False),
        sa.Column("mbo_level", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["receiving"], ["mbo_institution.brin"], name="fk_dossier_receiving_mbo_institution"
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name="fk_dossier_student_id_student"
        ),
        sa.PrimaryKeyConstraint("dossier_id", name="pk_dossier"),
    )
    op.create_index("ix_dossier_student_id", "dossier", ["student_id"])
    op.create_index("ix_dossier_state", "dossier", ["state"])
    op.create_table(
        "registration",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("mbo_brin", sa.String(4), nullable=False),
        sa.Column("dossier_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("status_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"], ["dossier.dossier_id"], name="fk_registration_dossier_id_dossier"
        ),
        sa.ForeignKeyConstraint(
            ["mbo_brin"], ["mbo_institution.brin"], name="fk_registration_mbo_brin_mbo_institution"
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["student.id"], name="fk_registration_student_id_student"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_registration"),
        sa.UniqueConstraint("student_id", "mbo_brin", name="uq_registration_student_id_mbo_brin"),
    )
    op.create_index("ix_registration_status", "registration", ["status"])
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
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("object_kind", sa.String(40), nullable=False),
        sa.Column("object_ref", sa.String(200), nullable=False),
        sa.Column("result", sa.String(40), nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_event"),
        sa.UniqueConstraint("hash", name="uq_audit_event_hash"),
    )
    op.create_index("ix_audit_event_object", "audit_event", ["object_kind", "object_ref"])
    op.create_index("ix_audit_event_action_at", "audit_event", ["action", "at"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    # The head exists from the start, so concurrent first appenders lock one row instead of
    # racing to insert it.
    op.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")
    _audit_guard_up()


def _audit_guard_up() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_AUDIT_GUARD)
        op.execute(
            "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION overstap_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION overstap_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE OR TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION overstap_audit_append_only()"
        )
    elif dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: {verb} refused'); END"
            )
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            "BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_delete ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS overstap_audit_append_only()")
    for table in (
        "audit_head",
        "audit_event",
        "signal",
        "registration",
        "dossier",
        "student",
        "mbo_institution",
        "vo_school",
        "municipality",
        "doorstroompunt_region",
    ):
        op.drop_table(table)
