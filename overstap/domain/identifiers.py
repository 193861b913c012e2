"""Identifier value types with the checks of DOMAIN.md.

Each type validates on construction and has a `parse` that first normalises outside input
(whitespace, case). Errors are `InvalidIdentifier` (an `InvalidRecord`) naming the field, the rule
and, for personal numbers, only the *position* of the bad character: a BSN never appears in a
message, a repr or a str (use `.value` deliberately when the number itself is needed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from operator import mul
from typing import ClassVar, Self

from overstap.domain.errors import InvalidRecord

# Weights of the Dutch "elfproef" as used for the BSN: the last digit counts negatively.
_ELFPROEF_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
# ASCII digit bytes -> their values: the elfproef of a checked number in one C-level pass.
_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))


class InvalidIdentifier(InvalidRecord):
    """An identifier fails its format or check-digit rule."""


def elfproef_remainder(digits: str) -> int:
    """Weighted sum of nine digits modulo 11 (0 for a valid BSN, 5 for an onderwijsnummer)."""
    return sum(int(d) * w for d, w in zip(digits, _ELFPROEF_WEIGHTS, strict=True)) % 11


def _ascii_elfproef_remainder(digits: str) -> int:
    """`elfproef_remainder` of nine ASCII digits (checked by the caller), several times cheaper:
    a national pull checks 150,000 numbers."""
    weighted: int = sum(
        map(mul, digits.encode("ascii").translate(_DIGIT_VALUES), _ELFPROEF_WEIGHTS)
    )
    return weighted % 11


def _is_ascii_digits(value: str, length: int) -> bool:
    """What `_check_digits` accepts (0-9 are exactly the ASCII characters isdigit() accepts),
    answered without a loop; `_check_digits` then only runs to explain a refusal."""
    return len(value) == length and value.isascii() and value.isdigit()


def _check_digits(value: str, length: int, field_name: str, rule: str) -> None:
    """Digits only, exact length; the message names the position, never the value."""
    if len(value) != length:
        raise InvalidIdentifier(
            f"has {len(value)} characters, expected {length} digits", field=field_name, rule=rule
        )
    for position, char in enumerate(value, start=1):
        if not "0" <= char <= "9":
            raise InvalidIdentifier(
                f"character at position {position} is not a digit", field=field_name, rule=rule
            )


def _normalise(raw: object) -> str:
    if raw is None:
        return ""
    return str(raw).strip()


@dataclass(frozen=True, slots=True)
class Bsn:
    """Burgerservicenummer: nine digits, elfproef with weights 9..2,-1, not all zeros."""

    value: str = field(repr=False)
    FIELD: ClassVar[str] = "bsn"

    def __post_init__(self) -> None:
        value = self.value
        # _is_ascii_digits, inlined: every student's number passes here
        if not (len(value) == 9 and value.isascii() and value.isdigit()):
            _check_digits(value, 9, self.FIELD, "BSN-FORMAT")
        if value == "000000000":
            raise InvalidIdentifier("must not be all zeros", field=self.FIELD, rule="BSN-ZERO")
        if _ascii_elfproef_remainder(value) != 0:
            raise InvalidIdentifier(
                "fails the elfproef (weighted sum not divisible by 11)",
                field=self.FIELD,
                rule="BSN-ELFPROEF",
            )

    @classmethod
    def parse(cls, raw: object, *, field_name: str | None = None) -> Self:
        try:
            # SIS exports drop leading zeros when a spreadsheet touched them: 8 digits is a BSN
            # that lost its leading zero (a known export defect, not a different number).
            value = _normalise(raw)
            if len(value) == 8 and value.isdigit():
                value = "0" + value
            return cls(value)
        except InvalidIdentifier as exc:
            raise _renamed(exc, field_name) from None

    def masked(self) -> str:
        """For people who must recognise the number: only the last two digits."""
        return "*******" + self.value[-2:]

    def __str__(self) -> str:
        return "Bsn(<redacted>)"

    def __repr__(self) -> str:
        return "Bsn(<redacted>)"


@dataclass(frozen=True, slots=True)
class Onderwijsnummer:
    """Education number for students without a BSN: nine digits starting with 10.

    The checksum (weighted sum ≡ 5 mod 11) is a derived rule no official document confirms
    (DOMAIN.md), so callers may demote it to a warning with `check_checksum=False`.
    """

    value: str = field(repr=False)
    check_checksum: bool = field(default=True, compare=False, repr=False)
    FIELD: ClassVar[str] = "onderwijsnummer"

    def __post_init__(self) -> None:
        if not _is_ascii_digits(self.value, 9):
            _check_digits(self.value, 9, self.FIELD, "ONR-FORMAT")
        if not self.value.startswith("10"):
            raise InvalidIdentifier("must start with 10", field=self.FIELD, rule="ONR-PREFIX")
        if self.check_checksum and not self.checksum_ok:
            raise InvalidIdentifier(
                "fails the checksum (weighted sum not 5 modulo 11)",
                field=self.FIELD,
                rule="ONR-CHECKSUM",
            )

    @property
    def checksum_ok(self) -> bool:
        return _ascii_elfproef_remainder(self.value) == 5  # nine ASCII digits: checked on creation

    @classmethod
    def parse(
        cls, raw: object, *, field_name: str | None = None, check_checksum: bool = True
    ) -> Self:
        try:
            return cls(_normalise(raw), check_checksum)
        except InvalidIdentifier as exc:
            raise _renamed(exc, field_name) from None

    def masked(self) -> str:
        return "*******" + self.value[-2:]

    def __str__(self) -> str:
        return "Onderwijsnummer(<redacted>)"

    def __repr__(self) -> str:
        return "Onderwijsnummer(<redacted>)"


PersonalNumber = Bsn | Onderwijsnummer
"""Exactly one of the two identifies a student (DOMAIN.md)."""


def personal_number(
    bsn: object, onderwijsnummer: object, *, check_checksum: bool = True
) -> Bsn | Onderwijsnummer:
    """The student's one identifier from two optional source fields; both or neither is an error."""
    has_bsn = bool(_normalise(bsn))
    has_onr = bool(_normalise(onderwijsnummer))
    if has_bsn and has_onr:
        raise InvalidIdentifier(
            "both BSN and onderwijsnummer given, exactly one is allowed",
            field="bsn",
            rule="ID-EXACTLY-ONE",
        )
    if not has_bsn and not has_onr:
        raise InvalidIdentifier(
            "neither BSN nor onderwijsnummer given, exactly one is required",
            field="bsn",
            rule="ID-EXACTLY-ONE",
        )
    if has_bsn:
        return Bsn.parse(bsn)
    return Onderwijsnummer.parse(onderwijsnummer, check_checksum=check_checksum)


def _renamed(exc: InvalidIdentifier, field_name: str | None) -> InvalidIdentifier:
    if field_name is None or field_name == exc.field:
        return exc
    return InvalidIdentifier(exc.reason, field=field_name, rule=exc.rule, record=exc.record)


class _Pattern:
    """Shared behaviour of the public (non-personal) codes checked by one regular expression."""

    value: str
    FIELD: ClassVar[str]
    RULE: ClassVar[str]
    PATTERN: ClassVar[re.Pattern[str]]
    EXPECTED: ClassVar[str]

    def _validate(self) -> None:
        if not self.PATTERN.fullmatch(self.value):
            raise InvalidIdentifier(
                f"{self.value!r} does not match {self.EXPECTED}", field=self.FIELD, rule=self.RULE
            )

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Brin(_Pattern):
    """BRIN4: two digits and two capital letters, e.g. 12AB."""

    value: str
    FIELD: ClassVar[str] = "brin"
    RULE: ClassVar[str] = "BRIN-FORMAT"
    PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"[0-9]{2}[A-Z]{2}")
    EXPECTED: ClassVar[str] = "two digits and two letters (e.g. 12AB)"

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def parse(cls, raw: object) -> Self:
        return cls(_normalise(raw).upper())


@dataclass(frozen=True, slots=True)
class BrinVestiging:
    """A school location: BRIN4 plus a two-digit vestiging number (written 12AB00)."""

    brin: Brin
    vestiging: str = "00"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{2}", self.vestiging):
            raise InvalidIdentifier(
                f"{self.vestiging!r} is not two digits", field="vestiging", rule="VESTIGING-FORMAT"
            )

    @classmethod
    def parse(cls, raw: object) -> Self:
        """Accepts `12AB`, `12AB00`, `12AB 00` and `12AB-00`."""
        text = re.sub(r"[\s-]", "", _normalise(raw)).upper()
        if len(text) == 4:
            return cls(Brin(text))
        if len(text) != 6:
            raise InvalidIdentifier(
                f"{text!r} is neither BRIN4 nor BRIN4 plus vestiging",
                field="brin_vestiging",
                rule="VESTIGING-FORMAT",
            )
        return cls(Brin(text[:4]), text[4:])

    def __str__(self) -> str:
        return f"{self.brin}{self.vestiging}"


# OIN prefixes (Logius): RSIN-based, KvK-based, education institution by BRIN, and test.
OIN_PREFIXES = {
    "00000001": "RSIN",
    "00000003": "KvK",
    "00000007": "onderwijsinstelling (BRIN)",
    "00000099": "test",
}


@dataclass(frozen=True, slots=True)
class Oin(_Pattern):
    """Organisatie-identificatienummer: 20 digits with a registered prefix."""

    value: str
    FIELD: ClassVar[str] = "oin"
    RULE: ClassVar[str] = "OIN-FORMAT"
    PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"[0-9]{20}")
    EXPECTED: ClassVar[str] = "20 digits"

    def __post_init__(self) -> None:
        self._validate()
        if self.value[:8] not in OIN_PREFIXES:
            raise InvalidIdentifier(
                f"prefix {self.value[:8]} is not one of {', '.join(sorted(OIN_PREFIXES))}",
                field=self.FIELD,
                rule="OIN-PREFIX",
            )

    @classmethod
    def parse(cls, raw: object) -> Self:
        return cls(_normalise(raw))

    @classmethod
    def for_brin(cls, school: Brin | BrinVestiging) -> Self:
        """Our convention for BRIN-based OINs in synthetic and test regions.

        `00000007` + the BRIN with each letter as its two-digit position (A=10 .. Z=35) + vestiging,
        zero-padded to 20 digits; deterministic and unique per location. Real OINs come from
        the OIN register and are configured, never derived.
        """
        loc = school if isinstance(school, BrinVestiging) else BrinVestiging(school)
        brin = loc.brin.value
        digits = brin[:2] + "".join(f"{ord(c) - ord('A') + 10:02d}" for c in brin[2:])
        body = (digits + loc.vestiging).ljust(12, "0")
        return cls("00000007" + body)


@dataclass(frozen=True, slots=True)
class Gemeentecode(_Pattern):
    """CBS municipality code: GM + four digits."""

    value: str
    FIELD: ClassVar[str] = "gemeentecode"
    RULE: ClassVar[str] = "GEMEENTE-FORMAT"
    PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"GM[0-9]{4}")
    EXPECTED: ClassVar[str] = "GM and four digits (e.g. GM0363)"

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def parse(cls, raw: object) -> Self:
        """SIS exports often carry the bare CBS number (363 or 0363): pad it and add GM."""
        text = _normalise(raw).upper()
        if text.isdigit() and 1 <= len(text) <= 4:
            text = "GM" + text.zfill(4)
        return cls(text)


@dataclass(frozen=True, slots=True)
class RegionCode(_Pattern):
    """Doorstroompunt (formerly RMC) region: MC + two digits."""

    value: str
    FIELD: ClassVar[str] = "regio"
    RULE: ClassVar[str] = "REGION-FORMAT"
    PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"MC[0-9]{2}")
    EXPECTED: ClassVar[str] = "MC and two digits (e.g. MC17)"

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def parse(cls, raw: object) -> Self:
        return cls(_normalise(raw).upper())


# What the per-character rules of Postcode accept: [0-9] and [A-Z] are ASCII-only ranges.
_POSTCODE = re.compile(r"[1-9][0-9]{3}[A-Z]{2}")
_UNISSUED_POSTCODE_LETTERS = frozenset({"SA", "SD", "SS"})


@dataclass(frozen=True, slots=True)
class Postcode:
    """Dutch postcode: 1234AB; letter pairs SA, SD and SS are never issued."""

    value: str = field(repr=False)
    FIELD: ClassVar[str] = "postcode"

    def __post_init__(self) -> None:
        # One C-level check for the common case; the per-character rules explain a refusal.
        if not _POSTCODE.fullmatch(self.value):
            self._check_characters()
        if self.value[4:] in _UNISSUED_POSTCODE_LETTERS:
            raise InvalidIdentifier(
                "letters SA, SD and SS are not used in postcodes",
                field=self.FIELD,
                rule="POSTCODE-LETTERS",
            )

    def _check_characters(self) -> None:
        # Part of an address: messages name the position, not the value.
        if len(self.value) != 6:
            raise InvalidIdentifier(
                f"has {len(self.value)} characters, expected 4 digits and 2 letters",
                field=self.FIELD,
                rule="POSTCODE-FORMAT",
            )
        for position, char in enumerate(self.value, start=1):
            ok = (
                ("1" if position == 1 else "0") <= char <= "9"
                if position <= 4
                else "A" <= char <= "Z"
            )
            if not ok:
                what = "a digit (1-9 first)" if position <= 4 else "a capital letter"
                raise InvalidIdentifier(
                    f"character at position {position} must be {what}",
                    field=self.FIELD,
                    rule="POSTCODE-FORMAT",
                )

    @classmethod
    def parse(cls, raw: object) -> Self:
        # split() drops exactly the characters regex \s matches (both use str.isspace).
        return cls("".join(_normalise(raw).split()).upper())

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Crebo(_Pattern):
    """Crebo code of an mbo programme: five digits."""

    value: str
    FIELD: ClassVar[str] = "crebo"
    RULE: ClassVar[str] = "CREBO-FORMAT"
    PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"[0-9]{5}")
    EXPECTED: ClassVar[str] = "five digits"

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def parse(cls, raw: object) -> Self:
        return cls(_normalise(raw))
