"""engine.blend against the seed's active rows and an exact Fraction reference.

Seed: app/examples/seed_response.json; rule: docs/scoring.md
"The active (blended) row".
"""

from __future__ import annotations

from fractions import Fraction

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.blend import (
    BUCKETS,
    BlendParameters,
    blend,
    round_half_away_from_zero,
    to_millionths,
)

PY2025 = BlendParameters.from_decimals(
    2025,
    ["V28", "V24"],
    weights={"V28": "0.67", "V24": "0.33"},
    factors={"V28": "1.045", "V24": "1.153", "ESRD_V24_dialysis": None, "ESRD_V24_graft": None},
    coding_adjustment="0.059",
)
PY2024 = BlendParameters.from_decimals(
    2024,
    ["V28", "V24"],
    weights={"V28": "0.33", "V24": "0.67"},
    factors={"V28": "1.015", "V24": "1.146", "ESRD_V24_dialysis": "1.022", "ESRD_V24_graft": "1.028"},
    coding_adjustment="0.059",
)
PY2026 = BlendParameters.from_decimals(
    2026,
    ["V28"],
    weights={"V28": "1"},
    factors={"V28": "1.067", "ESRD_V24_dialysis": "1.062", "ESRD_V24_graft": "1.104"},
    coding_adjustment="0.059",
)


def raw_frame(rows: list[tuple[int, str, dict[str, int]]]) -> pl.DataFrame:
    """Raw rows (input_index, model, {bucket: milli}); unnamed buckets are 0, total = sum."""
    records = []
    for input_index, model, buckets in rows:
        record = {"input_index": input_index, "MemberID": f"M{input_index}", "model": model}
        record.update({b: buckets.get(b, 0) for b in BUCKETS if b != "total"})
        record["total"] = buckets.get("total", sum(buckets.values()))
        records.append(record)
    schema = {"input_index": pl.UInt32, "MemberID": pl.String, "model": pl.String}
    schema.update({b: pl.Int64 for b in BUCKETS})
    return pl.DataFrame(records, schema=schema)


def members_frame(groups: dict[int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"input_index": list(groups), "normalization_group": list(groups.values())},
        schema={"input_index": pl.UInt32, "normalization_group": pl.String},
    )


SEED_RAW = raw_frame(
    [
        (0, "V28", {"demographic": 261, "disease": 348}),
        (0, "V24", {"demographic": 282, "disease": 275}),
        (1, "V28", {"demographic": 624}),
        (1, "V24", {"demographic": 641}),
    ]
)


def test_seed_active_rows_to_the_last_digit() -> None:
    result = blend(SEED_RAW, members_frame({0: "cms_hcc", 1: "cms_hcc"}), PY2025)
    assert result.errors.is_empty()
    active = {row["input_index"]: row for row in result.active.to_dicts()}
    assert active[0]["demographic"] == 233_416
    assert active[0]["disease"] == 284_020
    assert active[0]["total"] == 517_435  # not 233_416 + 284_020
    assert active[1]["demographic"] == 549_109
    assert active[1]["total"] == 549_109
    assert active[0]["models"] == ["V28", "V24"]


def unrounded_blend_micro(raw: dict[str, int], params: BlendParameters) -> int:
    """The tempting wrong formula: blend exact values, round once at the end."""
    coding = Fraction(params.coding_e6, 1_000_000)
    value = sum(
        Fraction(params.weight_e6[m], 1_000_000)
        * Fraction(raw[m], 1000)
        / Fraction(params.factor_e6[m], 1_000_000)
        * (1 - coding)
        for m in raw
    )
    return round(value * 1_000_000)


def test_blending_unrounded_values_misses_the_seed() -> None:
    """Formula A gives 0.549108 for the second seed member; the seed says 0.549109."""
    assert unrounded_blend_micro({"V28": 624, "V24": 641}, PY2025) == 549_108
    result = blend(SEED_RAW, members_frame({0: "cms_hcc", 1: "cms_hcc"}), PY2025)
    assert result.active.filter(pl.col("input_index") == 1)["total"].item() != 549_108


def test_round_half_away_from_zero_on_negatives_and_ties() -> None:
    frame = pl.DataFrame({"n": [5, -5, 7, -7, 4, -4, 0, 15, -15]}, schema={"n": pl.Int64})
    out = frame.select(q=round_half_away_from_zero(pl.col("n"), 2))["q"].to_list()
    assert out == [3, -3, 4, -4, 2, -2, 0, 8, -8]
    out10 = frame.select(q=round_half_away_from_zero(pl.col("n"), 10))["q"].to_list()
    assert out10 == [1, -1, 1, -1, 0, 0, 0, 2, -2]


def test_negative_esrd_component_rounds_away_from_zero() -> None:
    # -0.170 / 1.022 * 0.941 = -0.156526418... -> -0.156526 ; weight 1 for ESRD
    raw = raw_frame([(0, "ESRD_V24", {"demographic": 500, "demographic_interaction": -170})])
    result = blend(raw, members_frame({0: "dialysis"}), PY2024)
    row = result.active.to_dicts()[0]
    assert row["demographic_interaction"] == -156_526
    assert row["demographic"] == 460_372  # 0.5/1.022*0.941 = 0.46037181...
    assert row["total"] == 303_845  # 0.330/1.022*0.941 = 0.30384540...
    assert row["models"] == ["ESRD_V24"]


def test_esrd_graft_member_uses_the_graft_factor() -> None:
    raw = raw_frame([(0, "ESRD_V24", {"demographic": 1028})])
    result = blend(raw, members_frame({0: "graft"}), PY2024)
    assert result.active["total"].item() == 941_000  # 1.028 / 1.028 * 0.941


def test_esrd_member_without_published_factor_gets_a_warning_not_an_active_row() -> None:
    raw = raw_frame([(0, "V28", {"demographic": 624}), (0, "V24", {"demographic": 641}),
                     (1, "ESRD_V24", {"demographic": 900})])
    result = blend(raw, members_frame({0: "cms_hcc", 1: "dialysis"}), PY2025)
    assert result.active["input_index"].to_list() == [0]
    assert result.errors.is_empty()
    warnings = result.warnings.to_dicts()
    assert len(warnings) == 1
    assert warnings[0]["input_index"] == 1 and warnings[0]["code"] == "active_row_missing_parameter"
    assert warnings[0]["message"].startswith(
        "normalization_factor ESRD_V24_dialysis for PY2025 is not published in our reference "
        "data (never guessed): the raw row is scored, the active row is left out"
    )


def test_py2024_weights_are_reversed() -> None:
    # 0.67 * round6(0.641/1.146*0.941) + 0.33 * round6(0.624/1.015*0.941)
    raw = raw_frame([(0, "V28", {"demographic": 624}), (0, "V24", {"demographic": 641})])
    total = blend(raw, members_frame({0: "cms_hcc"}), PY2024).active["total"].item()
    v24 = round(Fraction(641 * 941_000, 1146))  # 526_331.58.. -> 526_332
    v28 = round(Fraction(624 * 941_000, 1015))
    assert total == round(Fraction(67 * v24 + 33 * v28, 100))


def test_py2026_is_v28_only() -> None:
    raw = raw_frame([(0, "V28", {"demographic": 624})])
    result = blend(raw, members_frame({0: "cms_hcc"}), PY2026)
    assert result.active["total"].item() == 550_313  # 0.624/1.067*0.941 = 0.55031302...
    assert result.active["models"].to_list() == [["V28"]]


def test_missing_coding_adjustment_errors_every_member() -> None:
    params = BlendParameters.from_decimals(2025, ["V28", "V24"], {"V28": "0.67", "V24": "0.33"},
                                           {"V28": "1.045", "V24": "1.153"}, None)
    result = blend(SEED_RAW, members_frame({0: "cms_hcc", 1: "cms_hcc"}), params)
    assert result.active.is_empty()
    assert result.errors["input_index"].to_list() == [0, 1]
    assert result.errors["message"][0].startswith("coding_adjustment ALL for PY2025 is not published")


def test_parameters_must_be_exact_in_millionths() -> None:
    assert to_millionths("1.045", "x") == 1_045_000
    assert to_millionths(0.67, "x") == 670_000
    assert to_millionths("0.6700", "x") == 670_000
    with pytest.raises(ValueError, match="more than six decimals"):
        to_millionths("1.0000001", "x")


def test_parameters_from_parameter_rows() -> None:
    rows = pl.DataFrame(
        {
            "payment_year": ["2025", "2025", "2025", "2025", "2025", "2024"],
            "parameter": ["blend_weight", "blend_weight", "normalization_factor",
                          "normalization_factor", "coding_adjustment", "coding_adjustment"],
            "model": ["V28", "V24", "V28", "ESRD_V24_dialysis", "ALL", "ALL"],
            "value": ["0.67", "0.33", "1.045", "", "0.059", "0.5"],
        }
    )
    params = BlendParameters.from_parameter_rows(2025, ["V28", "V24"], rows)
    assert params.weight_e6 == {"V28": 670_000, "V24": 330_000}
    assert params.factor_e6 == {"V28": 1_045_000, "ESRD_V24_dialysis": None}
    assert params.coding_e6 == 59_000


def exact_active_micro(raws: dict[str, int], params: BlendParameters) -> int:
    """Reference implementation in Fractions with Python's half-away rounding."""

    def round_half_away(x: Fraction) -> int:
        magnitude = (abs(x) * 2 + 1) // 2
        return int(magnitude) if x >= 0 else -int(magnitude)

    coding = Fraction(params.coding_e6, 1_000_000)
    adjusted = {
        m: round_half_away(Fraction(r, 1000) / Fraction(params.factor_e6[m], 1_000_000)
                           * (1 - coding) * 1_000_000)
        for m, r in raws.items()
    }
    return round_half_away(sum(Fraction(params.weight_e6[m], 1_000_000) * a
                               for m, a in adjusted.items()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-3_000, 20_000), st.integers(-3_000, 20_000)),
                min_size=1, max_size=20))
def test_blend_equals_exact_fraction_arithmetic(pairs: list[tuple[int, int]]) -> None:
    rows = []
    for i, (v28, v24) in enumerate(pairs):
        rows += [(i, "V28", {"disease": v28, "total": v28}), (i, "V24", {"disease": v24, "total": v24})]
    result = blend(raw_frame(rows), members_frame({i: "cms_hcc" for i in range(len(pairs))}), PY2025)
    got = result.active.sort("input_index")["total"].to_list()
    assert got == [exact_active_micro({"V28": a, "V24": b}, PY2025) for a, b in pairs]
