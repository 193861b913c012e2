"""Public home of the error taxonomy (defined in the domain so the domain can raise it)."""

from overstap.domain.errors import (
    ConfigurationError,
    InvalidRecord,
    InvalidTransition,
    OverstapError,
    RejectedByRecipient,
    RetryableDeliveryError,
)

__all__ = [
    "ConfigurationError",
    "InvalidRecord",
    "InvalidTransition",
    "OverstapError",
    "RejectedByRecipient",
    "RetryableDeliveryError",
]
