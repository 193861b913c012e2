"""The audit trail: keyed pseudonyms and the append-only hash chain."""
