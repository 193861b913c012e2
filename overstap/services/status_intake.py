"""The hub's status intake: operation `MeldStatus` of `xsd/status-service.wsdl`, transport-free.

An mbo institution reports registration statuses; the hub answers with a signed receipt. This
module turns the bytes of one SOAP request into (HTTP status, response bytes), so the HTTPS
server (`connectors.status_server`) only does TLS and HTTP. Per request, in this order
(Edukoppeling profile, xsd/README.md "Transport: WSDLs and Edukoppeling"):

1. the hardened parse (UTF-8 only: 0009; otherwise unparseable or unsafe: 0001);
2. `WsVerifier.verify(expected_oin=None)`: 2W-be-S shape and signature (Client fault with
   `WsSecurityRejected.fault_code`). Any trusted party may sign; *which* party it is decides
   what follows;
3. the signer's OIN must be a registered `mbo_institution` (0002), and the TLS client
   certificate, when the transport gives one, must name the same OIN (0002): the channel and
   the message are the same party's;
4. SOAPAction == wsa:Action == MeldStatus (0003); wsa:To names the hub's OIN (0011); the
   MessageID fits receipt.xsd's MessageId, since the receipt repeats it (0011);
5. the Body child is valid against status.xsd (0004);
6. each statusmelding becomes a report or a refusal (`mappings.status_xml.reports`, with the
   signer's BRIN as the only institution it may speak for); the reports are reconciled;
7. a signed response: Action MeldStatusResponse, RelatesTo = the request's MessageID,
   SignatureConfirmation of the request's SignatureValue, and an `ontvangstbevestiging` with
   one `fout` per refused report (`rejected` when no report was taken).

Idempotency: reconcile records every report's berichtid and ignores one seen before, so a resend
of the same request changes nothing; the receipt it gets says the same (same result, same
`fout`s, and the same receipt berichtid, derived from the request's MessageID).

Faults are SOAP 1.1 faults with HTTP 500, faultcode `soap:Client` or `soap:Server` and a
faultstring that starts with the Edukoppeling code, as the reference mbo endpoint answers, so
`connectors.soap_delivery` reads both. Neither faults, receipts nor logs quote message content:
only rule ids, element paths and counts.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qs, urlsplit

from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mappings.status_xml import Refused, reports
from overstap.bootstrap import HubContext
from overstap.crypto.trust import oin_of
from overstap.domain.identifiers import Brin, Oin
from overstap.domain.registration import StatusReport
from overstap.services.reconcile import ReconcileReport, reconcile
from overstap.store.tables import mbo_institution
from overstap.xml.dsig import canonical_bytes
from overstap.xml.safe import RULE_ENCODING, UnsafeXml, parse_untrusted
from overstap.xml.schemas import validate
from overstap.xml.wssec import SOAP_NS, WsSecurityRejected, WsSigner, WsVerifier, build_envelope

__all__ = [
    "ACTION",
    "RESPONSE_ACTION",
    "SERVICE_PATH",
    "SoapFault",
    "fault_bytes",
    "handle_status_request",
]

SERVICE_PATH: Final = "/status"
ACTION: Final = "urn:overstap:status:1:MeldStatus"
RESPONSE_ACTION: Final = ACTION + "Response"
RECEIPT_NS: Final = "urn:overstap:receipt:1"
ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
# receipt.xsd's ot:MessageId: betreftberichtid and fout/betreft must fit it.
_MESSAGE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
# Receipt ids are derived from (sender, request MessageID) in this namespace, so the answer to a
# resend carries the receipt id of the first answer.
_RECEIPT_NAMESPACE: Final = uuid.UUID("5b0f3c1e-8f4e-4d6a-9a55-2f7c1d9e0b41")
_SOAP = f"{{{SOAP_NS}}}"
_R = f"{{{RECEIPT_NS}}}"

log = logging.getLogger(__name__)


class SoapFault(Exception):
    """A request we answer with a SOAP fault: `side` "Client" or "Server", an Edukoppeling code."""

    def __init__(self, side: str, code: str, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.side = side
        self.code = code
        self.text = text


@dataclass(frozen=True)
class _Sender:
    oin: Oin
    brin: Brin


def handle_status_request(
    ctx: HubContext,
    envelope_bytes: bytes,
    *,
    tls_client_oin: str | None,
    soap_action: str,
    verifier: WsVerifier,
    signer: WsSigner,
    now: datetime,
) -> tuple[int, bytes]:
    """Answer one MeldStatus request: (200, signed response) or (500, SOAP fault).

    `tls_client_oin` is the OIN of the TLS client certificate (None when the transport has no
    TLS, e.g. a test calling in-process); `soap_action` the raw SOAPAction HTTP header; `signer`
    the hub's signing key; `now` the moment of receipt (Timestamp, `ontvangen`, the ledger).
    """
    try:
        return 200, _answer(ctx, envelope_bytes, tls_client_oin, soap_action, verifier, signer, now)
    except SoapFault as fault:
        return 500, fault_bytes(fault)


def fault_bytes(fault: SoapFault) -> bytes:
    """A SOAP 1.1 fault envelope; the HTTP status to send it with is 500 (SOAP 1.1 section 6.2).

    Not signed: the sender may rely on it only because the TLS channel is mutually
    authenticated, and a fault makes it do nothing worse than retry or give up.
    """
    envelope = etree.Element(_SOAP + "Envelope", nsmap={"soap": SOAP_NS})
    element = etree.SubElement(etree.SubElement(envelope, _SOAP + "Body"), _SOAP + "Fault")
    etree.SubElement(element, "faultcode").text = f"soap:{fault.side}"
    etree.SubElement(element, "faultstring").text = f"{fault.code} {fault.text}"
    return canonical_bytes(envelope)


def _answer(
    ctx: HubContext,
    data: bytes,
    tls_client_oin: str | None,
    soap_action: str,
    verifier: WsVerifier,
    signer: WsSigner,
    now: datetime,
) -> bytes:
    try:
        # Edukoppeling: UTF-8 only; the one hardened parser for bytes from outside.
        root = parse_untrusted(data, source="SOAP envelope", require_utf8=True)
    except UnsafeXml as exc:
        code = "0009" if exc.rule == RULE_ENCODING else "0001"
        raise SoapFault("Client", code, f"refused [{exc.rule}]") from None
    try:
        message = verifier.verify(root, expected_oin=None)
    except WsSecurityRejected as exc:
        # The rule id only: terse, and it never quotes the Body.
        raise SoapFault("Client", exc.fault_code, f"refused [{exc.rule}]") from None

    sender = _registered_sender(ctx, message.signer.oin)
    if tls_client_oin is not None and tls_client_oin != sender.oin.value:
        # A valid signature of one party sent over another party's channel: refuse, whoever
        # of the two is the impostor.
        raise SoapFault("Client", "0002", "client certificate is not the signer's")
    if _unquoted(soap_action) != message.action or message.action != ACTION:
        raise SoapFault("Client", "0003", "Ongeldige SOAPAction")
    hub_oin = oin_of(signer.certificate)
    if hub_oin is None or _oin_in(message.to) != hub_oin.value:
        raise SoapFault("Client", "0011", "wsa:To names another party")
    if _MESSAGE_ID.fullmatch(message.message_id) is None:
        # The receipt repeats the MessageID; one it cannot hold is refused before anything is
        # processed, so a receipt is never impossible after the reports were taken.
        raise SoapFault("Client", "0011", "wsa:MessageID is not a valid message id")

    body = message.body_child
    violations = validate(body, "status")
    if violations:
        # Paths name elements, never values (overstap.xml.schemas redacts them).
        raise SoapFault("Client", "0004", f"Bericht is niet XSD-conform: {violations[0].path}")

    taken: list[StatusReport] = []
    refused: list[Refused] = []
    for item in reports(body, sender=sender.brin):
        if isinstance(item, Refused):
            refused.append(item)
        else:
            taken.append(item)
    result = _reconcile(ctx, taken, now)
    log.info(
        "status message from %s: %d reports taken (%s), %d refused (%s)",
        sender.brin,
        len(taken),
        ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())) or "none",
        len(refused),
        ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.error.rule for r in refused).items()))
        or "none",
    )

    receipt = _receipt(sender, message.message_id, now, accepted=bool(taken), refused=refused)
    if validate(receipt, "receipt"):
        # Our own document: a bug here, not the sender's fault. The reports are taken already;
        # a resend is deduplicated and gets the receipt once the bug is fixed.
        log.error("receipt for a status message from %s is not valid", sender.brin)
        raise SoapFault("Server", "0051", "Service niet beschikbaar")
    envelope = build_envelope(
        receipt,
        to=ANONYMOUS,
        action=RESPONSE_ACTION,
        message_id=f"urn:uuid:{uuid.uuid4()}",
        relates_to=message.message_id,
    )
    signer.sign(envelope, now=now, confirm=message.signature_value)
    return canonical_bytes(envelope)


def _registered_sender(ctx: HubContext, oin: Oin | None) -> _Sender:
    """The institution the signing certificate belongs to; any other signer is not authorised."""
    if oin is None:
        raise SoapFault("Client", "0002", "the signing certificate carries no OIN")
    try:
        with ctx.engine.connect() as conn:
            brin = conn.execute(
                select(mbo_institution.c.brin).where(mbo_institution.c.oin == oin.value)
            ).scalar_one_or_none()
    except SQLAlchemyError as exc:
        log.error("status intake: store unavailable (%s)", type(exc).__name__)
        raise SoapFault("Server", "0051", "Service niet beschikbaar") from None
    if brin is None:
        raise SoapFault("Client", "0002", "the signer is not a registered institution")
    return _Sender(oin, Brin.parse(brin))


def _reconcile(ctx: HubContext, taken: list[StatusReport], now: datetime) -> ReconcileReport:
    if not taken:
        return ReconcileReport()
    try:
        try:
            return reconcile(ctx, taken, channel="soap", now=now)
        except IntegrityError:
            # The same request arriving twice at once: the other transaction recorded the
            # berichtids first. Once more, and they are duplicates now.
            return reconcile(ctx, taken, channel="soap", now=now)
    except SQLAlchemyError as exc:
        # Nothing of this batch was committed (one transaction): the sender retries.
        log.error("status intake: store unavailable (%s)", type(exc).__name__)
        raise SoapFault("Server", "0051", "Service niet beschikbaar") from None


def _receipt(
    sender: _Sender,
    request_id: str,
    now: datetime,
    *,
    accepted: bool,
    refused: list[Refused],
) -> etree._Element:
    """An ontvangstbevestiging (receipt.xsd) for the request `request_id`."""
    root = etree.Element(_R + "ontvangstbevestiging", nsmap={None: RECEIPT_NS})
    receipt_id = uuid.uuid5(_RECEIPT_NAMESPACE, f"{sender.oin.value} {request_id}")
    etree.SubElement(root, _R + "berichtid").text = f"urn:uuid:{receipt_id}"
    etree.SubElement(root, _R + "betreftberichtid").text = request_id
    etree.SubElement(root, _R + "ontvangen").text = now.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    # "rejected" only when nothing was taken: a message with one good report is accepted,
    # and its refused reports are each named in a fout.
    etree.SubElement(root, _R + "resultaat").text = "accepted" if accepted else "rejected"
    for item in refused:
        fout = etree.SubElement(root, _R + "fout")
        etree.SubElement(fout, _R + "code").text = item.error.rule
        # field and reason only: InvalidRecord reasons never quote a BSN or other value.
        etree.SubElement(
            fout, _R + "omschrijving"
        ).text = f"{item.error.field}: {item.error.reason}"
        if _MESSAGE_ID.fullmatch(item.message_id):
            etree.SubElement(fout, _R + "betreft").text = item.message_id
    return root


def _unquoted(header: str) -> str:
    # SOAP 1.1 sends SOAPAction as a quoted string; some clients leave the quotes off.
    return header.strip().strip('"')


def _oin_in(address: str | None) -> str | None:
    values = parse_qs(urlsplit(address or "").query).get("oin", [])
    return values[0] if len(values) == 1 else None
