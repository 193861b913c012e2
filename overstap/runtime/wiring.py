"""Adapters for ports, chosen by configuration: the one place `overstap` reaches `connectors`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from overstap.domain.errors import ConfigurationError
from overstap.ports import DeliveryTransport, SisConnector

if TYPE_CHECKING:
    from connectors.status_server import StatusIntakeServer
    from overstap.bootstrap import HubContext
    from overstap.services.status_files import StatusInbox


def sis_connector(kind: str) -> SisConnector:
    """The connector for a `sis_source.connector` value."""
    if kind == "file":
        from connectors.sis_file import FileSisConnector

        return FileSisConnector()
    if kind == "sftp":
        from connectors.sis_file import SftpSisConnector

        return SftpSisConnector()
    if kind == "rest":
        from connectors.sis_rest import RestSisConnector

        return RestSisConnector()
    if kind == "soap":
        from connectors.sis_soap import SoapSisConnector

        return SoapSisConnector()
    raise ConfigurationError("sis connector", f"unknown kind {kind!r} (file, sftp, rest, soap)")


def delivery_transport(kind: str) -> DeliveryTransport:
    """The transport for a `delivery_route.transport` value."""
    if kind == "folder":
        from connectors.file_delivery import FolderDeliveryTransport

        return FolderDeliveryTransport()
    if kind == "sftp":
        from connectors.file_delivery import SftpDeliveryTransport

        return SftpDeliveryTransport()
    if kind == "soap":
        from connectors.soap_delivery import SoapDeliveryTransport

        return SoapDeliveryTransport()
    raise ConfigurationError("delivery transport", f"unknown kind {kind!r} (soap, sftp, folder)")


def status_server(ctx: HubContext, host: str, port: int) -> StatusIntakeServer:
    """The hub's SOAP status intake (not started), with the hub keys of `ctx`'s PKI directory."""
    from connectors.status_server import StatusIntakeServer

    return StatusIntakeServer(ctx, host=host, port=port)


def status_inbox(kind: str) -> StatusInbox:
    """Where an institution's status files wait, for a `delivery_route.transport` value."""
    if kind == "sftp":
        from connectors.sftp_inbox import SftpInbox

        return SftpInbox()
    raise ConfigurationError("status inbox", f"unknown kind {kind!r} (sftp)")
