"""The dossier's code lists, read once from `codelists.yaml` and checked against the domain.

A code list that misses a domain value is a configuration error found at load time (naming the
list and the value), not a KeyError in the middle of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from overstap.domain.dossier import Approver, JaNee, Uitslag
from overstap.domain.errors import ConfigurationError, InvalidRecord
from overstap.domain.student import Level

CODELISTS_FILE = Path(__file__).with_name("codelists.yaml")

CATEGORY_VALUES = frozenset({"VERPLICHT", "OPTIONEEL", "VERBODEN", "OPT-UIT"})
# OSO order; the XSD requires exactly these, in this order.
CATEGORIES = (
    "cat_metadata",
    "cat_ouderinzage",
    "cat_leerling",
    "cat_oudersverzorgers",
    "cat_schoolloopbaan",
    "cat_overstapadvies",
    "cat_onderwijsondersteuning",
    "cat_verzuim",
    "cat_vombo",
    "cat_bijlagedocs",
)


@dataclass(frozen=True, slots=True)
class CodeList:
    """One list: canonical value -> code on the wire, and back."""

    name: str
    to_code: dict[str, str]

    def code(self, value: str) -> str:
        return self.to_code[value]

    def value(self, code: str, field: str) -> str:
        """The canonical value for a received code; unknown codes are a record error."""
        for value, known in self.to_code.items():
            if known == code:
                return value
        raise InvalidRecord(
            f"is not a code of list {self.name}", field=field, rule="CODELIST-UNKNOWN"
        )


@dataclass(frozen=True, slots=True)
class Category:
    when_present: str
    when_absent: str

    def value(self, present: bool) -> str:
        return self.when_present if present else self.when_absent


@dataclass(frozen=True, slots=True)
class CodeLists:
    leerweg: CodeList
    soortdiploma: CodeList
    examenuitslag: CodeList
    inzage_door: CodeList
    ja_nee: CodeList
    legal_representative: dict[str, bool]
    categories: dict[str, Category]


def _fail(why: str) -> ConfigurationError:
    return ConfigurationError(str(CODELISTS_FILE), why)


def _code_list(data: dict[str, Any], name: str, domain: type[StrEnum] | None) -> CodeList:
    raw = data.get(name)
    if not isinstance(raw, dict) or not raw:
        raise _fail(f"list {name} is missing or empty")
    mapping = {str(k): str(v) for k, v in raw.items()}
    if domain is not None:
        missing = [m.value for m in domain if m.value not in mapping]
        if missing:
            raise _fail(f"list {name} has no code for {', '.join(missing)}")
        unknown = sorted(set(mapping) - {m.value for m in domain})
        if unknown:
            raise _fail(f"list {name} maps values the model does not know: {', '.join(unknown)}")
    if len(set(mapping.values())) != len(mapping):
        raise _fail(f"list {name} gives two values the same code")
    return CodeList(name, mapping)


def parse_codelists(data: object) -> CodeLists:
    if not isinstance(data, dict):
        raise _fail("the file must hold a mapping of lists")
    soortdiploma = _code_list(data, "soortdiploma", None)
    unknown_levels = sorted(set(soortdiploma.to_code) - {m.value for m in Level})
    if unknown_levels:
        raise _fail(f"list soortdiploma names unknown levels: {', '.join(unknown_levels)}")
    legal = data.get("wettige_vertegenwoordiger")
    if not isinstance(legal, dict) or not all(isinstance(v, bool) for v in legal.values()):
        raise _fail("wettige_vertegenwoordiger must map each relation to true or false")
    raw_categories = data.get("categorie_uitlevering")
    if not isinstance(raw_categories, dict) or tuple(raw_categories) != CATEGORIES:
        raise _fail(f"categorie_uitlevering must list {', '.join(CATEGORIES)} in that order")
    categories: dict[str, Category] = {}
    for name, rule in raw_categories.items():
        if not isinstance(rule, dict) or set(rule) != {"when_present", "when_absent"}:
            raise _fail(f"{name} needs exactly when_present and when_absent")
        if not set(rule.values()) <= CATEGORY_VALUES:
            raise _fail(f"{name} values must be one of {', '.join(sorted(CATEGORY_VALUES))}")
        categories[name] = Category(rule["when_present"], rule["when_absent"])
    return CodeLists(
        leerweg=_code_list(data, "leerweg", Level),
        soortdiploma=soortdiploma,
        examenuitslag=_code_list(data, "examenuitslag", Uitslag),
        inzage_door=_code_list(data, "inzage_door", Approver),
        ja_nee=_code_list(data, "ja_nee", JaNee),
        legal_representative={str(k): bool(v) for k, v in legal.items()},
        categories=categories,
    )


@cache
def codelists() -> CodeLists:
    """The shipped code lists, loaded and checked once per process."""
    with CODELISTS_FILE.open(encoding="utf-8") as fh:
        return parse_codelists(yaml.safe_load(fh))
