"""Deterministic synthetic regions (parties, students, SIS exports) and their loader.

`generate_region` writes a region directory; `load_region` and `iter_students` read it back
into domain objects. docs/region.md describes the files.
"""

from overstap.region.generate import RegionSummary, generate_region
from overstap.region.model import (
    Outcome,
    Region,
    RegionDataError,
    Scenario,
    StudentRecord,
    iter_students,
    load_region,
)

__all__ = [
    "Outcome",
    "Region",
    "RegionDataError",
    "RegionSummary",
    "Scenario",
    "StudentRecord",
    "generate_region",
    "iter_students",
    "load_region",
]
