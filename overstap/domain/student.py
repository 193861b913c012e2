"""The student as the hub knows them: identity, address, guardians, school career."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from overstap.domain.calendar import SchoolYear, age_on
from overstap.domain.errors import InvalidRecord
from overstap.domain.identifiers import BrinVestiging, Bsn, Gemeentecode, Onderwijsnummer, Postcode

# OSO placeholders for a secret address: the real values are never sent (DOMAIN.md).
SECRET_PHONE = "9999999999"  # noqa: S105 (a placeholder, not a secret)
SECRET_EMAIL = "geheim@geheim.geheim"  # noqa: S105


class Level(StrEnum):
    """Vo level (leerweg/type) of the leaving year."""

    VMBO_BB = "vmbo_bb"
    VMBO_KB = "vmbo_kb"
    VMBO_GL = "vmbo_gl"
    VMBO_TL = "vmbo_tl"
    HAVO = "havo"
    VWO = "vwo"
    PRO = "pro"
    VSO = "vso"


@dataclass(frozen=True, slots=True)
class Name:
    voornamen: str
    achternaam: str
    voorvoegsel: str = ""
    roepnaam: str = ""

    def __repr__(self) -> str:  # personal data: never in a log line or a traceback
        return "Name(<masked>)"

    def __post_init__(self) -> None:
        if not self.voornamen.strip():
            raise InvalidRecord(
                "at least one first name is required", field="voornamen", rule="NAME-REQUIRED"
            )
        if not self.achternaam.strip():
            raise InvalidRecord("a surname is required", field="achternaam", rule="NAME-REQUIRED")


@dataclass(frozen=True, slots=True)
class Address:
    straat: str
    huisnummer: str
    postcode: Postcode
    plaats: str

    def __repr__(self) -> str:
        return "Address(<masked>)"


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str = ""
    email: str = ""

    def __repr__(self) -> str:
        return "Contact(<masked>)"


@dataclass(frozen=True, slots=True)
class Guardian:
    name: Name
    contact: Contact = field(default_factory=Contact)
    relation: str = "ouder"  # ouder, voogd, ...

    def __repr__(self) -> str:
        return f"Guardian(<masked>, {self.relation})"


@dataclass(frozen=True, slots=True)
class Student:
    """A vo student in the leaving cohort, keyed in the hub by school location + leerlingid."""

    leerlingid: str
    school: BrinVestiging
    identifier: Bsn | Onderwijsnummer
    name: Name
    birth_date: date
    gemeente: Gemeentecode  # municipality of residence
    address: Address | None  # None when the address is secret
    adres_geheim: bool
    contact: Contact
    guardians: tuple[Guardian, ...]
    level: Level
    school_year: SchoolYear
    leaving_year: bool  # in the exam/leaving year: the cohort the deadline signal watches
    leerjaar: int  # year within the level (e.g. 4 for vmbo's leaving year)

    def __repr__(self) -> str:
        # School and level only: names, numbers, dates, addresses and the school's own key
        # stay out of logs and tracebacks (the identifier's repr is masked too).
        return f"Student({self.school}, {self.level.value}, <masked>)"

    def __post_init__(self) -> None:
        if not self.leerlingid.strip():
            raise InvalidRecord("leerlingid is required", field="leerlingid", rule="STUDENT-KEY")
        if not self.adres_geheim and self.address is None:
            raise InvalidRecord(
                "an address is required unless the address is secret",
                field="adres",
                rule="ADDRESS-REQUIRED",
            )
        if self.adres_geheim and self.address is not None:
            # A secret address must not travel: refuse the record rather than leak it later.
            raise InvalidRecord(
                "a secret address must not be carried", field="adres", rule="ADDRESS-SECRET"
            )
        if not 1 <= self.leerjaar <= 6:
            raise InvalidRecord("leerjaar must be 1-6", field="leerjaar", rule="LEERJAAR-RANGE")
        if self.birth_date >= self.school_year.first_day:
            raise InvalidRecord(
                "birth date is not before the school year",
                field="geboortedatum",
                rule="DATE-IMPOSSIBLE",
            )

    def age_on(self, day: date) -> int:
        return age_on(self.birth_date, day)

    @property
    def shared_contact(self) -> Contact:
        """What may be shared: the OSO placeholders when the address is secret."""
        if self.adres_geheim:
            return Contact(phone=SECRET_PHONE, email=SECRET_EMAIL)
        return self.contact
