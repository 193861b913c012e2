"""The synthetic region generator (overstap.region.generate) and its loader (overstap.region.model)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from overstap.domain.calendar import SchoolYear, age_on
from overstap.domain.dossier import Approver, JaNee, required_approver
from overstap.domain.identifiers import Bsn, Oin, Onderwijsnummer, elfproef_remainder
from overstap.domain.signals import startkwalificatie_on
from overstap.domain.states import REGISTRATION, RegistrationStatus, SignalKind
from overstap.domain.student import Student
from overstap.region import (
    Outcome,
    RegionDataError,
    RegionSummary,
    StudentRecord,
    generate_region,
    iter_students,
    load_region,
)
from overstap.region.names import check_cp1252
from overstap.region.sis import MAGISTER_COLUMNS, SOMTODAY_COLUMNS

N = 3000


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RegionSummary]:
    out = tmp_path_factory.mktemp("region") / "synth"
    summary = generate_region(out, students=N, seed=2026)
    return out, summary


@pytest.fixture(scope="module")
def records(region_dir: tuple[Path, RegionSummary]) -> list[StudentRecord]:
    return list(iter_students(region_dir[0]))


@pytest.fixture(scope="module")
def raw(region_dir: tuple[Path, RegionSummary]) -> list[dict[str, object]]:
    lines = (region_dir[0] / "students.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    generate_region(tmp_path / "a", students=300, seed=11)
    generate_region(tmp_path / "b", students=300, seed=11)
    generate_region(tmp_path / "c", students=300, seed=12)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert len(a) >= 4  # region.yaml, students.jsonl and at least two SIS exports
    assert a == b
    assert a["students.jsonl"] != c["students.jsonl"]
    assert a["region.yaml"] != c["region.yaml"]


def test_parallel_generation_writes_the_same_bytes_as_serial(tmp_path: Path) -> None:
    generate_region(tmp_path / "serial", students=700, seed=5, workers=1)
    generate_region(tmp_path / "parallel", students=700, seed=5, workers=2)
    assert _tree(tmp_path / "serial") == _tree(tmp_path / "parallel")


def test_regenerating_into_a_region_replaces_it_completely(tmp_path: Path) -> None:
    generate_region(tmp_path / "r", students=400, seed=1)
    generate_region(tmp_path / "r", students=400, seed=2)
    generate_region(tmp_path / "fresh", students=400, seed=2)
    # No SIS export of the first region's schools may survive.
    assert _tree(tmp_path / "r") == _tree(tmp_path / "fresh")


def test_refuses_a_non_empty_directory_that_is_not_a_region(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        generate_region(tmp_path, students=10, seed=1)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_progress_is_reported_per_thousand_and_at_the_end(tmp_path: Path) -> None:
    seen: list[int] = []
    generate_region(tmp_path / "r", students=2500, seed=3, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == 2500
    assert 2 <= len(seen) <= 4  # every ~1000 students, not per student


# --- loading --------------------------------------------------------------------------------


def test_every_student_loads_into_a_valid_domain_student(
    region_dir: tuple[Path, RegionSummary],
    records: list[StudentRecord],
    raw: list[dict[str, object]],
) -> None:
    out, summary = region_dir
    assert len(records) == len(raw) == summary.students == N
    region = load_region(out)
    for rec, obj in zip(records, raw, strict=True):
        assert isinstance(rec.student, Student)
        assert rec.student.school_year == region.school_year
        assert region.vo_school(rec.student.school) is not None
        # Exactly one of the two personal numbers, and the loaded type says which.
        assert (obj["bsn"] == "") != (obj["onderwijsnummer"] == "")
        expected = Bsn if obj["bsn"] else Onderwijsnummer
        assert isinstance(rec.student.identifier, expected)
        assert rec.student.identifier.value == (obj["bsn"] or obj["onderwijsnummer"])


def test_region_parties_scale_with_the_student_count(
    region_dir: tuple[Path, RegionSummary],
) -> None:
    out, summary = region_dir
    region = load_region(out)
    assert region.code == "synth-2026"
    assert str(region.school_year) == "2026-2027" == summary.school_year
    assert region.calendar.registration_deadline == date(2027, 4, 1)
    assert len(region.vo_schools) == N // 150 == summary.schools
    assert len(region.mbo_institutions) == 2
    assert {i.transport for i in region.mbo_institutions} == {"soap", "sftp"}
    assert len(region.municipalities) == 8
    per_region = Counter(str(m.region) for m in region.municipalities)
    assert len(region.regions) >= 2
    assert all(2 <= n <= 8 for n in per_region.values())
    assert all(str(m.oin).startswith("00000001") for m in region.municipalities)
    for school in region.vo_schools:
        assert school.oin == Oin.for_brin(school.location)
    for inst in region.mbo_institutions:
        assert inst.oin == Oin.for_brin(inst.brin)
    brins = [str(i.brin) for i in region.mbo_institutions] + sorted(
        {str(s.brin) for s in region.vo_schools}
    )
    assert len(brins) == len(set(brins))


def test_large_regions_stay_within_the_code_ranges(tmp_path: Path) -> None:
    # Sizes only (no students): the party generator is what must respect MC01..MC99.
    from overstap.region.generate import _Generator

    gen = _Generator(400_000, 9, SchoolYear(2026))
    assert len(gen.institutions) == 20
    assert len(gen.regions) <= 99
    sizes = Counter(m.region for m in gen.municipalities)
    assert all(2 <= n <= 8 for n in sizes.values())
    assert len({m.code for m in gen.municipalities}) == len(gen.municipalities)
    assert len({s.location for s in gen.schools}) == len(gen.schools)


# --- realistic spread -------------------------------------------------------------------------


def test_the_cohort_has_a_realistic_spread(
    region_dir: tuple[Path, RegionSummary], records: list[StudentRecord]
) -> None:
    region = load_region(region_dir[0])
    first_oct = date(2026, 10, 1)
    ages = Counter(r.student.age_on(first_oct) for r in records)
    assert set(ages) <= set(range(15, 21))
    assert ages[16] + ages[17] > N / 2  # most are 16-17
    assert sum(n for age, n in ages.items() if age >= 18) > N / 50  # adults approve themselves

    onderwijsnummers = sum(isinstance(r.student.identifier, Onderwijsnummer) for r in records)
    assert 0.005 * N < onderwijsnummers < 0.05 * N
    secret = [r for r in records if r.student.adres_geheim]
    assert 0 < len(secret) < 0.04 * N
    assert all(r.student.address is None for r in secret)
    assert all(r.student.address is not None for r in records if not r.student.adres_geheim)

    leaving = sum(r.student.leaving_year for r in records)
    assert 0.8 * N < leaving < N  # the cohort, plus some switchers not in the leaving year

    outcomes = Counter(r.scenario.outcome for r in records)
    assert set(outcomes) == set(Outcome)
    assert 0.80 < outcomes[Outcome.INGESCHREVEN] / N < 0.90
    for risk in set(Outcome) - {Outcome.INGESCHREVEN}:
        assert outcomes[risk] < 0.06 * N

    movers = [r for r in records if r.scenario.moves]
    assert 0.02 * N < len(movers) < 0.08 * N
    by_code = {m.code: m for m in region.municipalities}
    assert any(
        by_code[m.gemeente].region != by_code[r.student.gemeente].region
        for r in movers
        for m in r.scenario.moves
    )
    support = sum(bool(r.scenario.support_needs) for r in records)
    assert 0.12 * N < support < 0.30 * N


def test_approvals_follow_the_age_rule_with_a_few_deliberate_mistakes(
    records: list[StudentRecord],
) -> None:
    applying = [r for r in records if r.scenario.applies_to is not None]
    approvals = [r for r in applying if r.scenario.approval is not None]
    missing_or_refused = [
        r
        for r in applying
        if r.scenario.approval is None or r.scenario.approval.toestemming is not JaNee.JA
    ]
    assert 0.02 * len(applying) < len(missing_or_refused) < 0.10 * len(applying)
    by = Counter(r.scenario.approval.by for r in approvals if r.scenario.approval)
    assert by[Approver.GUARDIAN] > 0 and by[Approver.STUDENT] > 0
    wrong_person = []
    for r in approvals:
        approval = r.scenario.approval
        assert approval is not None
        needed = required_approver(r.student.birth_date, approval.date)
        if approval.toestemming is JaNee.JA and approval.by is not needed:
            wrong_person.append(r)
            assert not r.scenario.approval_valid
    assert wrong_person  # e.g. a minor approving themselves
    assert any(
        age_on(r.student.birth_date, r.scenario.approval.date) < 18  # type: ignore[union-attr]
        for r in wrong_person
    )


def test_personal_numbers_are_valid_and_unique(raw: list[dict[str, object]]) -> None:
    bsns = [str(o["bsn"]) for o in raw if o["bsn"]]
    onrs = [str(o["onderwijsnummer"]) for o in raw if o["onderwijsnummer"]]
    assert len(bsns) + len(onrs) == N
    assert len(set(bsns)) == len(bsns)
    assert len(set(onrs)) == len(onrs)
    assert all(len(b) == 9 and elfproef_remainder(b) == 0 for b in bsns)
    assert any(b.startswith("0") for b in bsns)  # leading zeros happen and must survive
    assert all(o.startswith("10") and elfproef_remainder(o) == 5 for o in onrs)


def test_status_dates_and_expected_signals_tell_a_consistent_story(
    region_dir: tuple[Path, RegionSummary], records: list[StudentRecord]
) -> None:
    calendar = load_region(region_dir[0]).calendar
    for r in records:
        sc = r.scenario
        # Each institution's statuses are a legal path through the registration machine.
        per_brin: dict[str, RegistrationStatus | None] = {}
        for event in sc.status_dates:
            current = per_brin.get(str(event.brin))
            assert REGISTRATION.can(current, event.status), (sc.outcome, current, event.status)
            per_brin[str(event.brin)] = event.status
        finals = {str(b): s for b, s in per_brin.items()}
        kinds = [s.kind for s in sc.expected_signals]
        qualified = startkwalificatie_on(r.student.level, sc.exam, calendar)

        def expect(
            kind: SignalKind, day: date, qualified: date | None = qualified
        ) -> list[SignalKind]:
            # A havo/vwo diploma (from the diploma date) ends the Doorstroompunt's remit.
            return [kind] if qualified is None or qualified > day else []

        for s in sc.expected_signals:
            assert s.gemeente == r.gemeente_on(s.date)
        if sc.outcome in (Outcome.INGESCHREVEN, Outcome.NIET_TOT_INSCHRIJVING_ALTERNATIEF):
            assert kinds == []
            enrolled = [e for e in sc.status_dates if e.status is RegistrationStatus.INGESCHREVEN]
            assert len(enrolled) == 1 and enrolled[0].date < calendar.zomerlek_date
        if sc.outcome is Outcome.NIET_TOT_INSCHRIJVING_ALTERNATIEF:
            assert finals[str(sc.applies_to)] is RegistrationStatus.NIET_TOT_INSCHRIJVING
            assert finals[str(sc.alternative)] is RegistrationStatus.INGESCHREVEN
        if sc.outcome is Outcome.GEEN_AANMELDING:
            assert sc.status_dates == ()
            expected = [SignalKind.GEEN_AANMELDING] if r.student.leaving_year else []
            assert kinds == expected
        if sc.outcome is Outcome.ZOMERLEK:
            assert kinds == expect(SignalKind.ZOMERLEK, calendar.zomerlek_date)
            assert all(s.date == calendar.zomerlek_date for s in sc.expected_signals)
        if sc.outcome is Outcome.UITVAL:
            left = sc.status_dates[-1]
            assert kinds == expect(SignalKind.UITVAL, left.date)
            assert finals[str(sc.applies_to)] is RegistrationStatus.UITGESCHREVEN
        if sc.outcome is Outcome.AFGEWEZEN_ZONDER_ALTERNATIEF:
            refused = sc.status_dates[-1]
            ends = calendar.grace_ends(refused.date)
            assert kinds == expect(SignalKind.AFGEWEZEN_ZONDER_ALTERNATIEF, ends)
            assert all(s.date == ends for s in sc.expected_signals)
        if sc.outcome is Outcome.VERVOLG_HAVO:
            assert sc.applies_to is None and kinds == [] and sc.left_cohort is not None
        if sc.status_dates:
            # Everyone who registers does so before the deadline.
            assert sc.status_dates[0].date < calendar.registration_deadline


# --- SIS exports ------------------------------------------------------------------------------


def _exports(out: Path) -> dict[str, tuple[str, bytes]]:
    region = load_region(out)
    return {
        str(s.location): (s.sis, (out / "sis" / str(s.location) / "leerlingen.csv").read_bytes())
        for s in region.vo_schools
    }


def test_both_csv_dialects_are_present_with_their_encodings(
    region_dir: tuple[Path, RegionSummary],
) -> None:
    exports = _exports(region_dir[0])
    assert {sis for sis, _ in exports.values()} == {"magister", "somtoday"}
    non_ascii_somtoday = 0
    for sis, data in exports.values():
        if sis == "magister":
            assert data.startswith(b"\xef\xbb\xbf")
            header = data.decode("utf-8-sig").splitlines()[0]
            assert header.split(";") == list(MAGISTER_COLUMNS)
        else:
            assert not data.startswith(b"\xef\xbb\xbf")
            text = data.decode("cp1252")
            assert text.splitlines()[0].split(",") == list(SOMTODAY_COLUMNS)
            if any(b > 0x7F for b in data):
                non_ascii_somtoday += 1
                with pytest.raises(UnicodeDecodeError):
                    data.decode("utf-8")
    assert non_ascii_somtoday > 0  # names like Chloë really are written in Windows-1252


def test_each_export_holds_exactly_the_students_of_its_school(
    region_dir: tuple[Path, RegionSummary], raw: list[dict[str, object]]
) -> None:
    per_school: dict[str, dict[str, dict[str, object]]] = {}
    for obj in raw:
        per_school.setdefault(str(obj["school"]), {})[str(obj["leerlingid"])] = obj
    for location, (sis, data) in _exports(region_dir[0]).items():
        if sis == "magister":
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
            key, birth = "Stamnr", "Geb.datum"
        else:
            rows = list(csv.DictReader(io.StringIO(data.decode("cp1252")), delimiter=","))
            key, birth = "leerlingnummer", "geboortedatum"
        students = per_school.get(location, {})
        assert len(rows) == len(students)
        assert {row[key] for row in rows} == set(students)
        for row in rows:
            iso = str(students[row[key]]["geboortedatum"])
            shown = f"{iso[8:]}-{iso[5:7]}-{iso[:4]}" if sis == "magister" else iso
            assert row[birth] == shown


def test_export_rows_carry_the_canonical_values(
    region_dir: tuple[Path, RegionSummary], raw: list[dict[str, object]]
) -> None:
    by_key = {(str(o["school"]), str(o["leerlingid"])): o for o in raw}
    for location, (sis, data) in _exports(region_dir[0]).items():
        if sis != "somtoday":
            continue
        for row in csv.DictReader(io.StringIO(data.decode("cp1252"))):
            obj = by_key[(location, row["leerlingnummer"])]
            # The export writes the BSN as a number; Bsn.parse restores a lost leading zero.
            if obj["bsn"]:
                assert Bsn.parse(row["bsn"]).value == obj["bsn"]
            assert row["gemeentecode"] == obj["gemeente"]
            assert row["achternaam"] == obj["achternaam"]
            assert row["adresGeheim"] == ("true" if obj["adres_geheim"] else "false")


def test_word_lists_must_fit_windows_1252() -> None:
    check_cp1252(("Chloë", "van 't Hof", "Çelik"))
    with pytest.raises(ValueError, match="Windows-1252"):
        check_cp1252(("Şahin",))


# --- loader errors ----------------------------------------------------------------------------


@pytest.fixture
def small_region(tmp_path: Path) -> Path:
    out = tmp_path / "small"
    generate_region(out, students=300, seed=99)
    return out


def _rewrite_line(path: Path, number: int, change: object) -> dict[str, object]:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    obj = json.loads(lines[number - 1])
    original = dict(obj)
    change(obj)  # type: ignore[operator]
    lines[number - 1] = json.dumps(obj, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    return original


def test_a_corrupted_bsn_names_file_line_and_rule_but_not_the_number(small_region: Path) -> None:
    path = small_region / "students.jsonl"
    good = "111222333"
    assert elfproef_remainder(good) == 0
    bad = good[:-1] + "4"

    def corrupt(obj: dict[str, object]) -> None:
        obj["bsn"], obj["onderwijsnummer"] = bad, ""

    _rewrite_line(path, 17, corrupt)
    with pytest.raises(RegionDataError) as caught:
        list(iter_students(small_region))
    message = str(caught.value)
    assert "students.jsonl line 17: bsn:" in message
    assert "[rule BSN-ELFPROEF]" in message
    assert bad not in message and good not in message


def test_errors_never_echo_personal_values(small_region: Path) -> None:
    path = small_region / "students.jsonl"
    original = _rewrite_line(path, 3, lambda obj: obj.__setitem__("geboortedatum", "2009-13-45"))
    with pytest.raises(RegionDataError) as caught:
        list(iter_students(small_region))
    message = str(caught.value)
    assert "line 3: geboortedatum:" in message and "2009-13-45" not in message
    identifier = str(original["bsn"] or original["onderwijsnummer"])
    assert identifier not in message


def test_broken_json_and_bad_references_name_the_line(small_region: Path) -> None:
    path = small_region / "students.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = lines[4][:40] + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RegionDataError, match=r"students\.jsonl line 5: json: .*JSON-SYNTAX"):
        list(iter_students(small_region))

    shutil.copy(path, path.with_suffix(".bak"))
    lines[4] = lines[5]
    path.write_text("".join(lines), encoding="utf-8")
    _rewrite_line(path, 8, lambda obj: obj["scenario"].__setitem__("applies_to", "99ZZ"))
    with pytest.raises(RegionDataError, match=r"line 8: scenario\.applies_to: .*REGION-REFERENCE"):
        list(iter_students(small_region))


def test_region_yaml_errors_name_the_line_of_the_entry(small_region: Path) -> None:
    path = small_region / "region.yaml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    target = next(i for i, line in enumerate(lines) if line.startswith("- code: GM"))
    lines[target] = "- code: XX12"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RegionDataError) as caught:
        load_region(small_region)
    assert f"region.yaml line {target + 1}: municipalities[0].code:" in str(caught.value)
    assert "GEMEENTE-FORMAT" in str(caught.value)


def test_a_scenario_that_contradicts_itself_is_refused(small_region: Path) -> None:
    path = small_region / "students.jsonl"

    def wrong(obj: dict[str, object]) -> None:
        scenario = obj["scenario"]
        assert isinstance(scenario, dict)
        scenario["approval_valid"] = not scenario["approval_valid"]

    _rewrite_line(path, 2, wrong)
    with pytest.raises(RegionDataError, match=r"line 2: scenario\.approval_valid: .*SCENARIO"):
        list(iter_students(small_region))
