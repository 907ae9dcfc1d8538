"""The active (blended) row: normalization, MA coding adjustment, blend weights.

Rule: `docs/scoring.md` "The active (blended) row", checked against the
seed (`app/examples/seed_response.json`). For each model m of the member
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
(`ESRD_V24_dialysis` or `ESRD_V24_graft`, see `docs/scoring.md` "Segments from RAType"), with weight 1
(ESRD members are not blended). A factor or weight the reference data marks
missing for the year is never defaulted (`docs/scoring.md` "Payment years": a
missing value is never guessed): the member keeps its raw rows, gets no active row,
and carries a warning naming the parameter (`BlendResult.warnings`; e.g. every ESRD
member of PY2025, whose ESRD factors are in no source we can cite). An operator
who has CMS's figure supplies it with `RAF_PARAMETER_OVERRIDES` (`reference.store`).
The coding adjustment is applied to ESRD scores too, as hccpy and
pfehlinger/risk_adjustment_model do (`reference/PARAMETERS.md` "How the factors are applied": no CMS
text found either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from engine.buckets import BUCKETS as RAW_BUCKETS
from engine.memo import derived

PARAMETER_SCALE = 1_000_000
"""Parameters (weights, factors, coding adjustment) are integers in millionths."""

MICRO_PER_MILLI = 1_000

BUCKETS: tuple[str, ...] = (*RAW_BUCKETS, "total")
"""The six `RAF_*` buckets and the total, as Int64 columns of the raw rows."""



def bundled_identities() -> dict[str, Any]:
    """label -> ``reference.store.ModelIdentity`` of every bundled model (model.json):
    the default of `BlendParameters.identities` when a caller builds parameters by hand."""
    from reference.store import ReferenceStore

    store = ReferenceStore.default()
    ids = {m for year in store.supported_years for m in store.year(year).models_of_year}
    return {store.identity(m).label: store.identity(m) for m in sorted(ids)}

MEMBER_ERROR_SCHEMA = {
    "MemberID": pl.String,
    "input_index": pl.UInt32,
    "field": pl.String,
    "message": pl.String,
}
MEMBER_WARNING_SCHEMA = {
    "MemberID": pl.String,
    "input_index": pl.UInt32,
    "code": pl.String,
    "message": pl.String,
}
#: `code` of the warning on a member whose active row is left out.
ACTIVE_ROW_LEFT_OUT = "active_row_missing_parameter"


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
    #: label -> model identity (``reference.store.ModelIdentity``: family, texts,
    #: normalization keys); empty = the bundled models' model.json files.
    identities: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_identities(self) -> Mapping[str, Any]:
        return self.identities or derived(self, "bundled_identities", bundled_identities)

    @property
    def unblended_models(self) -> tuple[str, ...]:
        """Labels of the models scored alone with weight 1 (family other than CMS-HCC: ESRD)."""
        return tuple(
            label for label, identity in self.model_identities.items()
            if identity.family != "CMS-HCC" and label not in self.models
        )

    @property
    def esrd_model(self) -> str | None:
        """The one unblended (ESRD) model's label, if any."""
        unblended = self.unblended_models
        if len(unblended) > 1:
            raise ValueError(f"more than one unblended model: {unblended}")
        return unblended[0] if unblended else None
    #: (parameter, key) -> (status, source) from parameters.csv, e.g.
    #: ("normalization_factor", "V28") -> ("corroborated", "CMS CY2025 Rate Announcement ...");
    #: the `?detail=true` active row names them (`engine.rows`).
    provenance: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_decimals(
        cls,
        payment_year: int,
        models: Iterable[str],
        weights: Mapping[str, Any],
        factors: Mapping[str, Any],
        coding_adjustment: Any,
        identities: Mapping[str, Any] | None = None,
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
            identities=dict(identities or {}),
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
        for label in self.unblended_models:
            weights[label] = PARAMETER_SCALE
        return pl.DataFrame(
            {"model": list(weights), "weight_e6": list(weights.values())},
            schema={"model": pl.String, "weight_e6": pl.Int64},
        )

    def normalization_factors(self) -> pl.DataFrame:
        """One row per normalization key the engine can ask for: `normalization_key`, `factor_e6`."""
        keys = [*self.models] + [
            key
            for label in self.unblended_models
            for key in self.model_identities[label].normalization_keys.values()
        ]
        return pl.DataFrame(
            {"normalization_key": keys, "factor_e6": [self.factor_e6.get(k) for k in keys]},
            schema={"normalization_key": pl.String, "factor_e6": pl.Int64},
        )


def normalization_key_of(params: BlendParameters) -> pl.Expr:
    """The parameters.csv normalization `model` of a raw row: its `model` label, or for the
    ESRD model the key of the member's `normalization_group` (model.json
    `normalization_keys`: dialysis -> ESRD_V24_dialysis). Needs `model` and, for ESRD
    rows, `normalization_group`."""
    esrd_model = params.esrd_model
    if esrd_model is None:
        return pl.col("model")
    by_group = dict(params.model_identities[esrd_model].normalization_keys)
    return (
        pl.when(pl.col("model") == esrd_model)
        .then(pl.col("normalization_group").replace_strict(by_group, default=None,
                                                           return_dtype=pl.String))
        .otherwise(pl.col("model"))
    )


def round_half_away_from_zero(numerator: pl.Expr, denominator: pl.Expr | int) -> pl.Expr:
    """Integer quotient rounded half away from zero; `denominator` must be > 0.

    sign(n) * floor((2|n| + d) / 2d): 5/2 -> 3, -5/2 -> -3, 7/3 -> 2. Written
    with `sign()` rather than when/then/otherwise: a conditional is several
    times dearer per evaluation, and blend evaluates this 14 times per batch
    (one-member batch: 0.64 -> 0.31 ms for the seven weighted buckets).
    """
    d = denominator if isinstance(denominator, pl.Expr) else pl.lit(denominator, pl.Int64)
    return (numerator.abs() * 2 + d) // (d * 2) * numerator.sign()


def adjusted_micro(raw_milli: pl.Expr, factor_e6: pl.Expr, coding_e6: int) -> pl.Expr:
    """round6(raw / factor * (1 - coding)) in millionths, from raw thousandths."""
    numerator = raw_milli * ((PARAMETER_SCALE - coding_e6) * MICRO_PER_MILLI)  # one multiply
    return round_half_away_from_zero(numerator, factor_e6)


@dataclass(frozen=True)
class BlendResult:
    """`active`: one row per blended member: `input_index`, the seven buckets
    as Int64 millionths (`<bucket>` columns) and `models` (List[Str], the
    models blended, in the year's order). `errors`: member errors (member
    dropped from scoring), columns `MemberID, input_index, field, message`.
    `warnings`: members scored raw only (a parameter of their model is not
    published), columns `MemberID, input_index, code, message`."""

    active: pl.DataFrame
    errors: pl.DataFrame
    warnings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MEMBER_WARNING_SCHEMA))


def _not_published(payment_year: int) -> str:
    """Suffix of the member error for a parameter the year does not publish."""
    return (
        f" for PY{payment_year} is not published in our reference data; "
        "this member cannot be scored for that year"
    )


def _left_out(payment_year: int) -> str:
    """Suffix of the warning of a member scored raw only."""
    return (
        f" for PY{payment_year} is not published in our reference data (never guessed): the "
        "raw row is scored, the active row is left out; an operator with CMS's figure can "
        "supply it in RAF_PARAMETER_OVERRIDES"
    )


def blend(raw_rows: pl.DataFrame, members: pl.DataFrame, params: BlendParameters) -> BlendResult:
    """Active row per member from the raw rows (see module docstring).

    `raw_rows`: `input_index, MemberID, model` and the seven bucket columns in
    thousandths (one row per member per model). `members`: `input_index,
    normalization_group` (`cms_hcc`, `dialysis`, `graft`). Members whose factor
    or weight is not published get no active row and a warning (their raw rows
    stand); a year without a coding adjustment makes every member an error.
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

    lookups = _parameter_lookups(params)
    keyed = _keyed_rows(raw_rows, members, params, lookups)
    unpublished = pl.col("factor_e6").is_null() | pl.col("weight_e6").is_null()

    # Blended for every member in one query; a member with an unpublished factor
    # or weight (e.g. every ESRD member of PY2025, whose ESRD factors are not
    # published) is taken out afterwards: a batch without such members runs
    # no second query.
    active = (
        keyed.sort("input_index", "model_order")
        .with_columns(lookups.weighted_adjusted)
        # Gathered into lists, then summed: polars 1.44 sums ~30x faster per
        # list than per group (100k members: 5 ms vs 50 ms for the 7 buckets).
        .group_by("input_index", maintain_order=True)
        .agg(*BUCKETS, models=pl.col("model"), _unpublished=unpublished)
        .with_columns(
            *lookups.rounded_sums,
            pl.col("_unpublished").list.any(),
            pl.col("input_index").cast(pl.UInt32),
        )
        .collect()
    )
    if active.get_column("_unpublished").any():
        warnings = _missing_parameter_warnings(
            keyed.filter(unpublished).collect(), params.payment_year
        )
        active = active.filter(~pl.col("_unpublished"))
    else:
        warnings = pl.DataFrame(schema=MEMBER_WARNING_SCHEMA)
    active.drop_in_place("_unpublished")
    return BlendResult(active, pl.DataFrame(schema=MEMBER_ERROR_SCHEMA), warnings)


def _keyed_rows(
    raw_rows: pl.DataFrame, members: pl.DataFrame, params: BlendParameters,
    lookups: _ParameterLookups,
) -> pl.LazyFrame:
    """Raw rows with `normalization_key`, `model_order`, `factor_e6` and `weight_e6`."""
    keyed = raw_rows.lazy()
    normalization_key = pl.col("model")
    esrd_model = params.esrd_model
    if esrd_model is not None and raw_rows.get_column("model").eq(esrd_model).any():
        # only ESRD rows read the member's normalization_group: no join without them
        keyed = keyed.join(
            members.lazy().select("input_index", "normalization_group"),
            on="input_index",
            how="left",
        )
        normalization_key = normalization_key_of(params)
    return keyed.with_columns(normalization_key.alias("normalization_key")).with_columns(
        model_order=lookups.model_order,
        factor_e6=lookups.factor_e6,
        weight_e6=lookups.weight_e6,
    )


def blend_trail(
    raw_rows: pl.DataFrame, members: pl.DataFrame, params: BlendParameters
) -> pl.DataFrame:
    """`?detail=true`: the blend's steps, one row per blended member and model.

    `input_index, model, normalization_key, factor_e6, weight_e6, coding_e6`, per
    bucket `raw_<bucket>` (thousandths) and `adjusted_<bucket>` (millionths, the
    rounded value the blend weighs), in the year's model order. The same
    expressions as `blend`, so the trail is the arithmetic the active row came from.
    """
    schema: dict[str, Any] = {
        "input_index": pl.UInt32, "model": pl.String, "normalization_key": pl.String,
        "factor_e6": pl.Int64, "weight_e6": pl.Int64, "coding_e6": pl.Int64,
        **{f"raw_{b}": pl.Int64 for b in BUCKETS}, **{f"adjusted_{b}": pl.Int64 for b in BUCKETS},
    }
    if params.coding_e6 is None or raw_rows.is_empty():
        return pl.DataFrame(schema=schema)
    lookups = _parameter_lookups(params)
    return (
        _keyed_rows(raw_rows, members, params, lookups)
        .filter(pl.col("factor_e6").is_not_null() & pl.col("weight_e6").is_not_null())
        .sort("input_index", "model_order")
        .select(
            pl.col("input_index").cast(pl.UInt32),
            "model",
            "normalization_key",
            "factor_e6",
            "weight_e6",
            pl.lit(params.coding_e6, pl.Int64).alias("coding_e6"),
            *[pl.col(b).cast(pl.Int64).alias(f"raw_{b}") for b in BUCKETS],
            *[
                adjusted_micro(pl.col(b), pl.col("factor_e6"), params.coding_e6).alias(
                    f"adjusted_{b}"
                )
                for b in BUCKETS
            ],
        )
        .collect()
        .cast(schema)
    )


@dataclass(frozen=True)
class _ParameterLookups:
    """The expressions of one `BlendParameters`, built once (`engine.memo`): building
    them is pure Python work that cost about as much as running them on a
    one-member batch."""

    model_order: pl.Expr  # the year's model order, ESRD last, unknown models after
    factor_e6: pl.Expr  # by normalization_key; null when not published
    weight_e6: pl.Expr  # by model; null when not published
    weighted_adjusted: tuple[pl.Expr, ...]  # per bucket: weight_e6 * adjusted_micro
    # per bucket: the list of weighted values summed, back in millionths
    rounded_sums: tuple[pl.Expr, ...]


def _parameter_lookups(params: BlendParameters) -> _ParameterLookups:
    return derived(params, "blend_lookups", lambda: _build_parameter_lookups(params))


def _build_parameter_lookups(params: BlendParameters) -> _ParameterLookups:
    """`replace_strict` maps over the year's few parameters: cheaper than joining
    one-row-per-parameter frames (a join costs ~0.3 ms even on a one-member batch)."""
    models = [*params.models, *params.unblended_models]
    factors = params.normalization_factors()
    weights = params.model_weights()
    return _ParameterLookups(
        model_order=pl.col("model").replace_strict(
            {m: i for i, m in enumerate(models)}, default=len(models)
        ),
        factor_e6=pl.col("normalization_key").replace_strict(
            factors.get_column("normalization_key"),
            factors.get_column("factor_e6"),
            default=None,
            return_dtype=pl.Int64,
        ),
        weight_e6=pl.col("model").replace_strict(
            weights.get_column("model"),
            weights.get_column("weight_e6"),
            default=None,
            return_dtype=pl.Int64,
        ),
        # A member with an unpublished factor or weight is dropped after the sums;
        # until then its rows compute with stand-ins (factor 1, weight 0), so the
        # lists summed hold no nulls (polars sums lists with nulls ~10x slower).
        weighted_adjusted=tuple(
            (
                pl.col("weight_e6").fill_null(0)
                * adjusted_micro(
                    pl.col(bucket), pl.col("factor_e6").fill_null(PARAMETER_SCALE), params.coding_e6
                )
            ).alias(bucket)
            for bucket in BUCKETS
        ),
        rounded_sums=tuple(
            round_half_away_from_zero(pl.col(bucket).list.sum(), PARAMETER_SCALE).alias(bucket)
            for bucket in BUCKETS
        ),
    )


def _missing_parameter_warnings(missing: pl.DataFrame, payment_year: int) -> pl.DataFrame:
    """One warning per member with an unpublished factor or weight: the first
    missing parameter in model order."""
    return (
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
            code=pl.lit(ACTIVE_ROW_LEFT_OUT),
            message=pl.col("parameter") + pl.lit(_left_out(payment_year)),
        )
        .cast(MEMBER_WARNING_SCHEMA)
    )


def _empty_active() -> pl.DataFrame:
    schema: dict[str, Any] = {"input_index": pl.UInt32}
    schema.update({bucket: pl.Int64 for bucket in BUCKETS})
    schema["models"] = pl.List(pl.String)
    return pl.DataFrame(schema=schema)
