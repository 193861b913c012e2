"""Development PKI shaped like PKIoverheid, and loaders for certificates and encrypted keys.

`devca` builds the development CA and party certificates (never used in production, which takes
real PKIoverheid certificates from a secrets backend); `load` reads and checks certificates and
keys wherever they come from.
"""

from overstap.pki.devca import (
    PURPOSES,
    CertStatus,
    PartySpec,
    PkiLayout,
    Purpose,
    certificate_status,
    init_dev_pki,
    passphrase_from,
)
from overstap.pki.load import (
    load_certificate,
    load_certificates,
    load_private_key,
    require_valid,
    required_oin,
    subject_of,
)

__all__ = [
    "PURPOSES",
    "CertStatus",
    "PartySpec",
    "PkiLayout",
    "Purpose",
    "certificate_status",
    "init_dev_pki",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "passphrase_from",
    "require_valid",
    "required_oin",
    "subject_of",
]
