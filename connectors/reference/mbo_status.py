"""Reference mbo status sender: what an institution's system does when a registration changes.

It writes `statusmeldingen` (xsd/status.xsd) signed with the institution's key, and either
- posts them to the hub's MeldStatus service (SOAP, WS-Security, mutual TLS): `post`; or
- leaves them as a file in its SFTP outbox folder for the hub to collect: `document`.

For demos and the full-cycle test: the peer the status intake is held to, never our own code
under test (it shares only the XML builder and signer with the hub, as a vendor would share a
library).
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import requests
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from connectors.soap_delivery import TlsAdapter
from overstap.crypto.trust import TrustStore, oin_of
from overstap.domain.identifiers import Bsn, Oin
from overstap.domain.registration import StatusReport
from overstap.pki import PkiLayout
from overstap.services.status_intake import ACTION, RESPONSE_ACTION
from overstap.xml.dsig import Signer, canonical_bytes
from overstap.xml.wssec import WsSigner, WsVerifier, build_envelope

ST = "urn:overstap:status:1"
_T = f"{{{ST}}}"


def statusmeldingen(reports: Sequence[StatusReport]) -> etree._Element:
    """The unsigned document for `reports` (one institution's)."""
    root = etree.Element(_T + "statusmeldingen", nsmap={None: ST})
    for r in reports:
        item = etree.SubElement(root, _T + "statusmelding")
        etree.SubElement(item, _T + "berichtid").text = r.message_id
        moment = r.sent_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        etree.SubElement(item, _T + "tijdstip").text = moment
        etree.SubElement(etree.SubElement(item, _T + "mboinstelling"), _T + "brincode").text = str(
            r.mbo
        )
        etree.SubElement(etree.SubElement(item, _T + "voschool"), _T + "brincode").text = str(r.vo)
        kind = "bsn" if isinstance(r.identifier, Bsn) else "onderwijsnummer"
        etree.SubElement(item, _T + kind).text = r.identifier.value
        if r.leerlingid:
            etree.SubElement(item, _T + "leerlingid").text = r.leerlingid
        if r.dossier_id:
            etree.SubElement(item, _T + "dossierid").text = r.dossier_id
        etree.SubElement(item, _T + "status").text = r.status.value
        etree.SubElement(item, _T + "statusdatum").text = r.status_date.isoformat()
    return root


class MboStatusSender:
    """One institution's status sender, with its keys from the dev PKI (`mbo-<BRIN>`)."""

    def __init__(self, pki_dir: Path, brin: str, passphrase: bytes) -> None:
        layout = PkiLayout(pki_dir)
        slug = f"mbo-{brin}"
        key, cert = layout.key_path(slug, "sign"), layout.cert_path(slug, "sign")
        self._signer = Signer.from_files(key, cert, passphrase, [layout.issuing_cert_path])
        self._ws = WsSigner.from_files(key, cert, passphrase)
        oin = oin_of(self._ws.certificate)
        if oin is None:
            raise ValueError(f"the signing certificate of {slug} carries no OIN")
        self.oin = oin
        self._trust = layout.trust_bundle_path
        context = ssl.create_default_context(cafile=str(self._trust))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(
            str(layout.cert_path(slug, "tls")),
            str(layout.key_path(slug, "tls")),
            password=passphrase,
        )
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = str(self._trust)
        self._session.mount("https://", TlsAdapter(context))

    def document(self, reports: Sequence[StatusReport]) -> bytes:
        """A status file as the institution leaves it on SFTP (enveloped signature)."""
        return canonical_bytes(self._signer.sign(statusmeldingen(reports)))

    def post(self, url: str, hub_oin: str, reports: Sequence[StatusReport]) -> etree._Element:
        """Send `reports` to the hub's MeldStatus; returns the verified receipt (raises on a
        fault or a receipt that does not verify as the hub's answer to this request)."""
        message_id = f"urn:uuid:{uuid.uuid4()}"
        envelope = build_envelope(
            statusmeldingen(reports),
            to=f"{url}?oin={hub_oin}",
            from_=f"https://mbo.invalid/?oin={self.oin.value}",
            action=ACTION,
            message_id=message_id,
        )
        value = self._ws.sign(envelope, now=datetime.now(UTC))
        response = self._session.post(
            url,
            data=canonical_bytes(envelope),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}"'},
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"MeldStatus answered HTTP {response.status_code}")
        verified = WsVerifier(TrustStore.from_pem_file(self._trust)).verify(
            response.content,
            expected_oin=Oin.parse(hub_oin),
            require_confirmation=value,
            expected_relates_to=message_id,
        )
        if verified.action != RESPONSE_ACTION:
            raise RuntimeError(f"unexpected response action {verified.action}")
        return verified.body_child

    def close(self) -> None:
        self._session.close()
