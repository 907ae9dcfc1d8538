"""The active (blended) row: normalization, MA coding adjustment, blend weights.

Rule: `../shared/spec/scoring.md` "The active (blended) row", checked against the
seed (`../shared/seeds/002_b326aa90cf1b7c66.txt`). For each model m of the member
and each of the six `RAF_*` buckets and the total, separately:

    adjusted[m][c] = round6(raw[m][c] / normalization[m] * (1 - coding_adjustment))
    active[c]      = round6(sum over m of weight[m] * adjusted[m][c])

Rounding each model's adjusted value to six decimals *before* blending is what
reproduces the seed (V28 0.624, V24 0.641 -> 0.549109; blending unrounded values
gives 0.549108). The total is blended from the raw totals, not summed from the
blended buckets (0.233416 + 0.28402 != 0.517435).

Exact integer arithmetic (no binary floats). Raw values arrive as Int64
thousandths (`raw_milli`); the year's parameters are decimals converted to
integers in millionths (`PARAMETER_SCALE`): `factor_e6` = 1_045_000 for 1.045,
`coding_e6` = 59_000 for 0.059, `weight_e6` = 670_000 for 0.67. Then

    adjusted_micro = round(raw_milli * (PARAMETER_SCALE - coding_e6) * 1000 / factor_e6)
    active_micro   = round(sum(weight_e6 * adjusted_micro) / PARAMETER_SCALE)

where `round` is integer round-half-away-from-zero (ESRD and some interaction
terms can be negative). Both numerators stay below 2**63 for any raw score
under 9_000 (in thousandths: 9_000_000), far above any real score.

Which factor: CMS-HCC models use their own factor (`V24`, `V28`); the ESRD
model (`ESRD_V24`) uses the factor of the member's `normalization_group`
(`ESRD_V24_dialysis` or `ESRD_V24_graft`, see `ratype.md`), with weight 1
(ESRD members are not blended). A factor or weight the reference data marks
missing for the year makes that member a member error naming the parameter,
never a default (`scoring.md`: "A value that is missing must not be guessed").
The coding adjustment is applied to ESRD scores too, as hccpy and
pfehlinger/risk_adjustment_model do (`research/cms_parameters.md` 4.3: no CMS
text found either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from engine.buckets import BUCKETS as RAW_BUCKETS

PARAMETER_SCALE = 1_000_000
"""Parameters (weights, factors, coding adjustment) are integers in millionths."""

MICRO_PER_MILLI = 1_000

BUCKETS: tuple[str, ...] = (*RAW_BUCKETS, "total")
"""The six `RAF_*` buckets and the total, as Int64 columns of the raw rows."""

ESRD_MODEL = "ESRD_V24"
CMS_HCC_MODELS = ("V28", "V24")

MEMBER_ERROR_SCHEMA = {
    "MemberID": pl.String,
    "input_index": pl.UInt32,
    "field": pl.String,
    "message": pl.String,
}


def to_millionths(value: Any, what: str) -> int:
    """Exact integer millionths of a decimal value ("1.045" -> 1_045_000).

    Accepts str, int, Decimal or float (floats through their shortest repr,
    "0.67" for 0.67). Raises ValueError when the value has more than six
    decimals: blending it exactly would need a finer scale.
    """
    try:
        decimal = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise ValueError(f"{what}: {value!r} is not a decimal number") from exc
    scaled = decimal * PARAMETER_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{what}: {value!r} has more than six decimals")
    return int(scaled)


@dataclass(frozen=True)
class BlendParameters:
    """The payment year's blend parameters, as exact millionths.

    `weight_e6` is keyed by model (`V28`, `V24`, `ESRD_V24`); `factor_e6` by
    normalization key (`V28`, `V24`, `ESRD_V24_dialysis`, `ESRD_V24_graft`).
    A key that is absent or maps to None is a parameter the reference data
    does not publish for the year. `models` lists the year's CMS-HCC models,
    V28 first, as the response rows order them.
    """

    payment_year: int
    models: tuple[str, ...]
    weight_e6: Mapping[str, int | None]
    factor_e6: Mapping[str, int | None]
    coding_e6: int | None
    sources: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_decimals(
        cls,
        payment_year: int,
        models: Iterable[str],
        weights: Mapping[str, Any],
        factors: Mapping[str, Any],
        coding_adjustment: Any,
    ) -> BlendParameters:
        """Build from decimal values (str/Decimal/float; None = not published)."""

        def scaled(kind: str, values: Mapping[str, Any]) -> dict[str, int | None]:
            return {
                key: None if value in (None, "") else to_millionths(value, f"{kind} {key}")
                for key, value in values.items()
            }

        return cls(
            payment_year=payment_year,
            models=tuple(models),
            weight_e6=scaled("blend_weight", weights),
            factor_e6=scaled("normalization_factor", factors),
            coding_e6=None
            if coding_adjustment in (None, "")
            else to_millionths(coding_adjustment, "coding_adjustment"),
        )

    @classmethod
    def from_parameter_rows(
        cls, payment_year: int, models: Iterable[str], rows: pl.DataFrame
    ) -> BlendParameters:
        """Build from rows shaped like `reference/data/parameters.csv`.

        Columns `payment_year, parameter, model, value` (`status` optional:
        `missing` rows have an empty value and stay None).
        """
        year_rows = rows.filter(pl.col("payment_year").cast(pl.Int64) == payment_year)
        weights: dict[str, Any] = {}
        factors: dict[str, Any] = {}
        coding: Any = None
        for row in year_rows.iter_rows(named=True):
            value = row.get("value")
            if row["parameter"] == "blend_weight":
                weights[row["model"]] = value
            elif row["parameter"] == "normalization_factor":
                factors[row["model"]] = value
            elif row["parameter"] == "coding_adjustment":
                coding = value
        return cls.from_decimals(payment_year, models, weights, factors, coding)

    def model_weights(self) -> pl.DataFrame:
        """One row per model: `model`, `weight_e6` (ESRD weight is 1, not blended)."""
        weights = {m: self.weight_e6.get(m) for m in self.models}
        weights[ESRD_MODEL] = PARAMETER_SCALE
        return pl.DataFrame(
            {"model": list(weights), "weight_e6": list(weights.values())},
            schema={"model": pl.String, "weight_e6": pl.Int64},
        )

    def normalization_factors(self) -> pl.DataFrame:
        """One row per normalization key the engine can ask for: `normalization_key`, `factor_e6`."""
        keys = [*self.models, f"{ESRD_MODEL}_dialysis", f"{ESRD_MODEL}_graft"]
        return pl.DataFrame(
            {"normalization_key": keys, "factor_e6": [self.factor_e6.get(k) for k in keys]},
            schema={"normalization_key": pl.String, "factor_e6": pl.Int64},
        )


def round_half_away_from_zero(numerator: pl.Expr, denominator: pl.Expr | int) -> pl.Expr:
    """Integer quotient rounded half away from zero; `denominator` must be > 0.

    sign(n) * floor((2|n| + d) / 2d): 5/2 -> 3, -5/2 -> -3, 7/3 -> 2.
    """
    d = denominator if isinstance(denominator, pl.Expr) else pl.lit(denominator, pl.Int64)
    magnitude = (numerator.abs() * 2 + d) // (d * 2)
    return pl.when(numerator < 0).then(-magnitude).otherwise(magnitude)


def adjusted_micro(raw_milli: pl.Expr, factor_e6: pl.Expr, coding_e6: int) -> pl.Expr:
    """round6(raw / factor * (1 - coding)) in millionths, from raw thousandths."""
    numerator = raw_milli * (PARAMETER_SCALE - coding_e6) * MICRO_PER_MILLI
    return round_half_away_from_zero(numerator, factor_e6)


@dataclass(frozen=True)
class BlendResult:
    """`active`: one row per blended member: `input_index`, the seven buckets
    as Int64 millionths (`<bucket>` columns) and `models` (List[Str], the
    models blended, in the year's order). `errors`: member errors (member
    dropped from scoring), columns `MemberID, input_index, field, message`."""

    active: pl.DataFrame
    errors: pl.DataFrame


def _not_published(payment_year: int) -> str:
    """Suffix of the member error for a parameter the year does not publish."""
    return (
        f" for PY{payment_year} is not published in our reference data; "
        "this member cannot be scored for that year"
    )


def blend(raw_rows: pl.DataFrame, members: pl.DataFrame, params: BlendParameters) -> BlendResult:
    """Active row per member from the raw rows (see module docstring).

    `raw_rows`: `input_index, MemberID, model` and the seven bucket columns in
    thousandths (one row per member per model). `members`: `input_index,
    normalization_group` (`cms_hcc`, `dialysis`, `graft`). Members whose factor
    or weight is not published get a member error and no active row; the
    caller drops their raw rows too (see `engine.run`).
    """
    if params.coding_e6 is None:
        # A year without a coding adjustment cannot score anyone: every member errors.
        message = "coding_adjustment ALL" + _not_published(params.payment_year)
        errors = (
            raw_rows.select("MemberID", "input_index")
            .unique("input_index", maintain_order=True)
            .with_columns(field=pl.lit("payment_year"), message=pl.lit(message))
        )
        return BlendResult(_empty_active(), errors.cast(MEMBER_ERROR_SCHEMA))

    model_order = {m: i for i, m in enumerate([*params.models, ESRD_MODEL])}
    keyed = (
        raw_rows.lazy()
        .join(
            members.lazy().select("input_index", "normalization_group"),
            on="input_index",
            how="left",
        )
        .with_columns(
            normalization_key=pl.when(pl.col("model") == ESRD_MODEL)
            .then(pl.lit(f"{ESRD_MODEL}_") + pl.col("normalization_group"))
            .otherwise(pl.col("model")),
            model_order=pl.col("model").replace_strict(model_order, default=len(model_order)),
        )
        .join(params.normalization_factors().lazy(), on="normalization_key", how="left")
        .join(params.model_weights().lazy(), on="model", how="left")
    )

    missing = keyed.filter(pl.col("factor_e6").is_null() | pl.col("weight_e6").is_null())
    errors = (
        missing.sort("input_index", "model_order")
        .group_by("input_index", maintain_order=True)
        .agg(
            pl.col("MemberID").first(),
            pl.when(pl.col("factor_e6").is_null())
            .then(pl.lit("normalization_factor ") + pl.col("normalization_key"))
            .otherwise(pl.lit("blend_weight ") + pl.col("model"))
            .first()
            .alias("parameter"),
        )
        .select(
            "MemberID",
            "input_index",
            field=pl.lit("payment_year"),
            message=pl.col("parameter") + pl.lit(_not_published(params.payment_year)),
        )
        .cast(MEMBER_ERROR_SCHEMA)
    )

    scorable = keyed.join(missing.select("input_index").unique(), on="input_index", how="anti")
    active = (
        scorable.sort("input_index", "model_order")
        .with_columns(
            [
                (
                    pl.col("weight_e6")
                    * adjusted_micro(pl.col(bucket), pl.col("factor_e6"), params.coding_e6)
                ).alias(bucket)
                for bucket in BUCKETS
            ]
        )
        .group_by("input_index", maintain_order=True)
        .agg(*[pl.col(bucket).sum() for bucket in BUCKETS], models=pl.col("model"))
        .with_columns(
            *[
                round_half_away_from_zero(pl.col(bucket), PARAMETER_SCALE).alias(bucket)
                for bucket in BUCKETS
            ],
            pl.col("input_index").cast(pl.UInt32),
        )
    )
    errors, active = pl.collect_all([errors, active])
    return BlendResult(active, errors)


def _empty_active() -> pl.DataFrame:
    schema: dict[str, Any] = {"input_index": pl.UInt32}
    schema.update({bucket: pl.Int64 for bucket in BUCKETS})
    schema["models"] = pl.List(pl.String)
    return pl.DataFrame(schema=schema)
