"""The `overstap` command line."""
