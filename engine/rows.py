"""Response rows in the seed's field order (raw rows per model, then the active row).

Contract: `docs/ARCHITECTURE.md` "Response rows" and `docs/api.md`;
texts and order copied from the seed (`app/examples/seed_response.json`):

* raw rows: `Model` "HCC Model-Regular", `Clinical_Version` "V28" / "V24",
  `Active_Score` 0, numbers in thousandths (0.609);
* active row: `Model` "67.0000% of HCC Model-Regular V28 / 33.0000% of HCC
  Model-Regular V24" (weights with four decimals, the year's model order, V28
  first), `Clinical_Version` "V28 / V24", `RA_Variable`
  "V24 ( CPD_M35_44, HCC55 ) and V28 ( CPD_M35_44, HCC137 )" (V24 part first,
  as the seed prints it), `Active_Score` 1, numbers in millionths (0.517435).

Per member: raw V28, raw V24 (PY2024/PY2025), then active; members in request
order. ESRD members have one raw row (`ESRD_V24`) and an active row. The seed
shows no ESRD member, so their texts are ours: `Clinical_Version` "ESRD V24"
(the 2023 ESRD model) and `Model` naming the ESRD sub-model of the member's
segment (`ESRD_SEGMENT_MODELS`, after the CMS ESRD V24 score families: dialysis,
dialysis new enrollee, functioning graft community / institutional / new
enrollee, kidney transplant), e.g. raw "ESRD Model-Functioning Graft Community"
and active "100.0000% of ESRD Model-Functioning Graft Community ESRD V24".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from engine.blend import PARAMETER_SCALE, BlendParameters, round_half_away_from_zero
from engine.memo import derived


@dataclass(frozen=True)
class ModelText:
    """How one model is named on the response rows (from its model.json)."""

    model: str  # `Model` on the raw row, e.g. "HCC Model-Regular"
    clinical_version: str  # `Clinical_Version` on the raw row, e.g. "V28"
    ra_variable_order: int  # position of "<version> ( ... )" in the active RA_Variable


def model_texts(params: BlendParameters) -> dict[str, ModelText]:
    """label -> `ModelText` of the models `params` knows (``BlendParameters.model_identities``:
    ``reference/data/models/<id>/model.json``)."""
    return {
        label: ModelText(i.model_text, i.clinical_version, i.ra_variable_order)
        for label, i in params.model_identities.items()
    }


ESRD_SEGMENT_MODELS: Mapping[str, str] = {
    "DI": "ESRD Model-Dialysis",  # D1 D2 I3 I4 (CMS SCORE_DIAL)
    "DNE": "ESRD Model-Dialysis New Enrollee",  # ED (SCORE_DIAL_NE)
    "GFA": "ESRD Model-Functioning Graft Community",  # C3 C6 aged (SCORE_G_COMM_*)
    "GFN": "ESRD Model-Functioning Graft Community",  # C3 C6 under 65
    "GNPA": "ESRD Model-Functioning Graft Community",  # C4 C5 C7 C8 aged
    "GNPN": "ESRD Model-Functioning Graft Community",  # C4 C5 C7 C8 under 65
    "GI": "ESRD Model-Functioning Graft Institutional",  # I5..IA, I1 (SCORE_GRAFT_INST_*)
    "GNE": "ESRD Model-Functioning Graft New Enrollee",  # E1 E2 (SCORE_GRAFT_NE_*)
    "TRANSPLANT": "ESRD Model-Kidney Transplant",  # G1 G2 (SCORE_TRANSPLANT_KIDNEY_ONLY_*)
}
"""`Model` of an ESRD row by the member's segment (raw row; the active row prefixes the weight)."""

BUCKET_FIELDS: Mapping[str, str] = {
    "demographic": "RAF_Demographic",
    "demographic_interaction": "RAF_Demographic_Interaction_With_Medicaid_Or_OREC",
    "disease": "RAF_Disease",
    "disease_count": "RAF_Disease_Count",
    "disease_interaction": "RAF_Disease_Interaction_With_Disease",
    "disability_interaction": "RAF_Disease_Interaction_With_Disability_Or_NonAged",
    "total": "RAF_Total",
}

MEMBER_FIELDS: tuple[str, ...] = (
    "BirthDate_Org",
    "BirthDate",
    "Age",
    "Age_Band",
    "Gender_Org",
    "Gender",
    "RAType_Org",
    "RAType",
    "Hospice_Org",
    "Hospice",
    "LTIMCAID_Org",
    "LTIMCAID",
    "NEMCAID_Org",
    "NEMCAID",
    "OREC_Org",
    "OREC",
    "Originally_Disabled",
    "Originally_ESRD",
)
"""Member echo fields, as `ratype.normalize` names them, in the seed's order."""

ROW_FIELDS: tuple[str, ...] = (
    "Payment_Year",
    "Member_Id",
    *MEMBER_FIELDS,
    "RA_Variable",
    *BUCKET_FIELDS.values(),
    "Model",
    "Clinical_Version",
    "Active_Score",
)
"""The seed's field order for one result row."""

DETAIL_FIELDS: tuple[str, ...] = (
    "Variables", "HCCs", "Hierarchy_Dropped", "Interactions", "Dropped_Diagnoses", "Blend",
)

ACTIVE_ROW_ORDER = 1_000  # after every raw row of the member


def scaled_to_float(value: pl.Expr, decimals: int) -> pl.Expr:
    """Float64 of an integer in 10**-decimals units, exactly as its decimal text.

    Polars divides by a literal as a multiplication by the reciprocal (348 / 1000
    gives 0.34800000000000003). A true IEEE division of two exactly representable
    numbers is correctly rounded, i.e. it is the double nearest the decimal value,
    the same double the decimal text ("0.348") parses to. So the divisor is a
    column (elementwise division), not a literal. Exact for |value| < 2**53.
    """
    unit = 10**decimals
    as_float = value.cast(pl.Float64)
    return as_float / (as_float * 0.0 + float(unit))


def weight_percent(weight_e6: pl.Expr) -> pl.Expr:
    """"67.0000%" from 670_000 millionths: a weight in millionths is a percent in 1e-4."""
    return (
        (weight_e6 // 10_000).cast(pl.String)
        + pl.lit(".")
        + (weight_e6 % 10_000).cast(pl.String).str.zfill(4)
        + pl.lit("%")
    )


@dataclass(frozen=True)
class _ModelTextLookups:
    """Lookups of one `BlendParameters`, built once (`engine.memo`).

    A raw row's texts depend only on its model, and an active row's `Model` and
    `Clinical_Version` only on which models the member has (ESRD: and its
    segment). So they are `replace_strict` maps over the year's three models and
    their seven model sets: no join with a texts frame (a join costs ~0.3 ms
    even on a one-member batch) and no text built per row.
    """

    model_order: pl.Expr  # by model: the year's model order, ESRD last (raw row order)
    ra_variable_order: pl.Expr  # by model: its place in the active RA_Variable
    model_text: pl.Expr  # by model: `Model` of the raw row (ESRD: replaced per segment)
    clinical_version: pl.Expr  # by model
    active_model: pl.Expr  # by `model_set`: `Model` of the active row
    active_clinical_version: pl.Expr  # by `model_set`
    esrd_weight_prefix: str  # "100.0000% of " before an ESRD segment's model text
    esrd_model: str | None  # the ESRD model's label ("ESRD_V24")
    esrd_clinical_version: str  # its Clinical_Version ("ESRD V24")


#: `model_set`: a member's models in RA_Variable order, joined with this.
MODEL_SET_SEPARATOR = ","


def _model_texts(params: BlendParameters) -> _ModelTextLookups:
    return derived(params, "model_text_lookups", lambda: _build_model_texts(params))


def _build_model_texts(params: BlendParameters) -> _ModelTextLookups:
    text_of = model_texts(params)
    esrd_model = params.esrd_model
    models = [*params.models, *params.unblended_models]
    weights = params.model_weights().select(
        "model", prefix=weight_percent(pl.col("weight_e6")) + pl.lit(" of ")
    )
    prefix = dict(zip(weights.get_column("model"), weights.get_column("prefix"), strict=True))
    ra_rank = {m: text_of[m].ra_variable_order * len(models) + i for i, m in enumerate(models)}
    # every non-empty set of models, keyed in RA_Variable order, texts in model order
    model_sets = [
        [m for i, m in enumerate(models) if mask >> i & 1] for mask in range(1, 2 ** len(models))
    ]

    def key(model_set: list[str]) -> str:
        return MODEL_SET_SEPARATOR.join(sorted(model_set, key=ra_rank.__getitem__))

    def active_model(model_set: list[str]) -> str | None:
        parts = [
            f"{prefix[m]}{text_of[m].model} {text_of[m].clinical_version}"
            for m in model_set
            if prefix[m] is not None  # an unpublished weight: no part (the blend rejects it)
        ]
        return " / ".join(parts)

    def by(column: str, values: dict[str, object], dtype: pl.DataType) -> pl.Expr:
        return pl.col(column).replace_strict(values, default=None, return_dtype=dtype)

    return _ModelTextLookups(
        model_order=by("model", {m: i for i, m in enumerate(models)}, pl.Int64),
        ra_variable_order=by("model", ra_rank, pl.Int64),
        model_text=by("model", {m: text_of[m].model for m in models}, pl.String),
        clinical_version=by(
            "model", {m: text_of[m].clinical_version for m in models}, pl.String
        ),
        active_model=by("model_set", {key(s): active_model(s) for s in model_sets}, pl.String),
        active_clinical_version=by(
            "model_set",
            {key(s): " / ".join(text_of[m].clinical_version for m in s) for s in model_sets},
            pl.String,
        ),
        esrd_weight_prefix=prefix[esrd_model] if esrd_model else "",
        esrd_model=esrd_model,
        esrd_clinical_version=text_of[esrd_model].clinical_version if esrd_model else "",
    )


def build_rows(
    members: pl.DataFrame,
    raw_rows: pl.DataFrame,
    active: pl.DataFrame,
    params: BlendParameters,
    trail: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """`input_index` then `ROW_FIELDS` (+ `Warnings`, + `DETAIL_FIELDS` with a trail).

    Every member of `raw_rows` gets its raw rows; members of `active` also their
    active row (a member whose year lacks a parameter has raw rows only, and its
    `Warnings` say why: `engine.run`). The caller leaves out the raw rows of
    members it rejects.
    """
    texts = _model_texts(params)
    raw = raw_rows.lazy()
    esrd_model = texts.esrd_model
    esrd = (
        esrd_model is not None
        and "segment" in members.columns
        and raw_rows.get_column("model").eq(esrd_model).any()
    )
    model_text = texts.model_text
    if esrd:  # ESRD rows name the ESRD sub-model of the member's segment
        raw = raw.join(
            members.lazy().select(
                pl.col("input_index").cast(raw_rows.schema["input_index"]), "segment"
            ),
            on="input_index",
            how="left",
        )
        segment_text = pl.col("segment").replace_strict(
            dict(ESRD_SEGMENT_MODELS), default=None, return_dtype=pl.String
        )
        model_text = (
            pl.when(pl.col("model") == esrd_model)
            .then(pl.coalesce(segment_text, model_text))
            .otherwise(model_text)
        )
    raw = raw.with_columns(
        model_text=model_text,
        clinical_version=texts.clinical_version,
        ra_part=texts.clinical_version + pl.lit(" ( ") + pl.col("ra_variable") + pl.lit(" )"),
    )
    raw_part = raw.select(  # put in order with the active rows below
        "input_index",
        row_order=texts.model_order,
        model=pl.col("model"),
        RA_Variable=pl.col("ra_variable"),
        **{field: scaled_to_float(pl.col(bucket), 3) for bucket, field in BUCKET_FIELDS.items()},
        Model=pl.col("model_text"),
        Clinical_Version=pl.col("clinical_version"),
        Active_Score=pl.lit(0, pl.Int8),
    )

    # Each member's RA_Variable parts and models as lists in RA_Variable order
    # (lists, not `str.join` per group: polars 1.44 aggregates lists far faster);
    # the model set then names the active Model and Clinical_Version.
    member_texts = (
        raw.sort("input_index", texts.ra_variable_order)
        .group_by("input_index", maintain_order=True)
        .agg(
            RA_Variable="ra_part",
            model_set="model",
            # an ESRD member has the ESRD model only: its one row's (segment) text
            **({"model_text": pl.col("model_text").last()} if esrd else {}),
        )
        .with_columns(
            pl.col("RA_Variable").list.join(" and "),
            pl.col("model_set").list.join(MODEL_SET_SEPARATOR),
        )
    )
    active_model = texts.active_model
    if esrd:  # an ESRD member's only model: its weight and its segment's model text
        active_model = (
            pl.when(pl.col("model_set") == esrd_model)
            .then(
                pl.lit(texts.esrd_weight_prefix)
                + pl.col("model_text")
                + pl.lit(" " + texts.esrd_clinical_version)
            )
            .otherwise(active_model)
        )
    active_part = (
        active.lazy()
        .join(member_texts, on="input_index", how="left")
        .select(
            "input_index",
            row_order=pl.lit(ACTIVE_ROW_ORDER, pl.Int64),
            model=pl.lit(None, pl.String),
            RA_Variable=pl.col("RA_Variable"),
            **{
                field: scaled_to_float(pl.col(bucket), 6)
                for bucket, field in BUCKET_FIELDS.items()
            },
            Model=active_model,
            Clinical_Version=texts.active_clinical_version,
            Active_Score=pl.lit(1, pl.Int8),
        )
    )

    rows = pl.concat(
        [raw_part.with_columns(pl.col("row_order").cast(pl.Int64)), active_part],
        how="vertical_relaxed",
    )
    detail: list[str] = []
    if trail:  # the detail trail is attached eagerly, per field
        attached = _attach_detail(rows.collect(), trail, params)
        detail = [f for f in DETAIL_FIELDS if f in attached.columns]
        rows = attached.lazy()

    warnings = (
        pl.col("warnings") if "warnings" in members.columns else pl.lit(None, pl.List(pl.String))
    )
    member_columns = members.lazy().select(
        pl.col("input_index").cast(pl.UInt32),
        pl.col("MemberID").alias("Member_Id"),
        *MEMBER_FIELDS,
        warnings.alias("Warnings"),
    )
    # One query for all of the above (without a trail): on a one-member batch the
    # per-query overhead, not the rows, is the cost.
    return (
        rows.with_columns(pl.col("input_index").cast(pl.UInt32))
        .sort("input_index", "row_order")
        # sorted first, then the wide member columns joined in that order
        .join(member_columns, on="input_index", how="left", maintain_order="left")
        .select(
            "input_index",
            pl.lit(params.payment_year, pl.Int64).alias("Payment_Year"),
            *ROW_FIELDS[1:],
            "Warnings",
            *detail,
        )
        .collect()
    )


def _detail_value(frame: pl.DataFrame, source: str) -> pl.Expr:
    """Coefficients as exact floats; HCC numbers as "HCC137" (as in `RA_Variable`)."""
    if source == "coefficient_milli":
        return scaled_to_float(pl.col(source), 3)
    if source in ("hcc", "dropped_by") and frame.schema[source].is_integer():
        return pl.format("HCC{}", pl.col(source))
    return pl.col(source)


def _attach_detail(
    rows: pl.DataFrame, trail: Mapping[str, pl.DataFrame], params: BlendParameters
) -> pl.DataFrame:
    """`?detail=true`: per raw row, every scored variable, the HCCs, hierarchy drops,
    interactions (per member and model) and the member's dropped diagnoses (per
    member); per active row the blend's steps."""
    rows = _attach_variables(rows, trail)
    per_model = {
        "HCCs": ("hccs", {"HCC": "hcc", "Label": "label", "Coefficient": "coefficient_milli",
                          "DxCodes": "dx_codes"}),
        "Hierarchy_Dropped": ("hierarchy_dropped", {"HCC": "hcc", "Dropped_By": "dropped_by",
                                                    "Rule": "rule", "DxCodes": "dx_codes"}),
        "Interactions": ("interactions", {"Name": "name", "Label": "label",
                                          "Coefficient": "coefficient_milli"}),
    }
    for field, (frame_name, columns) in per_model.items():
        frame = trail.get(frame_name)
        if frame is None:
            continue
        items = frame.select(
            pl.col("input_index").cast(pl.UInt32),
            "model",
            pl.struct(
                *[
                    _detail_value(frame, source).alias(name)
                    for name, source in columns.items()
                    if source in frame.columns
                ]
            ).alias(field),
        ).group_by("input_index", "model").agg(pl.col(field))
        rows = rows.with_columns(pl.col("input_index").cast(pl.UInt32)).join(
            items, on=["input_index", "model"], how="left"
        )
        rows = rows.with_columns(
            pl.when(pl.col("Active_Score") == 0)
            .then(pl.col(field).fill_null(pl.lit([], dtype=items.schema[field])))
            .alias(field)
        )
    dropped = trail.get("dropped_dx")
    if dropped is not None:
        items = (
            dropped.filter(pl.col("input_index").is_not_null())
            .select(
                pl.col("input_index").cast(pl.UInt32),
                pl.struct(
                    pl.col("DxCode"), pl.col("FromDOS"), pl.col("ThruDOS"),
                    pl.col("reason").alias("Reason"),
                ).alias("Dropped_Diagnoses"),
            )
            .group_by("input_index")
            .agg(pl.col("Dropped_Diagnoses"))
        )
        rows = rows.with_columns(pl.col("input_index").cast(pl.UInt32)).join(
            items, on="input_index", how="left"
        )
        rows = rows.with_columns(
            pl.when(pl.col("Active_Score") == 0)
            .then(
                pl.col("Dropped_Diagnoses").fill_null(
                    pl.lit([], dtype=items.schema["Dropped_Diagnoses"])
                )
            )
            .alias("Dropped_Diagnoses")
        )
    return _attach_blend(rows, trail.get("blend"), params)


#: Names `Variables` lines the reference data does not: a row adjustment after the sum.
ADJUSTMENT_LABEL = "ESRD graft new enrollee: the bucket divided by ActAdj, rounded to 3 decimals"


def _attach_variables(rows: pl.DataFrame, trail: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """`Variables` on each raw row: every scored variable (demographic cell, flags, HCCs,
    interactions, counts) as `{Name, Label, Coefficient, Bucket}`, `Bucket` the response
    field it adds to, so each `RAF_*` bucket is the sum of its lines.

    A model that changes its summed buckets afterwards (ESRD graft new enrollees are
    divided by ActAdj, `engine.esrd.adjust_rows`) gets one line per changed bucket,
    named after the divisor in `RA_Variable`, whose coefficient is the change.
    """
    scored = trail.get("variables")
    if scored is None:
        return rows
    bucket_field = pl.col("bucket").replace_strict(
        dict(BUCKET_FIELDS), default=None, return_dtype=pl.String
    )
    lines = scored.select(
        pl.col("input_index").cast(pl.UInt32),
        "model",
        Name=pl.coalesce("display_name", "variable"),
        Label=pl.col("label"),
        Coefficient_milli=pl.col("coefficient_milli").cast(pl.Int64),
        Bucket=bucket_field,
        _order=pl.col("display_order").cast(pl.Int64),
    )
    raw_rows = rows.filter(pl.col("Active_Score") == 0)
    sums = lines.group_by("input_index", "model", "Bucket").agg(
        _sum=pl.col("Coefficient_milli").sum()
    )
    bucket_milli = raw_rows.select(
        pl.col("input_index").cast(pl.UInt32),
        "model",
        pl.col("RA_Variable").str.extract(r"(ActAdj_\w+)$", 1).alias("_adjustment"),
        *[
            (pl.col(f) * 1000).round(0).cast(pl.Int64).alias(f)
            for b, f in BUCKET_FIELDS.items()
            if b != "total"
        ],
    ).unpivot(
        index=["input_index", "model", "_adjustment"], variable_name="Bucket", value_name="_row"
    )
    adjustments = (
        bucket_milli.join(sums, on=["input_index", "model", "Bucket"], how="left")
        .with_columns(Coefficient_milli=pl.col("_row") - pl.col("_sum").fill_null(0))
        .filter(pl.col("Coefficient_milli") != 0)
        .select(
            "input_index",
            "model",
            Name=pl.col("_adjustment").fill_null("adjustment"),
            Label=pl.lit(ADJUSTMENT_LABEL),
            Coefficient_milli="Coefficient_milli",
            Bucket="Bucket",
            _order=pl.lit(DISPLAY_ORDER_LAST, pl.Int64),
        )
    )
    items = (
        pl.concat([lines, adjustments.cast(lines.schema)])
        .sort("input_index", "model", "_order", maintain_order=True)
        .group_by("input_index", "model", maintain_order=True)
        .agg(
            Variables=pl.struct(
                "Name", "Label", scaled_to_float(pl.col("Coefficient_milli"), 3).alias("Coefficient"),
                "Bucket",
            )
        )
    )
    rows = rows.with_columns(pl.col("input_index").cast(pl.UInt32)).join(
        items, on=["input_index", "model"], how="left"
    )
    return rows.with_columns(
        pl.when(pl.col("Active_Score") == 0)
        .then(pl.col("Variables").fill_null(pl.lit([], dtype=items.schema["Variables"])))
        .alias("Variables")
    )


DISPLAY_ORDER_LAST = 1 << 40
"""Sort position of an adjustment line: after every variable of the row."""

BLEND_RULE = (
    "per model and bucket: adjusted = round6(raw / normalization_factor x (1 - coding_adjustment)); "
    "active = round6(sum of blend_weight x adjusted); rounding half away from zero, "
    "each bucket separately (the total is blended from the raw totals)"
)


def decimal_text(value: pl.Expr, decimals: int, *, trim: bool = False) -> pl.Expr:
    """Text of an integer in 10**-decimals units: 624 (3) -> "0.624"; `trim` drops trailing
    zeros (670_000 (6) -> "0.67")."""
    unit = 10**decimals
    magnitude = value.abs()
    text = (
        pl.when(value < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        + (magnitude // unit).cast(pl.String)
        + pl.lit(".")
        + (magnitude % unit).cast(pl.String).str.zfill(decimals)
    )
    return text.str.strip_chars_end("0").str.strip_chars_end(".") if trim else text


def _parameter(
    params: BlendParameters, name: str, key: pl.Expr, value_e6: pl.Expr
) -> pl.Expr:
    """`app.wire.ParameterValue` of one blend parameter: key, value and its provenance."""
    known = {k: v for (n, k), v in params.provenance.items() if n == name}

    def looked_up(i: int) -> pl.Expr:
        return key.replace_strict(
            {k: v[i] for k, v in known.items()}, default=None, return_dtype=pl.String
        ).fill_null("")

    return pl.struct(
        parameter=pl.lit(name),
        model=key,
        value=decimal_text(value_e6, 6, trim=True),
        status=looked_up(0),
        source=looked_up(1),
    )


def _attach_blend(
    rows: pl.DataFrame, steps: pl.DataFrame | None, params: BlendParameters
) -> pl.DataFrame:
    """`Blend` on each active row: per model the normalization factor, coding adjustment
    and weight (each with its source and status), the raw and the adjusted (rounded)
    buckets, and the formulas of the total (`engine.blend.blend_trail`)."""
    if steps is None:
        return rows
    buckets = [b for b in BUCKET_FIELDS]
    per_model = steps.select(
        "input_index",
        _weighted=pl.col("weight_e6") * pl.col("adjusted_total"),
        _part=decimal_text(pl.col("weight_e6"), 6, trim=True)
        + pl.lit(" × ")
        + decimal_text(pl.col("adjusted_total"), 6),
        _model=pl.struct(
            Model=pl.col("model"),
            Normalization_Factor=_parameter(
                params, "normalization_factor", pl.col("normalization_key"), pl.col("factor_e6")
            ),
            Coding_Adjustment=_parameter(
                params, "coding_adjustment", pl.lit("ALL"), pl.col("coding_e6")
            ),
            Weight=_parameter(params, "blend_weight", pl.col("model"), pl.col("weight_e6")),
            Raw=pl.struct(
                *[scaled_to_float(pl.col(f"raw_{b}"), 3).alias(BUCKET_FIELDS[b]) for b in buckets]
            ),
            Adjusted=pl.struct(
                *[
                    scaled_to_float(pl.col(f"adjusted_{b}"), 6).alias(BUCKET_FIELDS[b])
                    for b in buckets
                ]
            ),
            Formula=decimal_text(pl.col("raw_total"), 3)
            + pl.lit(" / ")
            + decimal_text(pl.col("factor_e6"), 6, trim=True)
            + pl.lit(" × ")
            + decimal_text(PARAMETER_SCALE - pl.col("coding_e6"), 6, trim=True)
            + pl.lit(" → ")
            + decimal_text(pl.col("adjusted_total"), 6),
        ),
    )
    blended = (
        per_model.group_by("input_index", maintain_order=True)
        .agg("_model", "_part", _sum=pl.col("_weighted").sum())
        .select(
            pl.col("input_index").cast(pl.UInt32),
            pl.lit(1, pl.Int8).alias("Active_Score"),
            Blend=pl.struct(
                Models=pl.col("_model"),
                Formula=pl.col("_part").list.join(" + ")
                + pl.lit(" → ")
                + decimal_text(round_half_away_from_zero(pl.col("_sum"), PARAMETER_SCALE), 6),
                Rule=pl.lit(BLEND_RULE),
            ),
        )
    )
    return rows.with_columns(pl.col("input_index").cast(pl.UInt32)).join(
        blended, on=["input_index", "Active_Score"], how="left"
    )
