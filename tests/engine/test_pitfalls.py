"""One test per item of docs/scoring.md "Pitfalls" that concerns CMS-HCC raw scoring.

Expected values are read from the real reference tables (never typed from
memory); codes and their CCs are the PY2025 mappings'. Items 8 (age on Feb 1)
and 11 (normalization) belong to ratype.normalize and engine/blend.py; item 12
(ESRD) is covered here only as the hook (ESRD members get no CMS-HCC rows).
"""

from __future__ import annotations

import itertools
import re

import polars as pl
import pytest

from engine import score_raw
from engine.spec import MODEL_SPECS
from engine.variables import build_variables
from tests.coverage_check import key_mismatches
from tests.engine.conftest import dx_in, make_diagnoses, make_members, row_of


def coef(tables, model_id: str, segment: str, variable: str) -> int:
    table = tables.models[model_id].coefficients
    hit = table.filter((pl.col("segment") == segment) & (pl.col("variable") == variable))
    assert hit.height == 1, (model_id, segment, variable)
    return hit["coefficient_milli"][0]


def score_one(tables, member: dict, codes: list[str], **kwargs):
    member = {"MemberID": "A", **member}
    return score_raw(
        make_members([member]), make_diagnoses(dx_in("A", *codes)), tables, detail=True, **kwargs
    )


def hccs_of(result, model: str) -> list[int]:
    hccs = result.trail["hccs"].filter(pl.col("model") == model)
    return sorted(hccs["hcc"].to_list())


def counts_of(result, model: str) -> set[str]:
    return {v for v in variables_of(result, model) if re.fullmatch(r"D\d+P?", v)}


def variables_of(result, model: str) -> set[str]:
    return set(result.trail["variables"].filter(pl.col("model") == model)["variable"].to_list())


# 1 ---------------------------------------------------------------------------------------


def test_pitfall_01_v28_heart_patch(tables_2025):
    alone = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F"}, ["Z95811"])
    assert hccs_of(alone, "V28") == []  # CC223 without CC221/222/224/225/226 -> 0
    assert row_of(alone, "A", "V28")["disease"] == 0
    dropped = alone.trail["hierarchy_dropped"].filter(pl.col("model") == "V28")
    assert dropped.select("hcc", "rule").rows() == [(223, "v28_heart_patch")]
    # V24 has no patch: the same code keeps its V24 HCC
    assert hccs_of(alone, "V24") == [186]
    assert alone.dx_summary["used"] == 1

    # with a companion (I509 -> CC226) CC223 stays, and its hierarchy then removes 226
    paired = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F"}, ["Z95811", "I509"])
    assert hccs_of(paired, "V28") == [223]
    assert row_of(paired, "A", "V28")["disease"] == coef(tables_2025, "cms_hcc_v28", "CNA", "HCC223")
    drops = paired.trail["hierarchy_dropped"].filter(pl.col("model") == "V28")
    assert drops.select("hcc", "dropped_by", "rule").rows() == [(226, 223, "hierarchy")]


def test_pitfall_01_heart_patch_runs_before_hierarchies(tables_2025):
    # I5084 -> CC222 is a companion, and HCC222 itself outranks 223
    result = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F"}, ["Z95811", "I5084"])
    assert hccs_of(result, "V28") == [222]
    drops = result.trail["hierarchy_dropped"].filter(pl.col("model") == "V28")
    assert drops.select("hcc", "dropped_by", "rule").rows() == [(223, 222, "hierarchy")]


# 2 ---------------------------------------------------------------------------------------

V28_DISEASE_INTERACTIONS = {
    "DIABETES_HF_V28": ["E119", "I509"],  # CC38 x CC226
    "HF_CHR_LUNG_V28": ["I509", "J449"],  # CC226 x CC280
    "HF_KIDNEY_V28": ["I509", "N184"],  # CC226 x CC327
    "CHR_LUNG_CARD_RESP_FAIL_V28": ["J449", "J9500"],  # CC280 x CC211
    "HF_HCC238_V28": ["I509", "I470"],  # CC226 x CC238
    "gSubUseDisorder_gPsych_V28": ["F13229", "F200"],  # CC137 x CC151
}


@pytest.mark.parametrize("interaction", sorted(V28_DISEASE_INTERACTIONS))
def test_pitfall_02_v28_interactions(tables_2025, interaction):
    codes = V28_DISEASE_INTERACTIONS[interaction]
    segment = "CND" if interaction.startswith("gSubUse") else "CNA"
    age = 50 if segment == "CND" else 70
    result = score_one(tables_2025, {"segment": segment, "age": age, "sex": "M", "orec": 1}, codes)
    fired = result.trail["interactions"].filter(pl.col("model") == "V28")
    assert fired["name"].to_list() == [interaction]
    expected = coef(tables_2025, "cms_hcc_v28", segment, interaction)
    assert expected > 0
    assert row_of(result, "A", "V28")["disease_interaction"] == expected


V28_DISABLED_TERMS = {
    "DISABLED_CANCER_V28": "C771",  # CC17
    "DISABLED_NEURO_V28": "G800",  # CC191
    "DISABLED_HF_V28": "I509",  # CC226
    "DISABLED_CHR_LUNG_V28": "J449",  # CC280
    "DISABLED_ULCER_V28": "L89004",  # CC379
}


@pytest.mark.parametrize("interaction", sorted(V28_DISABLED_TERMS))
def test_pitfall_02_v28_disabled_terms_institutional_and_gated_by_disabl(tables_2025, interaction):
    code = V28_DISABLED_TERMS[interaction]
    disabled = score_one(tables_2025, {"segment": "INS", "age": 50, "sex": "F", "orec": 1}, [code])
    row = row_of(disabled, "A", "V28")
    assert row["disability_interaction"] == coef(tables_2025, "cms_hcc_v28", "INS", interaction)
    assert interaction in variables_of(disabled, "V28")
    # same age, OREC 0: DISABL = 0 -> no DISABLED_* term
    not_disabled = score_one(tables_2025, {"segment": "INS", "age": 50, "sex": "F"}, [code])
    assert row_of(not_disabled, "A", "V28")["disability_interaction"] == 0
    # community disabled member: DISABL = 1 but the community lists have no DISABLED_* term
    community = score_one(tables_2025, {"segment": "CND", "age": 50, "sex": "F", "orec": 1}, [code])
    assert row_of(community, "A", "V28")["disability_interaction"] == 0


# 3 ---------------------------------------------------------------------------------------


def _all_member_shapes() -> list[dict]:
    """Every segment x sex x age x OREC x Medicaid flag the normalizer can route."""
    shapes = []
    ages = {"aged": range(65, 111), "disabled": range(65), "any": range(111)}
    segment_ages = {
        "CNA": "aged", "CFA": "aged", "CPA": "aged",
        "CND": "disabled", "CFD": "disabled", "CPD": "disabled",
        "INS": "any", "NE": "any", "SNPNE": "any",
    }
    for segment, band in segment_ages.items():
        for sex, age, orec, ltimcaid, nemcaid in itertools.product(
            "FM", ages[band], (0, 1, 2, 3), (False, True), (False, True)
        ):
            if ltimcaid and segment != "INS":
                continue
            if nemcaid and segment not in ("NE", "SNPNE"):
                continue
            shapes.append(
                {"segment": segment, "age": age, "sex": sex, "orec": orec,
                 "ltimcaid": ltimcaid, "nemcaid": nemcaid}
            )
    return shapes


@pytest.mark.parametrize("model_id", ["cms_hcc_v28", "cms_hcc_v24"])
def test_pitfall_03_silent_key_mismatch(tables_2025, model_id):
    """Every variable the engine generates exists for the segment or is listed as absent."""
    model_spec = MODEL_SPECS[model_id]
    model_tables = tables_2025.models[model_id]
    shapes = _all_member_shapes()
    members = make_members(
        [{"MemberID": f"m{i}", "input_index": i, **s} for i, s in enumerate(shapes)]
    ).with_columns(pl.lit(model_spec.label).alias("model"))

    # every payment HCC at once (fires every group, every interaction) ...
    payment = (
        model_tables.variables.filter(pl.col("kind") == "hcc")["variable"]
        .str.replace("HCC", "").cast(pl.Int32).sort().to_list()
    )
    all_hccs = members.select("input_index", "model").join(
        pl.DataFrame({"hcc": payment}, schema={"hcc": pl.Int32}), how="cross"
    )
    # ... and, for a second copy of the members, 1..12 HCCs to reach every count variable
    counted = members.with_columns(pl.col("input_index") + len(shapes))
    count_hccs = counted.select(
        "input_index", "model",
        pl.int_ranges(0, (pl.col("input_index") % 12) + 1).alias("k"),
    ).explode("k", empty_as_null=False).with_columns(
        pl.col("k").map_elements(lambda k: payment[k], return_dtype=pl.Int32).alias("hcc")
    ).select("input_index", "model", "hcc")
    generated = build_variables(
        pl.concat([members, counted]), pl.concat([all_hccs, count_hccs]), model_tables, model_spec
    ).select("segment", "variable").unique()

    mismatches = key_mismatches(
        generated, model_tables.coefficients, model_spec.intentionally_absent
    )
    assert mismatches["generated without coefficient"] == []
    # the absent list stays honest: nothing on it has a coefficient
    assert mismatches["intentionally absent but has a coefficient"] == []
    # and every listed variable of the model is reachable (no dead coefficients)
    assert mismatches["coefficient never generated"] == []


# 4 ---------------------------------------------------------------------------------------

TEN_V28_HCCS = ["B20", "A021", "C771", "E119", "F13229", "F200", "I509", "J449", "N184", "L89004"]


def test_pitfall_04_payment_hcc_counts(tables_2025):
    member = {"segment": "CNA", "age": 70, "sex": "F"}
    ten = score_one(tables_2025, member, TEN_V28_HCCS)
    assert len(hccs_of(ten, "V28")) == 10
    assert "D10P" in variables_of(ten, "V28")  # >= 10, not > 10
    assert row_of(ten, "A", "V28")["disease_count"] == coef(tables_2025, "cms_hcc_v28", "CNA", "D10P")

    nine = score_one(tables_2025, member, TEN_V28_HCCS[:9])
    assert counts_of(nine, "V28") == {"D9"}

    # counted after hierarchies: C771 (CC17) and C450 (CC19) -> one HCC, D1
    hier = score_one(tables_2025, member, ["C771", "C450"])
    assert hccs_of(hier, "V28") == [17]
    assert counts_of(hier, "V28") == {"D1"}
    # counted after the heart patch: Z95811 alone leaves no HCC and no count
    patched = score_one(tables_2025, member, ["Z95811", "E119"])
    assert counts_of(patched, "V28") == {"D1"}


def test_pitfall_04_counts_only_where_cms_lists_them(tables_2025):
    ins = score_one(tables_2025, {"segment": "INS", "age": 70, "sex": "F"}, TEN_V28_HCCS)
    assert "D10P" in variables_of(ins, "V28")  # V28 INST_REG has &ADDZ
    assert not counts_of(ins, "V24")  # V24 INST_REG has none
    assert row_of(ins, "A", "V28")["disease_count"] == coef(tables_2025, "cms_hcc_v28", "INS", "D10P")


# 5 ---------------------------------------------------------------------------------------


def test_pitfall_05_hierarchies_from_cms_tables(tables_2025):
    pairs = set(tables_2025.models["cms_hcc_v28"].hierarchies.iter_rows())
    assert {(221, 222), (191, 192), (191, 180), (192, 180), (17, 18)} <= pairs
    assert len(pairs) == 149  # V28115H1.TXT

    result = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "M"}, ["G800", "G801", "G8250"])
    assert hccs_of(result, "V28") == [191]
    drops = result.trail["hierarchy_dropped"].filter(pl.col("model") == "V28")
    assert drops.select("hcc", "dropped_by").rows() == [(180, 191), (180, 192), (192, 191)]

    heart = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "M"}, ["T8620", "I5084"])
    assert hccs_of(heart, "V28") == [221]


# 6 ---------------------------------------------------------------------------------------


def test_pitfall_06_new_enrollees_are_demographic_only(tables_2025):
    result = score_one(tables_2025, {"segment": "NE", "age": 66, "sex": "F"}, TEN_V28_HCCS)
    for model, model_id in (("V28", "cms_hcc_v28"), ("V24", "cms_hcc_v24")):
        row = row_of(result, "A", model)
        assert variables_of(result, model) == {"NMCAID_NORIGDIS_NEF66"}  # single-year band
        cell = coef(tables_2025, model_id, "NE", "NMCAID_NORIGDIS_NEF66")
        assert row["demographic_interaction"] == row["total"] == cell
        assert row["demographic"] == row["disease"] == row["disease_count"] == 0
        assert row["ra_variable"] == "NE_NMCAID_NORIGDIS_NEF66"
    assert result.trail["hccs"].height == 0
    assert result.dx_summary["segment_without_hccs"] == len(TEN_V28_HCCS)
    assert result.dx_summary["used"] == 0


def test_pitfall_06_ne_age_64_orec_0_uses_the_65_cell(tables_2025):
    aged_in = score_one(tables_2025, {"segment": "NE", "age": 64, "sex": "M", "orec": 0}, [])
    assert variables_of(aged_in, "V28") == {"NMCAID_NORIGDIS_NEM65"}
    disabled = score_one(tables_2025, {"segment": "NE", "age": 64, "sex": "M", "orec": 1}, [])
    assert variables_of(disabled, "V28") == {"NMCAID_NORIGDIS_NEM60_64"}


def test_pitfall_06_nemcaid_and_snp_cells(tables_2025):
    medicaid = score_one(tables_2025, {"segment": "NE", "age": 70, "sex": "F", "nemcaid": True}, [])
    assert variables_of(medicaid, "V28") == {"MCAID_NORIGDIS_NEF70_74"}
    orig = score_one(tables_2025, {"segment": "NE", "age": 70, "sex": "F", "orec": 1}, [])
    assert variables_of(orig, "V28") == {"NMCAID_ORIGDIS_NEF70_74"}
    snp = score_one(tables_2025, {"segment": "SNPNE", "age": 70, "sex": "F"}, [])
    ne = score_one(tables_2025, {"segment": "NE", "age": 70, "sex": "F"}, [])
    assert row_of(snp, "A", "V28")["total"] == coef(
        tables_2025, "cms_hcc_v28", "SNPNE", "NMCAID_NORIGDIS_NEF70_74"
    )
    assert row_of(snp, "A", "V28")["total"] != row_of(ne, "A", "V28")["total"]
    assert row_of(snp, "A", "V28")["ra_variable"] == "SNPNE_NMCAID_NORIGDIS_NEF70_74"


# 7 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("orec", [1, 2, 3])
def test_pitfall_07_orec_disabl_includes_2_and_3(tables_2025, orec):
    result = score_one(tables_2025, {"segment": "INS", "age": 50, "sex": "F", "orec": orec}, ["I509"])
    assert "DISABLED_HF_V28" in variables_of(result, "V28")
    assert "DISABLED_HCC85" in variables_of(result, "V24")


@pytest.mark.parametrize("orec, originally_disabled", [(0, False), (1, True), (2, False), (3, False)])
def test_pitfall_07_originally_disabled_is_orec_1_only(tables_2025, orec, originally_disabled):
    result = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F", "orec": orec}, [])
    row = row_of(result, "A", "V28")
    expected = coef(tables_2025, "cms_hcc_v28", "CNA", "OriginallyDisabled_Female")
    assert row["demographic_interaction"] == (expected if originally_disabled else 0)
    if originally_disabled:
        assert row["ra_variable"] == "CNA_F70_74, OriginallyDisabled_Female"


# 9 ---------------------------------------------------------------------------------------


def test_pitfall_09_edits_breast_cancer_by_age(tables_2025):
    young = score_one(tables_2025, {"segment": "CND", "age": 45, "sex": "F", "orec": 1}, ["C50911"])
    old = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F"}, ["C50911"])
    assert hccs_of(young, "V28") == [22]
    assert hccs_of(old, "V28") == [23]


def test_pitfall_09_edits_d66_female(tables_2025):
    female = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F"}, ["D66"])
    male = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "M"}, ["D66"])
    assert (hccs_of(female, "V28"), hccs_of(female, "V24")) == ([112], [48])
    assert (hccs_of(male, "V28"), hccs_of(male, "V24")) == ([111], [46])


def test_pitfall_09_edits_copd_under_18_and_newborn_codes(tables_2025):
    child = score_one(tables_2025, {"segment": "CND", "age": 10, "sex": "F", "orec": 1}, ["J449"])
    assert hccs_of(child, "V28") == []  # V28: J41-J44 under 18 invalid
    assert hccs_of(child, "V24") == [112]  # V24 edit: under 18 -> CC112
    newborn = score_one(tables_2025, {"segment": "CND", "age": 5, "sex": "F", "orec": 1}, ["P0411"])
    assert hccs_of(newborn, "V28") == []
    assert newborn.dx_summary["edit_excluded"] == 1


def test_pitfall_09_mce_age_validity_switchable(tables_2025):
    member = {"segment": "CNA", "age": 70, "sex": "F"}
    on = score_one(tables_2025, member, ["C58"])  # MCE: ages 9-64
    assert hccs_of(on, "V28") == [] and hccs_of(on, "V24") == []
    assert on.dx_summary["edit_excluded"] == 1
    off = score_one(tables_2025, member, ["C58"], mce_edits=False)
    assert hccs_of(off, "V28") == [22]
    assert off.dx_summary["used"] == 1


# 10 --------------------------------------------------------------------------------------


def test_pitfall_10_dates_and_unknown_codes(tables_2025):
    members = make_members([{"MemberID": "A", "segment": "CNA", "age": 70, "sex": "F"}])
    dx = make_diagnoses(
        [
            ("A", "I509", "2023-12-01", "2023-12-31"),  # before the collection year
            ("A", "I509", "2025-01-01", "2025-01-02"),  # after
            ("A", "I509", "2023-12-20", "2024-01-03"),  # ThruDOS in 2024: counts
            ("A", "ZZZ99", "2024-02-01", "2024-02-01"),  # no mapping knows it
        ]
    )
    result = score_raw(members, dx, tables_2025, detail=True)
    assert result.dx_summary["outside_collection_year"] == 2
    assert result.dx_summary["unknown_code"] == 1
    assert result.dx_summary["used"] == 1
    assert hccs_of(result, "V28") == [226]


# 12 (hook only) ---------------------------------------------------------------------------


def test_pitfall_12_esrd_members_never_get_cms_hcc_rows(tables_2025):
    members = make_members(
        [
            {"MemberID": "E", "segment": "DI", "age": 70, "sex": "F"},
            {"MemberID": "A", "segment": "CNA", "age": 70, "sex": "F"},
        ]
    )
    result = score_raw(members, make_diagnoses(dx_in("E", "I509")), tables_2025)
    esrd_rows = result.rows.filter(pl.col("MemberID") == "E")
    assert not set(esrd_rows["model"]) & {"V28", "V24"}
    if "esrd_v24" in MODEL_SPECS:  # the ESRD spec is registered: one ESRD_V24 row
        assert esrd_rows["model"].to_list() == ["ESRD_V24"]
    else:  # the hook: no rows, diagnoses reported as waiting for the model
        assert esrd_rows.height == 0
        assert result.dx_summary["model_not_implemented"] == 1


# 13 --------------------------------------------------------------------------------------


def test_pitfall_13_ltimcaid_in_demographic_interaction_bucket(tables_2025):
    result = score_one(tables_2025, {"segment": "INS", "age": 80, "sex": "M", "ltimcaid": True}, [])
    for model, model_id in (("V28", "cms_hcc_v28"), ("V24", "cms_hcc_v24")):
        row = row_of(result, "A", model)
        assert row["demographic_interaction"] == coef(tables_2025, model_id, "INS", "LTIMCAID")
        assert row["disease"] == 0
        assert row["demographic"] == coef(tables_2025, model_id, "INS", "M80_84")
