"""Stage-level behaviour: cleaning, dates, reasons, mapping to two CCs, hierarchies, ra_variable."""

from __future__ import annotations

import polars as pl

from engine import score_raw
from engine.diagnoses import clean_code, screen
from tests.engine.conftest import dx_in, make_diagnoses, make_members, row_of
from tests.engine.test_pitfalls import coef, hccs_of, score_one


def test_clean_code_trims_uppercases_and_drops_dots():
    codes = pl.Series([" f13.229 ", "I50.9", "e119", None])
    assert pl.select(clean_code(pl.lit(codes)))[:, 0].to_list() == ["F13229", "I509", "E119", None]


def test_cleaned_codes_score_like_clean_ones(tables_2025):
    messy = score_one(tables_2025, {"segment": "CPD", "age": 39, "sex": "M"}, [" f13.229 "])
    assert row_of(messy, "A", "V28")["total"] == 609


def test_invalid_dates_and_unknown_members_are_reported():
    members = make_members([{"MemberID": "A", "segment": "CNA", "age": 70, "sex": "F"}])
    dx = make_diagnoses(
        [
            ("A", "I509", "2024-02-30", "2024-03-01"),  # FromDOS is not a date
            ("A", "I509", "2024-03-05", "2024-03-01"),  # ThruDOS before FromDOS
            ("A", "I509", "", "2024-03-01"),  # missing FromDOS
            ("B", "I509", "2024-03-01", "2024-03-01"),  # not a scorable member
            ("A", "I509", "2024-03-01", "2024-03-01"),
        ]
    )
    counted, dropped = screen(dx, members, 2024)
    assert counted["dx_index"].to_list() == [4]
    assert dropped.sort("dx_index")["reason"].to_list() == [
        "invalid_dates", "invalid_dates", "invalid_dates", "unknown_member",
    ]
    assert dropped.filter(pl.col("reason") == "unknown_member")["input_index"].to_list() == [None]


def test_a_code_maps_to_two_ccs(tables_2025):
    # E113412 -> CC37 and CC298 in the V28 mapping
    result = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F"}, ["E113412"])
    assert hccs_of(result, "V28") == [37, 298]
    hccs = result.trail["hccs"].filter(pl.col("model") == "V28")
    assert hccs["dx_codes"].to_list() == [["E113412"], ["E113412"]]
    expected = coef(tables_2025, "cms_hcc_v28", "CNA", "HCC37") + coef(
        tables_2025, "cms_hcc_v28", "CNA", "HCC298"
    )
    assert row_of(result, "A", "V28")["disease"] == expected


def test_hierarchy_parent_presence_is_tested_before_any_drop(tables_2025):
    """CMS-PY semantics (docs in engine/hierarchies.py): 63 removes 202 even when 62 removes 63."""
    result = score_one(tables_2025, {"segment": "CNA", "age": 70, "sex": "F"}, ["T8640", "I8500", "E035"])
    assert hccs_of(result, "V28") == [62]
    drops = result.trail["hierarchy_dropped"].filter(pl.col("model") == "V28")
    assert sorted(drops.select("hcc", "dropped_by").rows()) == [(63, 62), (202, 63)]


def test_ra_variable_order_and_interaction_trail(tables_2025):
    result = score_one(
        tables_2025, {"segment": "CNA", "age": 70, "sex": "F", "orec": 1}, ["I509", "E119"]
    )
    row = row_of(result, "A", "V28")
    assert row["ra_variable"] == (
        "CNA_F70_74, OriginallyDisabled_Female, HCC38, HCC226, DIABETES_HF_V28"
    )
    interactions = result.trail["interactions"].filter(pl.col("model") == "V28")
    assert interactions.select("name", "coefficient_milli").rows() == [
        ("DIABETES_HF_V28", coef(tables_2025, "cms_hcc_v28", "CNA", "DIABETES_HF_V28"))
    ]
    described = tables_2025.models["cms_hcc_v28"].variables.filter(
        pl.col("variable") == "DIABETES_HF_V28"
    )
    assert interactions["label"].to_list() == described["label"].to_list()
    assert interactions["label"][0]


def test_no_diagnoses_and_no_members(tables_2025):
    members = make_members([{"MemberID": "A", "segment": "CNA", "age": 70, "sex": "F"}])
    empty_dx = make_diagnoses([])
    result = score_raw(members, empty_dx, tables_2025, detail=True)
    assert row_of(result, "A", "V28")["total"] == coef(tables_2025, "cms_hcc_v28", "CNA", "F70_74")
    assert result.dx_summary["used"] == 0
    nobody = score_raw(members.clear(), make_diagnoses(dx_in("A", "I509")), tables_2025, detail=True)
    assert nobody.rows.height == 0
    assert nobody.dx_summary["unknown_member"] == 1


def test_payment_year_2024_uses_its_collection_year(tables_2024):
    members = make_members([{"MemberID": "A", "segment": "CPD", "age": 38, "sex": "M"}])
    dx = make_diagnoses(dx_in("A", "F13229", year=2023) + dx_in("A", "I509", year=2024))
    result = score_raw(members, dx, tables_2024)
    assert result.dx_summary["used"] == 1
    assert result.dx_summary["outside_collection_year"] == 1
    assert row_of(result, "A", "V28")["disease"] == coef(tables_2024, "cms_hcc_v28", "CPD", "HCC137")


class _WithCodeList:
    """YearTables plus an ICD-10 code list (the hook ``recognize_valid_codes`` reads)."""

    def __init__(self, tables, codes):
        self._tables = tables
        self.icd10_codes = pl.DataFrame({"icd10": codes})

    def __getattr__(self, name):
        return getattr(self._tables, name)


def test_valid_code_without_hcc_is_no_hcc_when_a_code_list_is_known(tables_2025):
    members = make_members([{"MemberID": "A", "segment": "CNA", "age": 70, "sex": "F"}])
    dx = make_diagnoses(dx_in("A", "I10", "S62X5"))
    # the bundled ICD-10-CM lists (reference/data/icd10cm/codes.csv) know I10
    plain = score_raw(members, dx, tables_2025)
    assert plain.dx_summary["unknown_code"] == 1 and plain.dx_summary["no_hcc"] == 1
    empty = score_raw(members, dx, _WithCodeList(tables_2025, []))
    assert empty.dx_summary["unknown_code"] == 2 and empty.dx_summary["no_hcc"] == 0
    listed = score_raw(members, dx, _WithCodeList(tables_2025, ["I10", "F13229"]))
    assert listed.dx_summary["unknown_code"] == 1 and listed.dx_summary["no_hcc"] == 1
    assert listed.dropped_dx.sort("dx_index")["reason"].to_list() == ["no_hcc", "unknown_code"]
