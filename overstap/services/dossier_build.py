"""Build a student's transfer dossier as XML: from the store, checked, optionally signed.

The one gate every outgoing dossier passes: the XML must be schema-valid and pass the VO-MBO
profile rules; only then is it signed with the sending school's key. Violations come back as a
list (all of them) so a person can fix the data in one go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.audit.chain import AuditEvent
from overstap.bootstrap import HubContext
from overstap.domain.dossier import Dossier
from overstap.domain.errors import InvalidRecord
from overstap.services.dossier_pipeline import checked_tree, registry_envelopes
from overstap.store.audit_log import AuditLog
from overstap.store.dossiers import find_dossiers
from overstap.xml.dsig import Signer
from overstap.xml.profile import ProfileViolation, errors
from overstap.xml.schemas import SchemaViolation

ACTOR = "overstap dossier build"


class DossierNotFound(InvalidRecord):
    """No (single) dossier matches what was asked for."""


@dataclass
class BuiltDossier:
    dossier: Dossier
    xml: bytes | None  # None when a violation stopped it
    schema_violations: list[SchemaViolation] = field(default_factory=list)
    profile_violations: list[ProfileViolation] = field(default_factory=list)
    signed: bool = False

    @property
    def ok(self) -> bool:
        return self.xml is not None


def select_dossiers(
    ctx: HubContext, leerlingid: str, *, school: str | None = None, dossier_id: str | None = None
) -> list[Dossier]:
    with ctx.engine.connect() as conn:
        found = find_dossiers(conn, leerlingid, school)
    if dossier_id is not None:
        found = [d for d in found if d.dossier_id == dossier_id]
    if not found:
        raise DossierNotFound(
            "no dossier found for this student (is the student loaded, and did they apply?)",
            field="student",
            rule="DOSSIER-NOT-FOUND",
            record=leerlingid,
        )
    return found


def build(
    ctx: HubContext,
    dossier: Dossier,
    *,
    today: date,
    signer: Signer | None = None,
    production: bool = False,
) -> BuiltDossier:
    """Map, validate, check the profile and (when a signer is given) sign one dossier."""
    with ctx.engine.connect() as conn:
        envelope = registry_envelopes(conn)(dossier)
    document, schema, profile = checked_tree(dossier, envelope, today=today, production=production)
    built = BuiltDossier(dossier, None, schema, profile)
    if built.schema_violations or errors(built.profile_violations):
        _audit(ctx, dossier, "refused")
        return built
    if signer is not None:
        built.xml = signer.sign_canonical(document.canonical)
        built.signed = True
    else:
        built.xml = etree.tostring(document.root, xml_declaration=True, encoding="UTF-8")
    _audit(ctx, dossier, "ok")
    return built


def _audit(ctx: HubContext, d: Dossier, result: str) -> None:
    with ctx.engine.begin() as conn:
        AuditLog(conn).append(
            AuditEvent(
                ACTOR,
                "dossier.built",
                "dossier",
                d.dossier_id,
                result=result,
                detail={"version": d.version, "receiving": str(d.receiving)},
            )
        )


def describe(found: Sequence[Dossier]) -> list[str]:
    """One line per dossier for a person choosing between several (no personal data)."""
    return [
        f"{d.dossier_id}  school {d.sending}  to {d.receiving}  state {d.state.value}"
        for d in found
    ]
