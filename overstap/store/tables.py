"""The hub's own tables (SQLAlchemy Core). Alembic migrations are the only way they change.

Personal numbers are stored where a delivery needs them (the dossier carries the BSN); every
place outside the record itself (audit, logs, file names) uses `subject_key`, the keyed pseudonym.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names so migrations are the same on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

doorstroompunt_region = Table(
    "doorstroompunt_region",
    metadata,
    Column("code", String(4), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("contact_gemeente", String(6), nullable=False),
)

municipality = Table(
    "municipality",
    metadata,
    Column("code", String(6), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("region", String(4), ForeignKey("doorstroompunt_region.code"), nullable=False),
    Column("oin", String(20), nullable=False, unique=True),
)

vo_school = Table(
    "vo_school",
    metadata,
    Column("location", String(6), primary_key=True),  # BRIN4 + vestiging
    Column("brin", String(4), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("oin", String(20), nullable=False, unique=True),
    Column("gemeente", String(6), nullable=False),
    Column("sis", String(40), nullable=False),
)

mbo_institution = Table(
    "mbo_institution",
    metadata,
    Column("brin", String(4), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("oin", String(20), nullable=False, unique=True),
    Column("transport", String(10), nullable=False),
)

student = Table(
    "student",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("school", String(6), ForeignKey("vo_school.location"), nullable=False),
    Column("leerlingid", String(64), nullable=False),
    Column("subject_key", String(40), nullable=False, index=True),
    Column("bsn", String(9)),
    Column("onderwijsnummer", String(9)),
    Column("voornamen", String(200), nullable=False),
    Column("roepnaam", String(100), nullable=False, default=""),
    Column("voorvoegsel", String(40), nullable=False, default=""),
    Column("achternaam", String(200), nullable=False),
    Column("geboortedatum", Date, nullable=False),
    Column("gemeente", String(6), nullable=False, index=True),
    Column("adres_geheim", Boolean, nullable=False),
    Column("straat", String(200)),
    Column("huisnummer", String(20)),
    Column("postcode", String(6)),
    Column("plaats", String(100)),
    Column("phone", String(40), nullable=False, default=""),
    Column("email", String(200), nullable=False, default=""),
    Column("guardians", JSON, nullable=False),
    Column("level", String(10), nullable=False),
    Column("leerjaar", Integer, nullable=False),
    Column("leaving_year", Boolean, nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Digest of the compared columns (store.students.fingerprint): an unchanged student is
    # recognised without reading the row (migration 0003).
    Column("fingerprint", String(32)),
    # Facts the signal rules read (migration 0007), outside the compared SIS columns: the day the
    # school recorded that the student does not go to mbo (e.g. continues to havo), and the day
    # the student has a startkwalificatie (a havo/vwo diploma), when known.
    Column("cohort_left_on", Date),
    Column("startkwalificatie_on", Date),
    UniqueConstraint("school", "leerlingid"),
)

# Where a student lived from which day (migration 0007): signals go to the municipality of
# residence on the signal date. A student without rows lives where the student row says; a
# student who moved has a row without `since` (from the first record) and one per move.
residence = Table(
    "residence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("student_id", Integer, ForeignKey("student.id"), nullable=False, index=True),
    Column("since", Date),
    Column("gemeente", String(6), nullable=False),
    Column("straat", String(200)),
    Column("huisnummer", String(20)),
    Column("postcode", String(6)),
    Column("plaats", String(100)),
)

# The signal dates of each leaving cohort (migration 0007); a year without a row uses the
# defaults of overstap.domain.calendar.SchoolCalendar.
school_calendar = Table(
    "school_calendar",
    metadata,
    Column("school_year", String(9), primary_key=True),
    Column("registration_deadline", Date, nullable=False),
    Column("zomerlek_date", Date, nullable=False),
    Column("afgewezen_grace_days", Integer, nullable=False),
    Column("diploma_date", Date, nullable=False),
)

dossier = Table(
    "dossier",
    metadata,
    Column("dossier_id", String(64), primary_key=True),
    Column("student_id", Integer, ForeignKey("student.id"), nullable=False, index=True),
    Column("receiving", String(4), ForeignKey("mbo_institution.brin"), nullable=False),
    Column("crebo", String(5), nullable=False),
    Column("mbo_level", Integer, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("state", String(20), nullable=False, index=True),
    Column("content", JSON, nullable=False),  # parts A and B, inzage, career, result
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

registration = Table(
    "registration",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("student_id", Integer, ForeignKey("student.id"), nullable=False),
    Column("mbo_brin", String(4), ForeignKey("mbo_institution.brin"), nullable=False),
    Column("dossier_id", String(64), ForeignKey("dossier.dossier_id")),
    Column("status", String(30), nullable=False, index=True),
    # The mbo's own message time orders statuses; arrival order does not (out-of-order delivery).
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("student_id", "mbo_brin"),
)

signal = Table(
    "signal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The public id (overstap.domain.signals.signal_ref): what the file carries and a withdrawal
    # names; built from the pseudonym, kind and school year.
    Column("signal_ref", String(36), nullable=False, unique=True),
    Column("student_id", Integer, ForeignKey("student.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("school_year", String(9), nullable=False),  # the leaving cohort's school year
    Column("state", String(20), nullable=False, index=True),
    # Municipality of residence on the signal date, and its Doorstroompunt region (None: the
    # municipality is not in the registry, so there is no route yet; visible, never dropped).
    Column("gemeente", String(6), nullable=False, index=True),
    Column("regio", String(4)),
    Column("signal_date", Date, nullable=False),  # when the situation arose
    Column("raised_on", Date, nullable=False),  # the evaluation day that raised it
    Column("reason", Text, nullable=False),
    Column("withdrawn_on", Date),
    Column("withdraw_reason", Text),
    # The signal file that carried it to the municipality, and the one that carried its
    # withdrawal (a withdrawal of a signal never sent goes nowhere).
    Column("file_id", String(64), index=True),
    Column("withdrawal_file_id", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # At most one signal per student, kind and school year (DOMAIN.md).
    UniqueConstraint("student_id", "kind", "school_year"),
)

audit_event = Table(
    "audit_event",
    metadata,
    # seq is assigned by the chain, not by the database, because it is part of the hash. On
    # SQLite INTEGER (64-bit there too) makes it the rowid: one B-tree, not two (migration 0006).
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("at", String(32), nullable=False),  # ISO-8601 UTC text: hashed exactly as stored
    Column("actor", String(200), nullable=False),
    Column("action", String(60), nullable=False),
    Column("object_kind", String(40), nullable=False),
    Column("object_ref", String(200), nullable=False),
    Column("result", String(40), nullable=False),
    Column("origin", String(200), nullable=False),
    Column("detail", Text, nullable=False),  # canonical JSON, no personal data
    Column("prev_hash", String(64), nullable=False),
    # Not unique-indexed: nothing looks a record up by hash, and the index on random hashes
    # made every append dirty a random page (ADR 9); verify checks the chain itself.
    Column("hash", String(64), nullable=False),
    Index("ix_audit_event_object", "object_kind", "object_ref"),
    Index("ix_audit_event_action_at", "action", "at"),
)

audit_checkpoint = Table(
    "audit_checkpoint",
    metadata,
    # The chain head signed by the hub (migration 0008; overstap.audit.checkpoint): seq and hash
    # of the last record covered, the time, the detached signature over the payload, and the
    # signing certificate (PEM) so a checkpoint verifies on its own.
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("hash", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("signature", Text, nullable=False),  # base64
    Column("certificate", Text, nullable=False),  # PEM
)

audit_head = Table(
    "audit_head",
    metadata,
    # One row: the last seq and hash. It serialises appenders (row lock) and lets verify notice
    # rows cut off the end of the chain; signed checkpoints make that proof independent.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


# --- SIS pulls (migration 0002) ----------------------------------------------------------------

sis_source = Table(
    "sis_source",
    metadata,
    # How a school's SIS is reached, and how far the last successful pull got.
    Column("school", String(6), ForeignKey("vo_school.location"), primary_key=True),
    Column("connector", String(20), nullable=False),  # file, sftp, rest, soap
    Column("mapping", String(60), nullable=False),  # a mapping in mappings/sis/
    Column("settings", JSON, nullable=False),  # connector settings; secrets by reference only
    Column("watermark", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

sis_pull = Table(
    "sis_pull",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("school", String(6), ForeignKey("vo_school.location"), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False),  # running, ok, failed
    Column("watermark_before", String(200)),
    Column("watermark_after", String(200)),
    Column("documents", Integer, nullable=False, default=0),
    Column("records_in", Integer, nullable=False, default=0),
    Column("created", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("error", Text),  # why a pull failed (no personal data)
)

quarantine = Table(
    "quarantine",
    metadata,
    # A record the hub refused, kept with its exact bytes until someone fixes the source.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pull_id", Integer, ForeignKey("sis_pull.id"), nullable=False, index=True),
    Column("school", String(6), nullable=False, index=True),
    Column("ref", String(200), nullable=False),  # file and line, page and record
    Column("raw", LargeBinary, nullable=False),
    Column("field", String(120), nullable=False),
    Column("rule", String(60), nullable=False, index=True),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


# --- Delivery (migration 0004) -----------------------------------------------------------------

delivery_route = Table(
    "delivery_route",
    metadata,
    # How an institution takes deliveries; settings point at secrets, never hold them.
    Column("brin", String(4), ForeignKey("mbo_institution.brin"), primary_key=True),
    Column("transport", String(10), nullable=False),  # soap, sftp
    Column("settings", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

municipality_route = Table(
    "municipality_route",
    metadata,
    # How a municipality takes signal files (migration 0007); settings point at secrets.
    Column("gemeente", String(6), ForeignKey("municipality.code"), primary_key=True),
    Column("transport", String(10), nullable=False),  # sftp, folder, soap
    Column("settings", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    # One outgoing message with its MessageID and exact bytes (the transactional outbox).
    Column("message_id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),  # dossier
    Column("object_ref", String(64), nullable=False, index=True),  # e.g. the dossier id
    Column("recipient", String(6), nullable=False, index=True),  # mbo BRIN or GMnnnn
    Column("transport", String(10), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("state", String(20), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("receipt", Text),  # what the receiver answered (ids and codes only)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
)


# --- Registration statuses (migration 0005) -----------------------------------------------------

status_message = Table(
    "status_message",
    metadata,
    # Every status report that came in, with what it did: the idempotency key and the ledger.
    Column("message_id", String(128), primary_key=True),  # berichtid
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("channel", String(10), nullable=False),  # soap, sftp, file
    Column("mbo_brin", String(4), nullable=False, index=True),
    Column("subject_key", String(40), nullable=False, index=True),
    Column("student_id", Integer, ForeignKey("student.id")),
    Column("dossier_id", String(64)),
    Column("status", String(30), nullable=False),
    Column("status_date", Date, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("work_item", String(30)),
    # A registration's reports in the mbo's time order: the signal rules read each
    # registration's latest report on a day (migration 0007).
    Index("ix_status_message_registration", "student_id", "mbo_brin", "sent_at"),
)

work_item = Table(
    "work_item",
    metadata,
    # A report that did not fit: for a person to resolve; never a crash, never dropped.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(30), nullable=False, index=True),
    Column("message_id", String(128), nullable=False, index=True),
    Column("subject_key", String(40), nullable=False),
    Column("mbo_brin", String(4), nullable=False),
    Column("student_id", Integer, ForeignKey("student.id")),
    Column("detail", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
)
