"""Payment years as data: sources.toml, codes valid on their date of service, overrides.

* ``reference/sources.toml`` declares every year; the bundled manifest has exactly them.
* ICD-10-CM fiscal years (``reference/data/icd10cm/codes.csv``, from simple-icd-10-cm
  1.4.0 = FY2025 and 1.5.0 = FY2026 and the mapping files' coverage): a code counts only
  when its ThruDOS is in a fiscal year the code is valid in (FY N = 1 Oct N-1 .. 30 Sep N).
  G35.A is new on 2025-10-01, C86.00 on 2024-10-01 (C86.0 was billable until
  2024-09-30); I10 is a valid code with no payment HCC; XYZ123 is no code.
* ``RAF_PARAMETER_OVERRIDES``: an operator's CMS figure for a missing factor.
"""

from __future__ import annotations

import tomllib

import polars as pl
import pytest

from engine.run import score_batch
from reference import ParameterOverrideError, ReferenceStore
from reference.build import SOURCES_PATH, service_fiscal_years

MEMBER = {"MemberID": "A", "DOB": "1950-01-01", "Gender": "F", "RAType": "CN", "Hospice": "N",
          "LTIMCAID": "N", "NEMCAID": "N", "OREC": "0"}


@pytest.fixture(scope="module")
def store() -> ReferenceStore:
    return ReferenceStore(parameter_overrides=None)


def reasons(store, year: int, rows: list[tuple[str, str]], member=MEMBER) -> tuple[dict, object]:
    diagnoses = pl.DataFrame(
        [{"MemberID": member["MemberID"], "FromDOS": day, "ThruDOS": day, "DxCode": code}
         for code, day in rows]
    )
    result = score_batch(pl.DataFrame([member]), diagnoses, year, store, detail=True)
    dropped = {
        (r["DxCode"], r["ThruDOS"]): r["reason"] for r in result.trail["dropped_dx"].iter_rows(named=True)
    }
    return {row: dropped.get(row, "used") for row in rows}, result


def test_sources_toml_declares_the_bundled_years(store):
    sources = tomllib.loads(SOURCES_PATH.read_text())
    assert sorted(int(y) for y in sources["year"]) == list(store.supported_years)
    assert store.supported_years == (2024, 2025, 2026, 2027)
    for year, spec in sources["year"].items():
        assert store.year(int(year)).models_of_year == spec["models"]
    for model_id, spec in sources["model"].items():
        identity = store.identity(model_id)
        assert (identity.label, identity.family) == (spec["label"], spec["family"])


def test_fiscal_year_boundaries_py2025(store):
    got, result = reasons(store, 2025, [
        ("G35.A", "2024-05-01"),   # valid from 2025-10-01 only
        ("C86.00", "2024-11-01"),  # FY2025: valid
        ("C86.00", "2024-03-01"),  # FY2024: not yet
        ("C86.0", "2024-03-01"),   # FY2024: still billable
        ("C86.0", "2024-11-01"),   # FY2025: a header now
        ("I10", "2024-05-01"),
        ("XYZ123", "2024-05-01"),
    ])
    assert got == {
        ("G35.A", "2024-05-01"): "invalid_on_service_date",
        ("C86.00", "2024-11-01"): "used",
        ("C86.00", "2024-03-01"): "invalid_on_service_date",
        ("C86.0", "2024-03-01"): "used",
        ("C86.0", "2024-11-01"): "invalid_on_service_date",
        ("I10", "2024-05-01"): "no_hcc",
        ("XYZ123", "2024-05-01"): "unknown_code",
    }
    assert result.dx_summary["invalid_on_service_date"] == 3
    hccs = result.trail["hccs"].filter(pl.col("model") == "V28")
    assert sorted(hccs["dx_codes"].to_list()[0]) == ["C860", "C8600"]


def test_fiscal_year_boundaries_py2026(store):
    got, _ = reasons(store, 2026, [("G35.A", "2025-09-30"), ("G35.A", "2025-10-01"),
                                   ("G35", "2025-09-30"), ("G35", "2025-10-01")])
    assert got == {
        ("G35.A", "2025-09-30"): "invalid_on_service_date",
        ("G35.A", "2025-10-01"): "used",
        ("G35", "2025-09-30"): "used",
        ("G35", "2025-10-01"): "invalid_on_service_date",
    }


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027])
def test_each_years_mapping_holds_only_codes_valid_on_its_dates(store, year):
    codes = pl.read_csv(store.data_dir / "icd10cm/codes.csv",
                        schema={"code": pl.Utf8, "first_fy": pl.Int16, "last_fy": pl.Int16})
    low, high = service_fiscal_years(year)
    for model_id, mapping in store.year(year).mapping.items():
        table = mapping.select(pl.col("icd10").alias("code")).unique().join(codes, on="code", how="left")
        assert table["code"].is_in(codes["code"].implode()).all(), model_id
        outside = table.filter((pl.col("first_fy") > high) | (pl.col("last_fy") < low))
        assert outside.height == 0, (year, model_id, outside)


def test_py2025_mapping_lost_exactly_the_fy2026_codes(store):
    import json

    removed = json.loads((store.data_dir / "crosscheck.json").read_text())["mappings"][
        "codes_not_valid_on_the_years_dates"]
    assert {k: len(v) for k, v in removed.items() if v} == {
        "PY2025/cms_hcc_v28": 134, "PY2025/cms_hcc_v24": 143, "PY2025/esrd_v24": 143,
        "PY2027/cms_hcc_v28": 3, "PY2027/esrd_v24": 3,
    }
    assert {"G35A", "C50A0", "D711"} <= set(removed["PY2025/cms_hcc_v28"])
    assert removed["PY2027/cms_hcc_v28"] == ["D71", "E7253", "G35"]


# ------------------------------------------------------------------ overrides

ESRD_MEMBER = {"MemberID": "E1", "DOB": "1950-03-03", "Gender": "F", "RAType": "D1",
               "Hospice": "N", "LTIMCAID": "N", "NEMCAID": "N", "OREC": "2"}
HEADER = "payment_year,parameter,model,value,source,status\n"


def overrides(tmp_path, *lines: str, header: str = HEADER):
    path = tmp_path / "overrides.csv"
    path.write_text(header + "".join(line + "\n" for line in lines))
    return path


def test_override_supplies_the_missing_py2025_dialysis_factor(tmp_path, store):
    path = overrides(tmp_path, "2025,normalization_factor,ESRD_V24_dialysis,1.044,"
                     "CMS CY2025 Rate Announcement table (operator copy),")
    with_op = ReferenceStore(parameter_overrides=path)
    plain = score_batch(pl.DataFrame([ESRD_MEMBER]), pl.DataFrame(schema={"MemberID": pl.String}),
                        2025, store)
    assert plain.rows["Active_Score"].to_list() == [0]
    result = score_batch(pl.DataFrame([ESRD_MEMBER]), pl.DataFrame(schema={"MemberID": pl.String}),
                         2025, with_op)
    assert result.errors.is_empty() and result.warnings == []
    raw, active = result.rows.to_dicts()
    assert raw["Active_Score"] == 0 and active["Active_Score"] == 1
    from decimal import ROUND_HALF_UP, Decimal
    expected = (Decimal(str(raw["RAF_Total"])) / Decimal("1.044") * Decimal("0.941")).quantize(
        Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert Decimal(str(active["RAF_Total"])) == expected
    caveats = {c["model"]: c for c in result.reference["parameter_caveats"]}
    assert caveats["ESRD_V24_dialysis"]["status"] == "operator"
    assert caveats["ESRD_V24_dialysis"]["value"] == "1.044"
    assert caveats["ESRD_V24_dialysis"]["source"].startswith("operator: CMS CY2025")
    assert caveats["ESRD_V24_graft"]["status"] == "missing"
    # the answer is a different release: caches keyed by release id never mix them
    assert with_op.year(2025).release_id != store.year(2025).release_id
    assert with_op.year(2025).sha256 != store.year(2025).sha256
    assert with_op.year(2024).release_id == store.year(2024).release_id


def test_override_of_a_corroborated_value_is_refused_unless_forced(tmp_path):
    path = overrides(tmp_path, "2025,normalization_factor,V28,1.046,my figure,")
    with pytest.raises(ParameterOverrideError, match="corroborated.*refused unless"):
        ReferenceStore(parameter_overrides=path)
    forced = overrides(tmp_path, "2025,normalization_factor,V28,1.046,my figure,,yes",
                       header="payment_year,parameter,model,value,source,status,force\n")
    store = ReferenceStore(parameter_overrides=forced)
    tables = store.year(2025)
    assert tables.parameters.normalization_milli("V28") == 1046
    assert tables.warnings and "replaces the corroborated value 1.045 (forced)" in tables.warnings[0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2025,normalization_factor,ESRD_V24_dialysis,1.044,,", "source is required"),
        ("2025,normalization_factor,ESRD_V24_dialysys,1.044,x,", "no parameter"),
        ("2031,normalization_factor,ESRD_V24_dialysis,1.044,x,", "not supported"),
        ("2025,normalization_factor,ESRD_V24_dialysis,abc,x,", "not a decimal"),
        ("2025,normalization_factor,ESRD_V24_dialysis,1.0444444,x,", "six decimals"),
    ],
)
def test_bad_override_rows_are_refused_naming_the_line(tmp_path, line, message):
    with pytest.raises(ParameterOverrideError, match=message) as info:
        ReferenceStore(parameter_overrides=overrides(tmp_path, line))
    assert "line 2" in str(info.value)


def test_overrides_file_is_read_from_the_environment(tmp_path, monkeypatch):
    path = overrides(tmp_path, "2025,normalization_factor,ESRD_V24_graft,1.05,operator,")
    monkeypatch.setenv("RAF_PARAMETER_OVERRIDES", str(path))
    assert ReferenceStore().year(2025).parameters.normalization_milli("esrd_v24", "graft") == 1050
