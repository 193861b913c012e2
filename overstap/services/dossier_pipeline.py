"""Many dossiers at once: map -> schema -> profile -> sign -> encrypt, on every core, streaming.

RSA signing is the cost (about 1 ms per dossier per core); everything else must stay small
beside it. So each worker process loads every key it needs once and keeps it (loading a key per
signature is 50x slower), the schema is compiled once per process, and the input is consumed in
bounded chunks: memory stays flat however many dossiers pass.

Results come back in input order. A dossier that violates a rule comes back with its violations
and no payload: it never leaves the hub, and the rest of the batch goes on.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple

from cryptography import x509
from sqlalchemy import Connection, select

from mappings.dossier_xml import CanonicalDossier, DossierEnvelope, dossier_document
from overstap.batching import chunks
from overstap.crypto import cms
from overstap.domain.dossier import Dossier
from overstap.domain.errors import InvalidRecord
from overstap.domain.identifiers import Oin
from overstap.pki.devca import PkiLayout
from overstap.pki.load import load_certificate
from overstap.region.dossiers import scenario_dossier
from overstap.region.model import Region, load_region, student_from_mapping
from overstap.services.pki import hub_signer
from overstap.store.tables import mbo_institution, vo_school
from overstap.xml.dsig import Signer
from overstap.xml.profile import ProfileViolation, check_profile, errors
from overstap.xml.schemas import SchemaViolation, validate

Item = tuple[Dossier, DossierEnvelope]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What a worker needs to find keys; paths and the passphrase only, so it pickles cheaply."""

    pki_dir: Path
    passphrase: bytes
    today: date
    encrypt: bool = True
    production: bool = False


class Problem(NamedTuple):
    """One reason a dossier was held back; messages never quote personal values."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path} {self.rule}: {self.message}"


@dataclass(frozen=True, slots=True)
class Outcome:
    dossier_id: str
    receiving: str
    payload: bytes | None  # signed XML, CMS-encrypted when the config says so; None if refused
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.payload is not None

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(p.rule for p in self.problems)


class DossierProcessor:
    """One per process: the hub's Signer, loaded once, and a certificate per institution."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.layout = PkiLayout(config.pki_dir)
        self._signer: Signer | None = None
        self._recipients: dict[str, x509.Certificate] = {}

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = hub_signer(self.config.pki_dir, self.config.passphrase)
        return self._signer

    def recipient(self, brin: str) -> x509.Certificate:
        found = self._recipients.get(brin)
        if found is None:
            found = self._recipients[brin] = load_certificate(
                self.layout.cert_path(f"mbo-{brin}", "enc")
            )
        return found

    def process(self, item: Item) -> Outcome:
        dossier, envelope = item
        receiving = str(dossier.receiving)
        try:
            document, schema, profile = checked_tree(
                dossier, envelope, today=self.config.today, production=self.config.production
            )
        except InvalidRecord as exc:
            problem = Problem(f"/dossier/{exc.field}", exc.rule, exc.reason)
            return Outcome(dossier.dossier_id, receiving, None, (problem,))
        refused: list[SchemaViolation | ProfileViolation] = [*schema, *errors(profile)]
        if refused:
            problems = tuple(Problem(v.path, v.rule, v.message) for v in refused)
            return Outcome(dossier.dossier_id, receiving, None, problems)
        # The writer's bytes are canonical already: sign them without re-serialising the tree.
        data = self.signer.sign_canonical(document.canonical)
        if self.config.encrypt:
            data = cms.encrypt(data, [self.recipient(receiving)])
        return Outcome(dossier.dossier_id, receiving, data)


def checked_tree(
    dossier: Dossier, envelope: DossierEnvelope, *, today: date, production: bool = False
) -> tuple[CanonicalDossier, list[SchemaViolation], list[ProfileViolation]]:
    """The dossier's XML with its schema violations and (when schema-valid) profile findings.

    The profile rules assume a schema-valid document, so they run only when the schema passed.
    `InvalidRecord` when the dossier cannot be written at all (a missing part).
    """
    document = dossier_document(dossier, envelope)
    schema = validate(document.root, "dossier")
    profile = [] if schema else check_profile(document.root, today=today, production=production)
    return document, schema, profile


# --- worker processes -------------------------------------------------------------------------

Prepare = Callable[[Any], Item | None]

_processor: DossierProcessor | None = None
_prepare: Prepare | None = None


def _init_worker(config: PipelineConfig, prepare: Prepare | None) -> None:
    global _processor, _prepare
    _processor = DossierProcessor(config)
    _prepare = prepare


def _run(processor: DossierProcessor, prepare: Prepare | None, chunk: list[Any]) -> list[Outcome]:
    if prepare is None:
        return [processor.process(item) for item in chunk]
    prepared = (prepare(raw) for raw in chunk)
    return [processor.process(item) for item in prepared if item is not None]


def _process_chunk(chunk: list[Any]) -> list[Outcome]:
    assert _processor is not None, "worker not initialised"
    return _run(_processor, _prepare, chunk)


def process_dossiers(
    items: Iterable[Any],
    config: PipelineConfig,
    *,
    prepare: Prepare | None = None,
    workers: int | None = None,
    chunk_size: int = 32,
) -> Iterator[Outcome]:
    """Outcomes in input order; `workers=1` runs in this process (no pool, for small batches).

    `items` are `(dossier, envelope)` pairs, or raw inputs that `prepare` (a picklable callable,
    run in the workers) turns into pairs or None (no dossier for this input: no outcome). Raw
    inputs keep the parent's share of the work small: it ships bytes, the workers parse.
    At most `2 * workers` chunks are in flight, so a generator of a million dossiers is read
    as the workers keep up, never all at once (Executor.map would submit everything first).
    """
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers == 1:
        processor = DossierProcessor(config)
        for chunk in chunks(items, chunk_size):
            yield from _run(processor, prepare, chunk)
        return
    # spawn, not fork: a forked child would inherit the parent's SQLAlchemy pool and threads.
    with ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(config, prepare),
    ) as pool:
        pending: deque[Future[list[Outcome]]] = deque()
        for chunk in chunks(items, chunk_size):
            pending.append(pool.submit(_process_chunk, chunk))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


class RegionDossiers:
    """`prepare` for a synthetic region: one raw `students.jsonl` line -> its school's dossier.

    Pickles as the directory only; each worker reads region.yaml once, on first use.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._region: Region | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory = state["directory"]
        self._region = None

    def __call__(self, line: bytes | str) -> Item | None:
        region = self._region
        if region is None:
            region = self._region = load_region(self.directory)
        record = student_from_mapping(json.loads(line), region)
        dossier = scenario_dossier(record, region)
        if dossier is None:
            return None
        school = region.vo_school(dossier.sending)
        institution = region.mbo_institution(dossier.receiving)
        if school is None or institution is None:  # load_region checked every reference
            raise InvalidRecord(
                "names a party the region does not have",
                field="school",
                rule="REGION-REFERENCE",
                record=dossier.dossier_id,
            )
        return dossier, DossierEnvelope(school.oin, institution.oin, school.name, institution.name)


def registry_envelopes(conn: Connection) -> Callable[[Dossier], DossierEnvelope]:
    """Envelope lookup from a snapshot of the registry tables (two queries, not two per dossier)."""
    schools = {r.location: r for r in conn.execute(select(vo_school))}
    institutions = {r.brin: r for r in conn.execute(select(mbo_institution))}

    def envelope(d: Dossier) -> DossierEnvelope:
        school = schools.get(str(d.sending))
        institution = institutions.get(str(d.receiving))
        if school is None or institution is None:
            unknown = "verzendendeschool" if school is None else "ontvangendeinstelling"
            raise InvalidRecord(
                "is not in the registry",
                field=unknown,
                rule="REGISTRY-UNKNOWN",
                record=d.dossier_id,
            )
        return DossierEnvelope(
            sending_oin=Oin(school.oin),
            receiving_oin=Oin(institution.oin),
            sending_name=school.name,
            receiving_name=institution.name,
        )

    return envelope
