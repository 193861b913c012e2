"""The organisations in a region: vo schools, mbo institutions, municipalities, Doorstroompunt regions."""

from __future__ import annotations

from dataclasses import dataclass

from overstap.domain.identifiers import Brin, BrinVestiging, Gemeentecode, Oin, RegionCode


@dataclass(frozen=True, slots=True)
class DoorstroompuntRegion:
    """The regional function (formerly RMC) that follows up signals for its municipalities."""

    code: RegionCode
    name: str
    contact_gemeente: Gemeentecode  # the municipality that hosts the regional function


@dataclass(frozen=True, slots=True)
class Municipality:
    code: Gemeentecode
    name: str
    region: RegionCode
    oin: Oin


@dataclass(frozen=True, slots=True)
class VoSchool:
    """A sending vo school location and the SIS it is connected through."""

    location: BrinVestiging
    name: str
    oin: Oin
    gemeente: Gemeentecode
    sis: str  # product family of the student-administration system, e.g. "magister"

    @property
    def brin(self) -> Brin:
        return self.location.brin


@dataclass(frozen=True, slots=True)
class MboInstitution:
    """A receiving mbo institution and how it takes deliveries."""

    brin: Brin
    name: str
    oin: Oin
    transport: str  # "soap" or "sftp"
