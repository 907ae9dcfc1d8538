"""engine.rows: the seed's row order and texts, exact floats, ESRD hook."""

from __future__ import annotations

import polars as pl

from engine.blend import BUCKETS, BlendParameters, blend
from engine.rows import (
    MEMBER_FIELDS,
    model_texts,
    ROW_FIELDS,
    build_rows,
    scaled_to_float,
    weight_percent,
)
from tests.blend.test_blend import PY2024, PY2025, PY2026, members_frame, raw_frame


def members(groups: dict[int, str]) -> pl.DataFrame:
    frame = members_frame(groups)
    return frame.with_columns(
        MemberID=pl.format("M{}", "input_index"),
        **{field: pl.lit("x") for field in MEMBER_FIELDS},
        warnings=pl.lit([], dtype=pl.List(pl.String)),
    ).with_columns(Age=pl.lit(70, pl.Int16))


def with_ra_variable(raw: pl.DataFrame, variables: dict[tuple[int, str], str]) -> pl.DataFrame:
    keys = pl.DataFrame(
        {"input_index": [k[0] for k in variables], "model": [k[1] for k in variables],
         "ra_variable": list(variables.values())},
        schema={"input_index": pl.UInt32, "model": pl.String, "ra_variable": pl.String},
    )
    return raw.join(keys, on=["input_index", "model"], how="left")


def rows_for(raw: pl.DataFrame, groups: dict[int, str], params: BlendParameters) -> pl.DataFrame:
    member_frame = members(groups)
    blended = blend(raw, member_frame, params)
    return build_rows(member_frame, raw, blended.active, params)


def test_seed_order_and_texts_py2025() -> None:
    raw = with_ra_variable(
        raw_frame([(1, "V24", {"demographic": 641}), (1, "V28", {"demographic": 624}),
                   (0, "V28", {"demographic": 261, "disease": 348}),
                   (0, "V24", {"demographic": 282, "disease": 275})]),
        {(0, "V28"): "CPD_M35_44, HCC137", (0, "V24"): "CPD_M35_44, HCC55",
         (1, "V28"): "CNA_F85_89", (1, "V24"): "CNA_F85_89"},
    )
    rows = rows_for(raw, {0: "cms_hcc", 1: "cms_hcc"}, PY2025)
    assert rows.columns == ["input_index", *ROW_FIELDS, "Warnings"]
    assert rows["input_index"].to_list() == [0, 0, 0, 1, 1, 1]
    assert rows["Clinical_Version"].to_list() == ["V28", "V24", "V28 / V24"] * 2
    assert rows["Active_Score"].to_list() == [0, 0, 1] * 2
    active = rows.filter(pl.col("Active_Score") == 1).to_dicts()
    assert active[0]["Model"] == (
        "67.0000% of HCC Model-Regular V28 / 33.0000% of HCC Model-Regular V24"
    )
    assert active[0]["RA_Variable"] == "V24 ( CPD_M35_44, HCC55 ) and V28 ( CPD_M35_44, HCC137 )"
    assert active[1]["RA_Variable"] == "V24 ( CNA_F85_89 ) and V28 ( CNA_F85_89 )"
    assert (active[0]["RAF_Demographic"], active[0]["RAF_Disease"], active[0]["RAF_Total"]) == (
        0.233416, 0.28402, 0.517435)
    assert rows["RAF_Total"].to_list()[:2] == [0.609, 0.557]
    assert rows["Payment_Year"].unique().to_list() == [2025]


def test_py2024_model_text_keeps_v28_first() -> None:
    raw = with_ra_variable(raw_frame([(0, "V28", {"demographic": 624}),
                                      (0, "V24", {"demographic": 641})]),
                           {(0, "V28"): "CNA_F85_89", (0, "V24"): "CNA_F85_89"})
    active = rows_for(raw, {0: "cms_hcc"}, PY2024).filter(pl.col("Active_Score") == 1).row(0, named=True)
    assert active["Model"] == "33.0000% of HCC Model-Regular V28 / 67.0000% of HCC Model-Regular V24"


def test_py2026_single_model_texts() -> None:
    raw = with_ra_variable(raw_frame([(0, "V28", {"demographic": 624})]), {(0, "V28"): "CNA_F85_89"})
    rows = rows_for(raw, {0: "cms_hcc"}, PY2026)
    assert rows["Clinical_Version"].to_list() == ["V28", "V28"]
    active = rows.row(1, named=True)
    assert active["Model"] == "100.0000% of HCC Model-Regular V28"
    assert active["RA_Variable"] == "V28 ( CNA_F85_89 )"


def test_esrd_member_rows_use_the_esrd_text_table() -> None:
    raw = with_ra_variable(raw_frame([(0, "ESRD_V24", {"demographic": 500})]),
                           {(0, "ESRD_V24"): "DI_F65_69"})
    rows = rows_for(raw, {0: "dialysis"}, PY2024)
    esrd = model_texts(PY2024)["ESRD_V24"]
    assert rows["Model"].to_list() == [esrd.model, f"100.0000% of {esrd.model} {esrd.clinical_version}"]
    assert rows["Clinical_Version"].to_list() == [esrd.clinical_version] * 2
    assert rows["RA_Variable"][1] == f"{esrd.clinical_version} ( DI_F65_69 )"


def test_member_without_a_published_factor_gets_its_raw_row_only() -> None:
    raw = with_ra_variable(raw_frame([(0, "ESRD_V24", {"demographic": 500}),
                                      (1, "V28", {"demographic": 1}), (1, "V24", {"demographic": 1})]),
                           {(0, "ESRD_V24"): "DI_F65_69", (1, "V28"): "a", (1, "V24"): "b"})
    rows = rows_for(raw, {0: "dialysis", 1: "cms_hcc"}, PY2025)  # no PY2025 ESRD factor
    assert rows.filter(pl.col("input_index") == 0)["Active_Score"].to_list() == [0]
    assert rows.filter(pl.col("input_index") == 1)["Active_Score"].to_list() == [0, 0, 1]


def test_weight_percent_has_four_decimals() -> None:
    frame = pl.DataFrame({"w": [670_000, 1_000_000, 333_333, 5]})
    assert frame.select(weight_percent(pl.col("w")).alias("w"))["w"].to_list() == [
        "67.0000%", "100.0000%", "33.3333%", "0.0005%"]


def test_scaled_to_float_prints_like_the_decimal() -> None:
    frame = pl.DataFrame({"v": [348, 282, 609, -5, 0, 1_234, -170]})
    out = frame.select(scaled_to_float(pl.col("v"), 3).alias("v"))["v"].to_list()
    assert [repr(x) for x in out] == ["0.348", "0.282", "0.609", "-0.005", "0.0", "1.234", "-0.17"]
    micro = pl.DataFrame({"v": [233_416, 549_109, 28_402_000]})
    assert micro.select(scaled_to_float(pl.col("v"), 6).alias("v"))["v"].to_list() == [0.233416, 0.549109, 28.402]
    assert len(BUCKETS) == 7
