"""`?detail=true` audit trail (issue 22): each raw row's `Variables` add up to its buckets,
dropped HCCs name their codes, and the active row shows the blend's steps.

The populations are the parity tests' generated ones (5k CMS-HCC members per
payment year, the ESRD population for PY2026: graft new enrollees' ActAdj
division included); every row is checked in one polars query, not member by member.
"""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.rows import BUCKET_FIELDS
from engine.run import score_batch
from reference.store import ReferenceStore
from tests.parity.conftest import cms_population, esrd_population

PARAMETERS = Path(__file__).resolve().parents[2] / "reference" / "data" / "parameters.csv"
RAW_FIELDS = [f for b, f in BUCKET_FIELDS.items() if b != "total"]


@pytest.fixture(scope="module")
def store() -> ReferenceStore:
    return ReferenceStore()


def _lines_sum_to_buckets(rows: pl.DataFrame) -> None:
    raw = rows.filter(pl.col("Active_Score") == 0)
    assert raw.height and raw.get_column("Variables").null_count() == 0
    lines = (
        raw.select("input_index", "Clinical_Version", "Variables")
        .explode("Variables")
        .unnest("Variables")
        .filter(pl.col("Name").is_not_null())
    )
    assert set(lines.get_column("Bucket").unique()) <= set(RAW_FIELDS)
    sums = (
        lines.group_by("input_index", "Clinical_Version")
        .agg(
            (pl.col("Coefficient").filter(pl.col("Bucket") == f) * 1000).round(0).sum().alias(f)
            for f in RAW_FIELDS
        )
    )
    expected = raw.select(
        "input_index", "Clinical_Version",
        *[(pl.col(f) * 1000).round(0).alias(f) for f in RAW_FIELDS],
        (pl.col("RAF_Total") * 1000).round(0).alias("total"),
    )
    joined = expected.join(sums, on=["input_index", "Clinical_Version"], how="left", suffix="_lines")
    for f in RAW_FIELDS:
        bad = joined.filter(pl.col(f) != pl.col(f"{f}_lines").fill_null(0))
        assert bad.is_empty(), (f, bad.head(3))
    # the six buckets add up to the total, so the lines do too
    total = joined.select(pl.sum_horizontal(*[f"{f}_lines" for f in RAW_FIELDS]).fill_null(0) - pl.col("total"))
    assert (total.to_series() == 0).all()


@pytest.mark.parametrize("payment_year", [2024, 2025, 2026, 2027])
def test_variables_sum_to_buckets_on_every_row(store, payment_year):
    population = cms_population(payment_year)
    assert population.members.height == 5000
    result = score_batch(population.members, population.diagnoses, payment_year, store, detail=True)
    _lines_sum_to_buckets(result.rows)
    # the demographic cell leads every raw row's lines, with its coefficient
    first = result.rows.filter(pl.col("Active_Score") == 0).select(
        pl.col("Variables").list.first().struct.field("Name"),
        pl.col("RA_Variable").str.split(", ").list.first(),
    )
    assert (first.to_series(0) == first.to_series(1)).all()

    dropped = (
        result.rows.filter(pl.col("Active_Score") == 0)
        .select(pl.col("Hierarchy_Dropped").explode())
        .unnest("Hierarchy_Dropped")
        .drop_nulls("HCC")
    )
    assert dropped.height
    assert dropped.get_column("DxCodes").list.len().min() >= 1  # every dropped HCC names its codes
    assert dropped.filter(pl.col("Rule") == "hierarchy").get_column("Dropped_By").null_count() == 0


def test_esrd_variables_sum_to_buckets_including_actadj(store):
    population = esrd_population(2026)
    result = score_batch(population.members, population.diagnoses, 2026, store, detail=True)
    _lines_sum_to_buckets(result.rows)
    actadj = (
        result.rows.filter(pl.col("RA_Variable").str.contains("ActAdj_"))
        .select(pl.col("Variables").explode())
        .unnest("Variables")
        .filter(pl.col("Name").str.starts_with("ActAdj_"))
    )
    assert actadj.height  # the divisor is a line of its own


def _parameters(year: int) -> dict[tuple[str, str], dict[str, str]]:
    with PARAMETERS.open(newline="") as handle:
        return {
            (row["parameter"], row["model"]): row
            for row in csv.DictReader(handle)
            if row["payment_year"] == str(year)
        }


def _round6(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def test_seed_member_active_row_shows_each_blend_step(client, seed_request):
    body = client.post("/v1/risk-scores?detail=true", json=seed_request).json()
    active = next(
        r for r in body["results"] if r["Member_Id"] == "M00913" and r["Active_Score"] == 1
    )
    raw = {
        r["Clinical_Version"]: Decimal(str(r["RAF_Total"]))
        for r in body["results"] if r["Member_Id"] == "M00913" and r["Active_Score"] == 0
    }
    assert raw == {"V28": Decimal("0.624"), "V24": Decimal("0.641")}
    params = _parameters(2025)
    coding = Decimal(params[("coding_adjustment", "ALL")]["value"])
    blend = active["Blend"]
    assert [m["Model"] for m in blend["Models"]] == ["V28", "V24"]
    adjusted = {}
    for model in blend["Models"]:
        name = model["Model"]
        factor = params[("normalization_factor", name)]
        weight = params[("blend_weight", name)]
        for shown, row in (
            (model["Normalization_Factor"], factor),
            (model["Weight"], weight),
            (model["Coding_Adjustment"], params[("coding_adjustment", "ALL")]),
        ):
            assert Decimal(shown["value"]) == Decimal(row["value"])
            assert (shown["status"], shown["source"]) == (row["status"], row["source"])
        adjusted[name] = _round6(raw[name] / Decimal(factor["value"]) * (1 - coding))
        assert Decimal(str(model["Adjusted"]["RAF_Total"])) == adjusted[name]
        assert Decimal(str(model["Raw"]["RAF_Total"])) == raw[name]
        assert model["Formula"] == (
            f"{raw[name]} / {Decimal(factor['value'])} × {1 - coding} → {adjusted[name]}"
        )
    assert adjusted == {"V28": Decimal("0.561899"), "V24": Decimal("0.523141")}
    weights = {m: Decimal(params[("blend_weight", m)]["value"]) for m in adjusted}
    blended = _round6(sum(weights[m] * adjusted[m] for m in adjusted))
    assert blended == Decimal("0.549109") == Decimal(str(active["RAF_Total"]))
    assert blend["Formula"] == "0.67 × 0.561899 + 0.33 × 0.523141 → 0.549109"
    assert "round6" in blend["Rule"]


def test_detail_off_has_no_trail_fields(client, seed_request):
    body = client.post("/v1/risk-scores", json=seed_request).json()
    for row in body["results"]:
        assert "Variables" not in row and "Blend" not in row
