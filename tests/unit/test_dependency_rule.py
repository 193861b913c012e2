"""The dependency rule of ARCHITECTURE.md, checked on the source with `ast` (no extra packages).

    dags -> overstap.runtime (the one module that imports Airflow) -> overstap.services -> ports
    <- connectors, store; everything may import overstap.domain, and the domain imports nothing
    of ours or of I/O libraries.

Rules checked, each over every .py file that exists when the test runs (so they keep holding as
code is added):
- overstap/domain/: only the standard library minus I/O modules, and overstap.domain itself.
  `logging` is forbidden too: the domain reports through exceptions, and a log call in the domain
  is where a BSN would leak first; services log. `importlib` is forbidden because it is the way
  around an import check.
- overstap/, connectors/, mappings/: only overstap/runtime.py (or an overstap/runtime/ package)
  imports airflow. dags/ and tests/ may import airflow.
- overstap/ must not import connectors or dags (overstap/runtime may: it is where DAG tasks call
  in and the adapters are wired).
- mappings/ are pure transformations: no sqlalchemy, paramiko, zeep, airflow, psycopg, and not
  connectors or dags either.
- dags/ reach our code only through overstap.runtime (and overstap.domain, which anyone may use).

Imports inside functions and under `if TYPE_CHECKING:` count as well: a dependency is a dependency.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IO_STDLIB = frozenset(
    {
        "os",
        "io",
        "pathlib",
        "socket",
        "subprocess",
        "sqlite3",
        "shutil",
        "tempfile",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "ssl",
        "select",
        "selectors",
        "asyncio",
        "mmap",
        "glob",
        "fileinput",
        "shelve",
        "dbm",
        "multiprocessing",
        "logging",
        "importlib",
    }
)
# Named so the message can say what they are; any non-stdlib import is refused anyway.
THIRD_PARTY_IO = frozenset(
    {
        "requests",
        "airflow",
        "sqlalchemy",
        "zeep",
        "paramiko",
        "lxml",
        "cryptography",
        "xmlsec",
        "psycopg",
        "typer",
        "rich",
        "yaml",
    }
)
MAPPINGS_FORBIDDEN = frozenset(
    {"sqlalchemy", "paramiko", "zeep", "airflow", "psycopg", "connectors", "dags"}
)


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name (relative imports resolved)
    line: int


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module}: {self.reason}"


def module_name(path: str) -> str:
    """`overstap/domain/x.py` -> `overstap.domain.x`; `__init__.py` names its package."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, path: str) -> Iterator[Import]:
    """Every module the source imports, statically or through a literal dynamic import."""
    tree = ast.parse(source, filename=path)
    module = module_name(path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == "__future__":
                continue
            for alias in node.names:
                # `from overstap import errors` reaches overstap.errors, not just `overstap`.
                full = target if alias.name == "*" else f"{target}.{alias.name}"
                yield Import(full, node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            first = node.args[0]
            if (
                name in {"__import__", "import_module"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield Import(first.value, node.lineno)


def top(module: str) -> str:
    return module.split(".")[0]


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def is_runtime(path: str) -> bool:
    return path == "overstap/runtime.py" or path.startswith("overstap/runtime/")


Rule = Callable[[str, str], str | None]
"""(file path, imported module) -> reason it is forbidden, or None."""


def domain_rule(path: str, module: str) -> str | None:
    if not path.startswith("overstap/domain/"):
        return None
    if under(module, "overstap.domain"):
        return None
    if top(module) == "overstap":
        return "the domain imports nothing of ours outside overstap.domain"
    if top(module) in IO_STDLIB:
        return "the domain does no I/O (standard-library I/O module)"
    if top(module) in THIRD_PARTY_IO:
        return "the domain imports no I/O or framework library"
    if top(module) not in sys.stdlib_module_names:
        return "the domain imports only the standard library"
    return None


def airflow_rule(path: str, module: str) -> str | None:
    if top(module) != "airflow" or is_runtime(path):
        return None
    if path.startswith(("overstap/", "connectors/", "mappings/")):
        return "only overstap/runtime imports Airflow"
    return None


def core_rule(path: str, module: str) -> str | None:
    if not path.startswith("overstap/") or is_runtime(path):
        return None
    if top(module) in {"connectors", "dags"}:
        return "overstap/ (outside runtime) must not depend on connectors or DAG files"
    return None


def cli_rule(path: str, module: str) -> str | None:
    # The command line is the outermost layer: it calls in, nothing calls it.
    inside = path.startswith("overstap/") and not path.startswith("overstap/cli/")
    if inside and under(module, "overstap.cli"):
        return "only the command line imports overstap.cli"
    return None


def mappings_rule(path: str, module: str) -> str | None:
    if path.startswith("mappings/") and top(module) in MAPPINGS_FORBIDDEN:
        return "mappings are pure transformations"
    return None


def dags_rule(path: str, module: str) -> str | None:
    if not path.startswith("dags/") or top(module) != "overstap":
        return None
    if under(module, "overstap.runtime") or under(module, "overstap.domain"):
        return None
    return "DAG files call overstap.runtime only"


RULES: tuple[Rule, ...] = (
    domain_rule, airflow_rule, core_rule, cli_rule, mappings_rule, dags_rule,
)  # fmt: skip


def check_source(source: str, path: str, rules: tuple[Rule, ...] = RULES) -> list[Violation]:
    found: list[Violation] = []
    for imp in imports_of(source, path):
        for rule in rules:
            reason = rule(path, imp.module)
            if reason:
                found.append(Violation(path, imp.line, imp.module, reason))
    return found


def python_files(*tops: str) -> list[Path]:
    files: list[Path] = []
    for name in tops:
        base = ROOT / name
        if base.is_dir():
            files.extend(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


def check_tree(*tops: str) -> list[Violation]:
    found: list[Violation] = []
    for file in python_files(*tops):
        rel = file.relative_to(ROOT).as_posix()
        found.extend(check_source(file.read_text(encoding="utf-8"), rel))
    return found


def report(violations: list[Violation]) -> str:
    return "dependency rule broken:\n" + "\n".join(f"  {v}" for v in violations)


# --- the real tree -----------------------------------------------------------------------------


def test_domain_files_exist() -> None:
    """Guard against the check passing because it looked at nothing."""
    names = {p.name for p in python_files("overstap/domain")}
    assert {"identifiers.py", "dossier.py", "states.py", "calendar.py"} <= names


def test_domain_imports_only_stdlib_and_itself() -> None:
    violations = check_tree("overstap/domain")
    assert not violations, report(violations)


def test_whole_code_base_follows_the_dependency_rule() -> None:
    violations = check_tree("overstap", "connectors", "mappings", "dags")
    assert not violations, report(violations)


def test_domain_really_imports_something_the_checker_sees() -> None:
    seen = {
        imp.module
        for file in python_files("overstap/domain")
        for imp in imports_of(file.read_text(encoding="utf-8"), file.relative_to(ROOT).as_posix())
    }
    assert "overstap.domain.errors.InvalidRecord" in seen
    assert any(top(m) == "dataclasses" for m in seen)


# --- the checker itself ------------------------------------------------------------------------

DOMAIN_FILE = "overstap/domain/example.py"


@pytest.mark.parametrize(
    ("source", "module", "line"),
    [
        ("import os\n", "os", 1),
        ("x = 1\nfrom pathlib import Path\n", "pathlib.Path", 2),
        ("import os.path\n", "os.path", 1),
        ("import sqlalchemy as sa\n", "sqlalchemy", 1),
        ("from lxml import etree\n", "lxml.etree", 1),
        ("import logging\n", "logging", 1),
        ("import numpy\n", "numpy", 1),  # third party not on the named list
        ("from overstap import errors\n", "overstap.errors", 1),
        ("from overstap.store import tables\n", "overstap.store.tables", 1),
        ("from .. import config\n", "overstap.config", 1),
        ("from ..services.api import run\n", "overstap.services.api.run", 1),
        ("def f():\n    import socket\n", "socket", 2),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import airflow\n",
            "airflow",
            3,
        ),
        ("import importlib\n", "importlib", 1),
        ("m = __import__('subprocess')\n", "subprocess", 1),
        ("from x import y\n", "x.y", 1),
    ],
)
def test_checker_catches_domain_violation(source: str, module: str, line: int) -> None:
    violations = check_source(source, DOMAIN_FILE)
    # one place may break two rules (airflow in the domain): the place is what counts here
    assert {(v.module, v.line) for v in violations if v.module == module} == {(module, line)}
    assert str(violations[0]).startswith(f"{DOMAIN_FILE}:")


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations\n",
        "import re\nfrom dataclasses import dataclass\nfrom datetime import date\n",
        "from collections.abc import Mapping\nimport hashlib, hmac\n",
        "from overstap.domain.errors import InvalidRecord\n",
        "from overstap.domain import errors\n",
        "from overstap import domain\n",
        "from .errors import InvalidRecord\n",
        "from . import states\n",
    ],
)
def test_checker_allows_domain_imports(source: str) -> None:
    assert check_source(source, DOMAIN_FILE) == []


def test_checker_resolves_relative_import_in_package_init() -> None:
    found = list(imports_of("from .errors import X\n", "overstap/domain/__init__.py"))
    assert found == [Import("overstap.domain.errors.X", 1)]


def test_checker_airflow_only_in_runtime() -> None:
    src = "from airflow.sdk import dag\n"
    assert [v.line for v in check_source(src, "overstap/services/flows.py")] == [1]
    assert check_source(src, "connectors/sftp.py")
    assert check_source(src, "mappings/magister.py")
    assert check_source(src, "overstap/runtime.py") == []
    assert check_source(src, "overstap/runtime/tasks.py") == []
    assert check_source(src, "dags/transfer.py") == []


def test_checker_only_the_cli_imports_the_cli() -> None:
    assert check_source("from overstap.cli.progress import bar\n", "overstap/runtime/demo.py")
    assert check_source("from overstap.cli.progress import bar\n", "overstap/cli/main.py") == []


def test_checker_core_must_not_import_connectors_or_dags() -> None:
    assert check_source("from connectors.soap import Client\n", "overstap/services/send.py")
    assert check_source("import dags.transfer\n", "overstap/cli/main.py")
    assert check_source("from connectors.soap import Client\n", "overstap/runtime.py") == []


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy\n",
        "from paramiko import SFTPClient\n",
        "import zeep\n",
        "from airflow.sdk import task\n",
        "from connectors.soap import Client\n",
    ],
)
def test_checker_mappings_are_pure(source: str) -> None:
    violations = check_source(source, "mappings/magister.py")
    assert violations and violations[0].path == "mappings/magister.py"


def test_checker_mappings_may_use_lxml_and_the_domain() -> None:
    src = "from lxml import etree\nfrom overstap.domain.student import Student\n"
    assert check_source(src, "mappings/oso.py") == []


def test_checker_dags_reach_code_through_runtime() -> None:
    assert check_source("from overstap.services import flows\n", "dags/transfer.py")
    ok = "from overstap.runtime import transfer_tasks\nfrom overstap.domain.states import D\n"
    assert check_source(ok, "dags/transfer.py") == []


def test_report_names_file_and_line() -> None:
    violations = check_source("import re\n\nimport socket\n", DOMAIN_FILE)
    text = report(violations)
    assert "overstap/domain/example.py:3: imports socket" in text
