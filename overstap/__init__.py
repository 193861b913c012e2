"""Overstap: the data-exchange hub for the move from vo to mbo."""

__version__ = "0.1.0"
