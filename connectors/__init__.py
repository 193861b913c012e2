"""Adapters that talk to the outside world: SIS pulls, SOAP, SFTP, municipal delivery."""
