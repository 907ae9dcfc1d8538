"""The members/errors frames match docs/ARCHITECTURE.md "Members frame (ratype.normalize)"."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratype import ERRORS_SCHEMA, MEMBERS_SCHEMA, age_band_table, code_table, normalize
from ratype.tables import CodeTableError, age_band_array, routing_table
from tests.parity.population import risk_compose_cms_dir
from tests.ratype.helpers import member, run

ARCHITECTURE_MEMBER_COLUMNS = [
    "MemberID", "BirthDate_Org", "BirthDate", "Age", "Age_Band", "Gender_Org", "Gender",
    "RAType_Org", "RAType", "Hospice_Org", "Hospice", "LTIMCAID_Org", "LTIMCAID", "NEMCAID_Org",
    "NEMCAID", "OREC_Org", "OREC", "Originally_Disabled", "Originally_ESRD",
    "input_index", "age", "sex", "orec", "model_family", "segment", "disabl", "origds",
    "ne_origds", "ltimcaid", "nemcaid", "fbd", "pbd", "lti", "graft_duration", "transplant_month",
    "aged", "ne_aged", "normalization_group", "warnings",
]

# The seed's appendix "RAF Type Codes": code -> supported.
SEED_APPENDIX = {
    "CF": True, "PI": False, "C": False, "CN": True, "PK": False, "CP": True, "PJ": False,
    "D1": True, "D2": True, "I3": True, "I4": True, "ED": True, "C3": True, "C6": True, "I1": True,
    "I5": True, "I6": True, "I7": True, "I8": True, "I9": True, "IA": True, "E1": True, "E2": True,
    "C4": True, "C5": True, "C7": True, "C8": True, "I": True, "E": True, "SE": False, "G1": True,
    "G2": True, "C1": False, "C2": False, "D": False, "I2": False, "PA": False, "PB": False,
    "PC": False, "PD": False, "PE": False, "PF": False, "PG": False, "PH": False, "PL": False,
    "PM": False,
}
ESRD_CODES = {"D1", "D2", "I3", "I4", "ED", "C3", "C6", "I1", "I5", "I6", "I7", "I8", "I9", "IA",
              "E1", "E2", "C4", "C5", "C7", "C8", "G1", "G2", "C1", "C2", "D", "I2", "PA", "PB",
              "PC", "PD", "PE", "PF", "PG", "PH", "PL", "PM"}

# Band names as they appear in CMS variable names (AGESEXV2.TXT; V24_NE_Dialysis_Relative_Factors).
CMS_BANDS = {
    "ce": ["0_34", "35_44", "45_54", "55_59", "60_64", "65_69", "70_74", "75_79", "80_84", "85_89",
           "90_94", "95_GT"],
    "ne": ["0_34", "35_44", "45_54", "55_59", "60_64", "65", "66", "67", "68", "69", "70_74",
           "75_79", "80_84", "85_89", "90_94", "95_GT"],
    "dialysis_ne": ["0_34", "35_44", "45_54", "55_59", "60_64", "65_69", "70_74", "75_79", "80_84",
                    "85_GT"],
}
CMS_2026 = risk_compose_cms_dir()


def test_members_columns_and_types_follow_the_contract():
    members, errors = run([member()])
    assert members.columns == ARCHITECTURE_MEMBER_COLUMNS
    assert dict(members.schema) == MEMBERS_SCHEMA
    assert members.schema["input_index"] == pl.UInt32
    assert members.schema["age"] == pl.Int16 and members.schema["orec"] == pl.Int8
    assert members.schema["warnings"] == pl.List(pl.Utf8)
    assert dict(errors.schema) == ERRORS_SCHEMA
    assert errors.columns == ["MemberID", "input_index", "field", "message", "duplicate_of"]


def test_empty_input_gives_empty_frames_with_the_contract_schema():
    members, errors = normalize(pl.DataFrame(schema={"MemberID": pl.Utf8}), 2025)
    assert members.is_empty() and errors.is_empty()
    assert dict(members.schema) == MEMBERS_SCHEMA and dict(errors.schema) == ERRORS_SCHEMA


def test_input_index_is_added_when_absent_and_kept_when_given():
    rows = [member(MemberID="A"), member(MemberID="B", RAType="PI"), member(MemberID="C")]
    members, errors = run(rows)
    assert members["input_index"].to_list() == [0, 2] and errors["input_index"].to_list() == [1]
    given = pl.DataFrame(rows).with_columns(input_index=pl.Series([7, 3, 5], dtype=pl.UInt32))
    members, errors = normalize(given, 2025)
    assert members["input_index"].to_list() == [5, 7]  # ordered by input_index
    assert members["MemberID"].to_list() == ["C", "A"]
    assert errors["input_index"].to_list() == [3]


def test_missing_optional_columns_default_to_n():
    frame = pl.DataFrame({"MemberID": ["A"], "DOB": ["1950-06-15"], "Gender": ["F"],
                          "RAType": ["CN"], "OREC": ["0"]})
    members, errors = normalize(frame, 2025)
    assert errors.is_empty()
    row = members.row(0, named=True)
    assert (row["Hospice_Org"], row["Hospice"], row["LTIMCAID"], row["NEMCAID"]) == (
        None, "N", "N", "N")


def test_missing_required_column_is_a_member_error_not_an_exception():
    frame = pl.DataFrame({"MemberID": ["A", "B"], "DOB": ["1950-06-15", "1950-06-15"],
                          "Gender": ["F", "M"], "RAType": ["CN", "CN"]})
    members, errors = normalize(frame, 2025)
    assert members.is_empty()
    assert errors["field"].to_list() == ["OREC", "OREC"]


def test_every_input_row_is_a_member_or_an_error_of_its_own():
    rows = [
        member(MemberID="ok1"), member(MemberID="bad", Gender="Q"), member(MemberID="dup"),
        member(MemberID="dup"), member(MemberID="conflict", OREC="0"),
        member(MemberID="conflict", OREC="1"), member(MemberID=None), member(MemberID=None),
        member(MemberID="ok2", RAType="ED"),
    ]
    members, errors = run(rows)
    assert members["MemberID"].to_list() == ["ok1", "dup", "ok2"]
    assert errors["MemberID"].to_list() == ["bad", "dup", "conflict", "conflict", None, None]
    # each row once: a member or its own error (the repeat 3 names 2; 4 and 5 both conflict)
    assert sorted([*members["input_index"], *errors["input_index"]]) == list(range(9))
    assert errors["duplicate_of"].to_list() == [None, 2, None, None, None, None]
    assert "memberships[2]" in errors.filter(pl.col("input_index") == 3)["message"].item()
    assert members.filter(pl.col("MemberID") == "dup")["warnings"].item().to_list() == [
        "1 identical duplicate membership row(s) ignored"]


def test_non_string_columns_are_read_as_strings():
    frame = pl.DataFrame({"MemberID": ["A"], "DOB": ["1950-06-15"], "Gender": [2],
                          "RAType": ["CN"], "OREC": [1]})
    members, errors = normalize(frame, 2025)
    assert errors.is_empty()
    assert members.select("Gender", "OREC_Org", "orec").row(0) == ("F", "1", 1)


def test_large_roster_is_vectorized():
    # A smoke test at 100k rows (no timing assert: the machine is shared).
    n = 100_000
    frame = pl.DataFrame({
        "MemberID": [f"M{i}" for i in range(n)],
        "DOB": ["1950-06-15", "1990-02-01"] * (n // 2),
        "Gender": "F", "RAType": ["CN", "D1", "E", "C4"] * (n // 4), "OREC": "1",
    })
    members, errors = normalize(frame, 2025)
    assert members.height == n and errors.is_empty()
    assert members["segment"].head(4).to_list() == ["CNA", "DI", "NE", "GNPN"]


# ---- the tables themselves ------------------------------------------------------------------

def test_code_table_has_every_seed_appendix_code_with_its_support_flag():
    table = code_table()
    assert dict(zip(table["code"], table["supported"] == "yes")) == SEED_APPENDIX
    assert set(table.filter(pl.col("esrd") == "yes")["code"]) == ESRD_CODES


def test_code_table_esrd_flag_matches_model_family():
    supported = code_table().filter(pl.col("supported") == "yes")
    for row in supported.iter_rows(named=True):
        assert (row["model_family"] == "ESRD") == (row["esrd"] == "yes"), row["code"]


def test_only_i1_carries_a_code_warning():
    assert code_table().filter(pl.col("warning").is_not_null())["code"].to_list() == ["I1"]


@pytest.mark.parametrize("scheme", sorted(CMS_BANDS))
def test_band_names_are_the_cms_variable_suffixes(scheme):
    bands = age_band_table().filter(pl.col("scheme") == scheme)["band"].to_list()
    assert bands == CMS_BANDS[scheme]


def test_band_names_match_the_cms_2026_tables_when_present():
    files = {
        "ne": CMS_2026 / "CMS_HCC_v28_2026_T_package_v3/software/CMS_HCC_v28/data/input/internal"
              / "V28_NE_Relative_Factors.csv",
        "dialysis_ne": CMS_2026 / "ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal"
                       / "V24_NE_Dialysis_Relative_Factors.csv",
    }
    missing = [str(path) for path in files.values() if not path.exists()]
    assert not missing, f"CMS 2026 tables missing from the installed risk-compose wheel: {missing}"
    for scheme, path in files.items():
        variables = pl.read_csv(path, infer_schema=False).get_column(
            pl.read_csv(path, infer_schema=False).columns[0])
        female = (variables.str.extract(r"NEF(\w+)$").drop_nulls().unique(maintain_order=True)
                  .to_list())
        assert female == CMS_BANDS[scheme], scheme


def test_band_array_covers_every_age_once():
    array = age_band_array()
    assert array.null_count() == 0
    assert array.len() == len(CMS_BANDS) * 121


def test_routing_table_rejects_a_bad_code_table(monkeypatch, tmp_path):
    from ratype import tables

    broken = code_table().with_columns(
        pl.when(pl.col("code") == "CN").then(pl.lit("CNX")).otherwise("segment_aged")
        .alias("segment_aged"))
    broken.write_csv(tmp_path / "codes.csv")
    (tmp_path / "age_bands.csv").write_text((tables.DATA_DIR / "age_bands.csv").read_text())
    monkeypatch.setattr(tables, "DATA_DIR", tmp_path)
    tables.code_table.cache_clear()
    try:
        with pytest.raises(CodeTableError, match="segment_aged"):
            tables.code_table()
    finally:
        monkeypatch.undo()
        tables.code_table.cache_clear()
    assert routing_table().height == len(SEED_APPENDIX)


# ---- property: nothing is lost, nothing raises ------------------------------------------------

_ANY_CODE = [*code_table()["code"].to_list(), "", "zz", None, "cn"]
_ROW = st.fixed_dictionaries({
    "MemberID": st.one_of(st.sampled_from(["A", "B", "C", "", None]), st.text(max_size=3)),
    "DOB": st.one_of(st.dates(dt.date(1890, 1, 1), dt.date(2026, 12, 31)).map(dt.date.isoformat),
                     st.sampled_from(["1961-02-29", "", None, "x"])),
    "Gender": st.sampled_from(["M", "F", "1", "2", "m", "X", None]),
    "RAType": st.sampled_from(_ANY_CODE),
    "Hospice": st.sampled_from(["Y", "N", "y", None, "Q"]),
    "LTIMCAID": st.sampled_from(["Y", "N", None]),
    "NEMCAID": st.sampled_from(["Y", "N", None]),
    "OREC": st.sampled_from(["0", "1", "2", "3", "4", None]),
})


@given(st.lists(_ROW, min_size=1, max_size=60), st.sampled_from([2024, 2025]))
@settings(max_examples=150, deadline=None)
def test_every_row_is_accounted_for(rows, payment_year):
    frame = pl.DataFrame(rows, schema={name: pl.Utf8 for name in rows[0]})
    members, errors = normalize(frame, payment_year)
    indexes = set(members["input_index"]) | set(errors["input_index"])
    ids = set(members["MemberID"].drop_nulls()) | set(errors["MemberID"].drop_nulls())
    for index, row in enumerate(rows):
        # Either reported itself, or folded into the member/error of the same MemberID.
        assert index in indexes or row["MemberID"] in ids
    assert not members["MemberID"].is_duplicated().any()
    assert members.select(pl.col("Age_Band", "segment", "model_family").null_count()).row(0) == (
        0, 0, 0)
    assert errors["field"].null_count() == 0 and errors["message"].null_count() == 0
    assert set(members["input_index"]).isdisjoint(errors["input_index"])
