"""Pure transformations between outside formats and the canonical model (no I/O besides reading
the mapping files that ship in this package)."""
