"""The audit table without a unique index on the hash; on SQLite, seq becomes the rowid.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Why (ADR 9): the unique index on a random SHA-256 put every append on a random leaf of an index
the size of the chain, so each batch of 5,000 records dirtied thousands of pages; reconciling
150,000 reports took 2.5 s longer with it (bench/reconcile.py). Nothing looks a record up by
hash, and uniqueness of a hash in a chain is the chain's own property, checked by verify.
On SQLite a BIGINT primary key is a second B-tree beside the rowid; INTEGER makes seq the rowid
itself (same 64-bit range), so appends and verify's range scans use one tree.

SQLite cannot drop a constraint or change a key in place: the table is rebuilt (copied in seq
order, every byte of every record kept) and its indexes and append-only triggers made again.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    "seq, at, actor, action, object_kind, object_ref, result, origin, detail, prev_hash, hash"
)
_BODY = """
    at VARCHAR(32) NOT NULL,
    actor VARCHAR(200) NOT NULL,
    action VARCHAR(60) NOT NULL,
    object_kind VARCHAR(40) NOT NULL,
    object_ref VARCHAR(200) NOT NULL,
    result VARCHAR(40) NOT NULL,
    origin VARCHAR(200) NOT NULL,
    detail TEXT NOT NULL,
    prev_hash VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL,
    CONSTRAINT pk_audit_event PRIMARY KEY (seq)"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite("INTEGER", unique_hash=False)
    else:
        op.drop_constraint("uq_audit_event_hash", "audit_event", type_="unique")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite("BIGINT", unique_hash=True)
    else:
        op.create_unique_constraint("uq_audit_event_hash", "audit_event", ["hash"])


def _rebuild_sqlite(seq_type: str, *, unique_hash: bool) -> None:
    unique = ",\n    CONSTRAINT uq_audit_event_hash UNIQUE (hash)" if unique_hash else ""
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    op.execute(
        f"CREATE TABLE audit_event_rebuilt (\n    seq {seq_type} NOT NULL,{_BODY}{unique}\n)"
    )
    op.execute(
        f"INSERT INTO audit_event_rebuilt ({_COLUMNS}) "  # noqa: S608 (fixed names)
        f"SELECT {_COLUMNS} FROM audit_event ORDER BY seq"
    )
    # DROP TABLE fires no row triggers, and the guards are gone already.
    op.execute("DROP TABLE audit_event")
    op.execute("ALTER TABLE audit_event_rebuilt RENAME TO audit_event")
    op.create_index("ix_audit_event_object", "audit_event", ["object_kind", "object_ref"])
    op.create_index("ix_audit_event_action_at", "audit_event", ["action", "at"])
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
            f"BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: {verb} refused'); END"
        )
