"""ESRD rules across whole populations: NE cells and the graft divisor against CMS's
own CSVs, every generated variable against the coefficient table, I1, unsupported
codes, NonAged, renal HCCs, buckets."""

from __future__ import annotations

import csv
import itertools
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from engine.raw import member_models
from engine.spec import ESRD_V24, MODEL_SPECS
from engine.variables import build_variables
from ratype import normalize
from ratype.tables import routing_table
from tests.coverage_check import key_mismatches
from tests.esrd.conftest import Member, dob_for, rows_of, score
from tests.parity.population import risk_compose_cms_dir

CMS_DIR = (
    risk_compose_cms_dir() / "ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal"
)
ESRD_CODES = ["D1", "D2", "I3", "I4", "ED", "C3", "C4", "C5", "C6", "C7", "C8", "I1",
              "I5", "I6", "I7", "I8", "I9", "IA", "E1", "E2", "G1", "G2"]


def _cms_scores(name: str, key: str, value: str) -> dict[str, Decimal]:
    with open(CMS_DIR / name, encoding="utf-8-sig") as handle:
        return {row[key].strip(): Decimal(row[value]) for row in csv.DictReader(handle)}


def _cms_ne_band(age: int, orec: int, dialysis: bool) -> str:
    """CMS NE bands (V24_NE_*_Relative_Factors.csv rows), 64 with OREC 0 counted as 65."""
    if age == 64 and orec == 0:
        age = 65
    bands = [(0, 34), (35, 44), (45, 54), (55, 59), (60, 64)]
    if dialysis:
        bands += [(65, 69), (70, 74), (75, 79), (80, 84), (85, None)]
    else:
        bands += [(65, 65), (66, 66), (67, 67), (68, 68), (69, 69), (70, 74), (75, 79),
                  (80, 84), (85, 89), (90, 94), (95, None)]
    for low, high in bands:
        if age >= low and (high is None or age <= high):
            if high is None:
                return f"{low}_GT"
            return str(low) if low == high else f"{low}_{high}"
    raise AssertionError(age)


# ------------------------------------------------------------------ new enrollees


@pytest.fixture(scope="module")
def ne_population(store):
    members = [
        Member(f"{code}-{sex}-{age}-{orec}-{nem}", code, sex, age, orec=str(orec), nemcaid=nem,
               codes=("I509", "E1122"))
        for code, sex, age, orec, nem in itertools.product(
            ("ED", "E1", "E2"), "FM", range(101), (0, 1, 2, 3), "YN"
        )
    ]
    return members, score(store, members, 2026)


def test_every_new_enrollee_against_cms_csvs(ne_population):
    """DNE cell; GNE (cell + duration by NE_Aged) / ActAdj rounded to 3 decimals.

    Expected values come straight from CMS's CSVs (not our reference tables):
    V24_NE_Dialysis_Relative_Factors.csv, V24_NE_Graft_Relative_Factors.csv,
    V24_Graft_Duration_Scores.csv, and ActAdj 0.905 / 0.698 (D2423T2M).
    """
    members, result = ne_population
    dialysis = _cms_scores("V24_NE_Dialysis_Relative_Factors.csv", "Variable", "DIAL_NE")
    graft = _cms_scores("V24_NE_Graft_Relative_Factors.csv", "Variable", "GRAFT_NE")
    duration = _cms_scores("V24_Graft_Duration_Scores.csv", "Graft Duration", "Score")
    actadj = {"E1": (Decimal("0.905"), "4_9"), "E2": (Decimal("0.698"), "10PL")}
    raw = {
        r["Member_Id"]: r
        for r in result.rows.filter(pl.col("Active_Score") == 0).iter_rows(named=True)
    }
    assert len(raw) == len(members)
    for m in members:
        orec = int(m.orec)
        dual = "FBD" if m.nemcaid == "Y" else "ND_PBD"
        if m.ratype == "ED":
            origdis = "ORIGDIS" if orec == 1 else "NORIGDIS"  # OREC 1 at any age
            cell = f"{dual}_{origdis}_NE{m.sex}{_cms_ne_band(m.age, orec, True)}"
            expected = dialysis[cell]
            name = f"DNE_{cell}"
        else:
            origdis = "ORIGDIS" if orec == 1 and m.age >= 65 else "NORIGDIS"
            cell = f"{dual}_{origdis}_G_NE{m.sex}{_cms_ne_band(m.age, orec, False)}"
            ne_aged = m.age >= 65 or (m.age == 64 and orec == 0)
            divisor, dur = actadj[m.ratype]
            addon = f"{'GE65' if ne_aged else 'LT65'}_DUR{dur}_{dual}"
            expected = ((graft[cell] + duration[addon]) / divisor).quantize(
                Decimal("0.001"), rounding=ROUND_HALF_UP
            )
            name = f"GNE_{cell}, {addon}, ActAdj_DUR{dur}"
        row = raw[m.member_id]
        assert row["RA_Variable"] == name, m
        assert Decimal(str(row["RAF_Total"])) == expected, (m, row["RAF_Total"], expected)
        assert row["RAF_Demographic_Interaction_With_Medicaid_Or_OREC"] == row["RAF_Total"]
        assert row["RAF_Disease"] == 0


def test_new_enrollee_and_transplant_diagnoses_are_not_used(store):
    members = [Member(code, code, "F", 70, codes=("I509", "E1122")) for code in ("ED", "E1", "G1")]
    result = score(store, members, 2026)
    assert result.dx_summary["segment_without_hccs"] == 6
    assert result.dx_summary["used"] == 0


def test_actadj_quotients_never_fall_on_a_half():
    """Why the rounding mode of the GNE quotient cannot matter: 1000*s/905 and
    1000*s/698 are never k + 1/2 for an integer s (905 and 349 are odd)."""
    for divisor in (905, 698):
        for s in range(20_000):
            assert (2 * 1000 * s) % (2 * divisor) != divisor


# ------------------------------------------------------------------ I1 and unsupported codes


def test_i1_is_scored_as_i7_with_a_warning(store):
    i1 = Member("I1", "I1", "F", 45, codes=("G35",))
    i7 = Member("I7", "I7", "F", 45, codes=("G35",))
    result = score(store, [i1, i7], 2026)
    warning = routing_table().filter(pl.col("code") == "I1")["warning"][0]
    for one, seven in zip(rows_of(result, "I1"), rows_of(result, "I7")):
        assert one["RAType_Org"] == "I1" and seven["RAType_Org"] == "I7"
        assert one["Warnings"] == [warning]
        assert not seven["Warnings"]
        skip = {"input_index", "Member_Id", "RAType_Org", "Warnings"}
        assert {k: v for k, v in one.items() if k not in skip} == {
            k: v for k, v in seven.items() if k not in skip
        }
    # GI_F45_54 + FGI LT65_DUR4_9_ND_PBD + LTI_LT65 (graft normalization)
    assert rows_of(result, "I1")[0]["RA_Variable"] == (
        "GI_F45_54, LT65_DUR4_9_ND_PBD, LTI_LT65, HCC77, NONAGED_HCC77"
    )


@pytest.mark.parametrize("code", ["C1", "C2", "D", "I2", "PA", "PB", "PC", "PD", "PE", "PF",
                                  "PG", "PH", "PL", "PM"])
def test_unsupported_esrd_era_codes_are_member_errors(store, code):
    members = [Member("X", code, "F", 70, codes=("I509",)), Member("OK", "D1", "F", 70)]
    result = score(store, members, 2026)
    assert set(result.rows["Member_Id"]) == {"OK"}
    error = result.errors.row(0, named=True)
    assert result.errors.height == 1
    assert (error["MemberID"], error["field"]) == ("X", "RAType")
    assert f"RAType {code} " in error["message"] and "not supported" in error["message"]


# ------------------------------------------------------------------ NonAged, renal, buckets


def test_nonaged_is_age_under_65_not_disabl(store):
    """V24_Interactions.csv NONAGED_HCC110 = NonAged x HCC110; both ports: NonAged = age < 65
    (OREC 0 at 64 is NonAged although DISABL = 0). The CE cell uses the plain age (60-64)."""
    members = [
        Member("64_orec0", "D2", "M", 64, orec="0", codes=("E840",)),
        Member("65_orec1", "D2", "M", 65, orec="1", codes=("E840",)),
    ]
    result = score(store, members, 2026)
    young, _ = rows_of(result, "64_orec0")
    old, _ = rows_of(result, "65_orec1")
    assert young["RA_Variable"] == "DI_M60_64, HCC110, NONAGED_HCC110"
    assert young["RAF_Disease_Interaction_With_Disability_Or_NonAged"] == 0.657  # CE:147
    # OriginallyDisabled_Male fires (OREC 1, aged) with DIAL 0 (CE:28), so it is not listed
    assert old["RA_Variable"] == "DI_M65_69, HCC110"
    assert old["RAF_Disease_Interaction_With_Disability_Or_NonAged"] == 0


def test_renal_hccs_score_zero_but_are_in_the_trail(store):
    result = score(store, [Member("R", "D2", "F", 70, codes=("N186",))], 2026, detail=True)
    raw, _active = rows_of(result, "R")
    assert raw["RAF_Disease"] == 0 and raw["RA_Variable"] == "DI_F70_74"
    hccs = result.trail["hccs"].filter(pl.col("model") == "ESRD_V24")
    assert hccs.select("hcc", "coefficient_milli").rows() == [(136, 0)]
    assert result.dx_summary["used"] == 1


def test_esrd_buckets_in_variables_csv(store):
    variables = store.year(2026).models["esrd_v24"].variables
    bucket = dict(zip(variables["variable"], variables["bucket"]))
    demographic_interaction = [
        v for v in bucket
        if v.startswith(("GE65_DUR", "LT65_DUR", "PBD_", "LTI_", "FBDual_", "PBDual_",
                         "TRANSPLANT_", "Originally", "FBD_", "ND_PBD_", "ActAdj_"))
    ]
    assert len(demographic_interaction) > 200
    assert {bucket[v] for v in demographic_interaction} == {"demographic_interaction"}
    nonaged = [v for v in bucket if v.startswith("NONAGED_")]
    assert len(nonaged) == 11
    assert {bucket[v] for v in nonaged} == {"disability_interaction"}
    assert not [v for v in bucket if bucket[v] == "disease_count"]


# ------------------------------------------------------------------ silent key mismatch


def _esrd_member_models() -> pl.DataFrame:
    """Every ESRD RAType x sex x age 0..100 x OREC x NEMCAID, through ratype.normalize."""
    rows = list(itertools.product(ESRD_CODES, "FM", range(101), "0123", "YN"))
    memberships = pl.DataFrame(
        {
            "MemberID": [f"m{i}" for i in range(len(rows))],
            "DOB": [dob_for(age, 2026) for _, _, age, _, _ in rows],
            "Gender": [r[1] for r in rows],
            "RAType": [r[0] for r in rows],
            "Hospice": ["N"] * len(rows),
            "LTIMCAID": ["N"] * len(rows),
            "NEMCAID": [r[4] for r in rows],
            "OREC": [r[3] for r in rows],
        }
    ).with_row_index("input_index")
    members, errors = normalize(memberships, 2026)
    assert errors.height == 0
    return member_models(members, [ESRD_V24])


def test_every_generated_esrd_variable_has_a_coefficient(store):
    """pitfall 3 for ESRD: each generated (segment, variable) is listed in coefficients.csv
    or in ESRD_V24.intentionally_absent, nothing absent is listed, and every listed
    coefficient is reachable except ACTADJ (applied as a divisor by adjust_rows),
    TRANSPLANT_KIDNEY_ONLY_3M (no RAType: G2 covers months 2-3 with _2M, same value) and
    the all-zero PBDual_* of DI."""
    assert MODEL_SPECS["esrd_v24"] is ESRD_V24
    tables = store.year(2026).models["esrd_v24"]
    members = _esrd_member_models()
    payment = (
        tables.variables.filter(pl.col("kind") == "hcc")["variable"]
        .str.replace("HCC", "").cast(pl.Int32).to_list()
    )
    hccs = members.select("input_index", "model").join(
        pl.DataFrame({"hcc": payment}, schema={"hcc": pl.Int32}), how="cross"
    )
    generated = (
        build_variables(members, hccs, tables, ESRD_V24)
        .select(pl.col("coef_segment").alias("segment"), "variable")
        .unique()
    )
    mismatches = key_mismatches(generated, tables.coefficients, ESRD_V24.intentionally_absent)
    assert mismatches["generated without coefficient"] == []
    assert mismatches["intentionally absent but has a coefficient"] == []
    assert mismatches["intentionally absent but never generated"] == []
    # PBDual_* (DIAL 0 in CE:37-40): D2/I4 say "partial or non-dual", so no DI member is
    # known to be a partial dual; the coefficients are 0, the score is the same either way.
    assert sorted(mismatches["coefficient never generated"]) == [
        ("ACTADJ", "ActAdj_DUR10PL"),
        ("ACTADJ", "ActAdj_DUR4_9"),
        ("DI", "PBDual_Female_Aged"),
        ("DI", "PBDual_Female_NonAged"),
        ("DI", "PBDual_Male_Aged"),
        ("DI", "PBDual_Male_NonAged"),
        ("TRANSPLANT", "TRANSPLANT_KIDNEY_ONLY_3M"),
    ]
    pbdual = tables.coefficients.filter(pl.col("variable").str.starts_with("PBDual_"))
    assert set(pbdual["coefficient_milli"]) == {0}


def test_each_esrd_member_gets_exactly_one_cell(store):
    tables = store.year(2026).models["esrd_v24"]
    members = _esrd_member_models()
    no_hccs = pl.DataFrame(schema={"input_index": pl.UInt32, "model": pl.Utf8, "hcc": pl.Int32})
    cells = (
        build_variables(members, no_hccs, tables, ESRD_V24)
        .filter(pl.col("family").is_in(["age_sex", "ne_cell"]))
        .group_by("input_index")
        .len()
    )
    with_cell = members.filter(pl.col("segment") != "TRANSPLANT")
    assert cells.height == with_cell.height
    assert set(cells["len"]) == {1}
