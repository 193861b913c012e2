"""Issue the development PKI for the hub and every party of a region."""

from __future__ import annotations

import os
from pathlib import Path

from overstap.config import Settings
from overstap.domain.errors import ConfigurationError
from overstap.domain.identifiers import Oin
from overstap.pki.devca import PartySpec, PkiLayout, init_dev_pki, passphrase_from
from overstap.region.model import Region, load_region
from overstap.xml.dsig import Signer

# A test-range OIN (prefix 00000099) for the development hub; production configures its own.
DEV_HUB_OIN = "00000099000000000001"


def hub_party(env: dict[str, str] | None = None) -> PartySpec:
    env = dict(os.environ) if env is None else env
    return PartySpec(
        slug="hub",
        name="Overstap Hub",
        oin=Oin.parse(env.get("OVERSTAP_HUB_OIN", DEV_HUB_OIN)),
        kind="hub",
    )


def hub_signer(pki_dir: Path, passphrase: bytes) -> Signer:
    """The hub's signing key and chain: every document the hub sends is signed by the hub
    (SECURITY.md: "a document the hub signs"; ADR 6). Load it once per process and reuse it."""
    layout = PkiLayout(pki_dir)
    key, cert = layout.key_path("hub", "sign"), layout.cert_path("hub", "sign")
    if not key.exists() or not cert.exists():
        raise ConfigurationError(
            "hub signing key", f"not found in {layout.party_dir('hub')} (run `overstap certs init`)"
        )
    return Signer.from_files(key, cert, passphrase, chain=[layout.issuing_cert_path])


def region_parties(region: Region) -> list[PartySpec]:
    parties = [
        PartySpec(slug=f"vo-{s.location}", name=s.name, oin=s.oin, kind="vo")
        for s in region.vo_schools
    ]
    parties += [
        PartySpec(slug=f"mbo-{i.brin}", name=i.name, oin=i.oin, kind="mbo")
        for i in region.mbo_institutions
    ]
    parties += [
        PartySpec(slug=f"gm-{m.code}", name=m.name, oin=m.oin, kind="gemeente")
        for m in region.municipalities
    ]
    return parties


def issue_dev_pki(
    settings: Settings, region_dir: Path | None, *, valid_days: int = 365
) -> tuple[PkiLayout, int]:
    """Returns the layout and how many certificates were newly issued (0 on a re-run)."""
    parties = [hub_party()]
    if region_dir is not None:
        parties += region_parties(load_region(region_dir))
    passphrase = passphrase_from(settings.pki_dir, os.environ)
    before = _count_certs(settings.pki_dir)
    layout = init_dev_pki(settings.pki_dir, parties, passphrase, valid_days=valid_days)
    return layout, _count_certs(settings.pki_dir) - before


def _count_certs(root: Path) -> int:
    return len(list((root / "parties").glob("*/*.crt"))) if root.exists() else 0
