"""CMS EnvelopedData for SFTP payloads: AES-256 content, RSA-OAEP (SHA-256) key transport.

We build and read the structure ourselves (asn1crypto for the ASN.1, `cryptography` for the
primitives) so the algorithms are ours to choose on output and ours to check on input: a file
that arrives with DES, 3DES, RC2, AES-128 or RSA PKCS#1 v1.5 key transport is refused before any
key is used (SECURITY.md: refuse weak algorithms on input; RSA-1.5 invites Bleichenbacher).
Output is readable by `openssl cms -decrypt` (tests/integration/test_cms_openssl.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding

from overstap.errors import InvalidRecord

_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
ACCEPTED_CONTENT = frozenset({"aes256_cbc"})
ACCEPTED_KEY_TRANSPORT = frozenset({"rsaes_oaep"})
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class CmsError(InvalidRecord):
    """A CMS payload we cannot or will not open; the message names the rule, not the content."""


@dataclass(frozen=True)
class Recipient:
    """Who can open the payload: their encryption certificate and (to decrypt) private key."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | None = None


def _issuer_and_serial(cert: x509.Certificate) -> cms.IssuerAndSerialNumber:
    parsed = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    return cms.IssuerAndSerialNumber(
        {"issuer": parsed.issuer, "serial_number": parsed.serial_number}
    )


def _oaep_params() -> algos.RSAESOAEPParams:
    return algos.RSAESOAEPParams(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        }
    )


# DER building blocks. asn1crypto takes ~30 ms to build one EnvelopedData, 40x the RSA work, so
# output is assembled from bytes: per-recipient constant parts are encoded once with asn1crypto
# (cached) and only the per-message values are wrapped here. Input is still parsed by asn1crypto.
_OID_DATA = bytes.fromhex("06092a864886f70d010701")
_OID_ENVELOPED = bytes.fromhex("06092a864886f70d010703")
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")
_INT_ZERO = b"\x02\x01\x00"


_OAEP = OAEP(MGF1(hashes.SHA256()), hashes.SHA256(), None)


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


@lru_cache(maxsize=256)
def _recipient_prefix(cert: x509.Certificate) -> tuple[bytes, rsa.RSAPublicKey]:
    """version + rid + keyEncryptionAlgorithm of a KeyTransRecipientInfo, and the public key."""
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("recipient certificate must carry an RSA key")
    kea = cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_oaep", "parameters": _oaep_params()})
    return _INT_ZERO + _issuer_and_serial(cert).dump() + kea.dump(), public


def encrypt(data: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """DER ContentInfo(EnvelopedData) of `data` for every certificate in `recipients`."""
    if not recipients:
        raise ValueError("at least one recipient certificate is required")
    cek = os.urandom(32)
    iv = os.urandom(16)
    # PKCS#7 padding by hand (RFC 5652 6.3): the padder objects cost more than the AES itself.
    fill = 16 - len(data) % 16
    enc = Cipher(algorithms.AES256(cek), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(data + bytes((fill,)) * fill) + enc.finalize()
    infos = []
    for cert in recipients:
        prefix, public = _recipient_prefix(cert)
        infos.append(_tlv(0x30, prefix + _tlv(0x04, public.encrypt(cek, _OAEP))))
    # DER orders the members of a SET OF by their encoding.
    recipient_infos = _tlv(0x31, b"".join(sorted(infos)))
    algorithm = _tlv(0x30, _OID_AES256_CBC + _tlv(0x04, iv))
    content_info = _tlv(0x30, _OID_DATA + algorithm + _tlv(0x80, ciphertext))
    enveloped = _tlv(0x30, _INT_ZERO + recipient_infos + content_info)
    return _tlv(0x30, _OID_ENVELOPED + _tlv(0xA0, enveloped))


def decrypt(
    blob: bytes,
    recipient: Recipient,
    *,
    source: str = "payload",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Open a payload addressed to `recipient`, refusing anything but the accepted algorithms."""
    if recipient.private_key is None:
        raise ValueError("decryption needs the recipient's private key")
    if len(blob) > max_bytes:
        raise CmsError(
            f"is {len(blob)} bytes, more than the limit of {max_bytes}",
            field=source,
            rule="CMS-SIZE",
        )
    try:
        info = cms.ContentInfo.load(blob, strict=True)
        content_type = info["content_type"].native
    except Exception:  # asn1crypto raises ValueError/TypeError variants on broken DER
        raise CmsError("is not DER-encoded CMS", field=source, rule="CMS-SYNTAX") from None
    if content_type != "enveloped_data":
        raise CmsError(
            f"is CMS {content_type}, expected enveloped_data", field=source, rule="CMS-TYPE"
        )
    try:
        env = info["content"]
        eci = env["encrypted_content_info"]
        content_alg = eci["content_encryption_algorithm"]["algorithm"].native
        ours = _issuer_and_serial(recipient.certificate)
        ktri = _find_recipient(env, ours)
    except CmsError:
        raise
    except Exception:
        raise CmsError("has a malformed EnvelopedData", field=source, rule="CMS-SYNTAX") from None
    if content_alg not in ACCEPTED_CONTENT:
        raise CmsError(
            f"content encryption {content_alg} is refused (accepted: {', '.join(sorted(ACCEPTED_CONTENT))})",
            field=source,
            rule="CMS-WEAK-CIPHER",
        )
    if ktri is None:
        raise CmsError("is not addressed to our certificate", field=source, rule="CMS-RECIPIENT")
    kea = ktri["key_encryption_algorithm"]
    kt_alg = kea["algorithm"].native
    if kt_alg not in ACCEPTED_KEY_TRANSPORT:
        raise CmsError(
            f"key transport {kt_alg} is refused (RSA-OAEP with SHA-256 or stronger required)",
            field=source,
            rule="CMS-WEAK-KEY-TRANSPORT",
        )
    oaep = _oaep_from(kea["parameters"], source)
    try:
        cek = recipient.private_key.decrypt(ktri["encrypted_key"].native, oaep)
        if len(cek) != 32:
            raise ValueError("content key length")
        iv = eci["content_encryption_algorithm"]["parameters"].native
        dec = Cipher(algorithms.AES256(cek), modes.CBC(iv)).decryptor()
        padded = dec.update(eci["encrypted_content"].native) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return bytes(unpadder.update(padded) + unpadder.finalize())
    except Exception:
        # One message for every failure past this point: no oracle for key or padding errors.
        raise CmsError(
            "cannot be decrypted with our key", field=source, rule="CMS-DECRYPT"
        ) from None


def _find_recipient(
    env: cms.EnvelopedData, ours: cms.IssuerAndSerialNumber
) -> cms.KeyTransRecipientInfo | None:
    for ri in env["recipient_infos"]:
        if ri.name != "ktri":
            continue
        rid = ri.chosen["rid"]
        if rid.name == "issuer_and_serial_number" and rid.chosen.dump() == ours.dump():
            return ri.chosen
    return None


def _oaep_from(params: algos.RSAESOAEPParams, source: str) -> OAEP:
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    mgf_hash = mgf["parameters"]["algorithm"].native
    # Absent parameters mean SHA-1 (RFC 8017 defaults): refused with the rest of SHA-1.
    if (
        hash_name not in _OAEP_HASHES
        or mgf["algorithm"].native != "mgf1"
        or mgf_hash not in _OAEP_HASHES
    ):
        raise CmsError(
            f"RSA-OAEP with {hash_name}/{mgf_hash} is refused (SHA-256 or stronger required)",
            field=source,
            rule="CMS-WEAK-KEY-TRANSPORT",
        )
    return OAEP(MGF1(_OAEP_HASHES[mgf_hash]()), _OAEP_HASHES[hash_name](), None)
