"""Cryptography the hub applies to its payloads (CMS encryption; XML signatures live in overstap.xml)."""
