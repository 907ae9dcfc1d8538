"""Raw scoring: ``score_raw`` wires the stages in CMS order.

``docs/ARCHITECTURE.md`` "Raw scoring". Per model of the payment year
(``tables.models_of_year``, V28 first), for the members that model scores:

1. ``engine.diagnoses``   clean codes, collection year, dates, unknown members
2. ``engine.mapping``     ICD-10 -> CC with the year's mapping, edits, MCE age
3. ``engine.heart_patch`` V28 CC223 patch (V2823T2M), before hierarchies
4. ``engine.hierarchies`` CMS parent -> child table
5. ``engine.variables``   cells, flags, HCCs, interactions, counts
6. ``engine.coefficients`` (segment, variable) -> Int64 thousandths
7. ``engine.buckets``     six buckets, total, ``ra_variable``

Everything is a polars join or group-by over the whole batch; the only Python
loop is over the year's models (two at most). A batch of one member and a batch
of a million go through the same code.

Diagnosis reasons (``dx_summary`` and ``trail["dropped_dx"]``): the contract's
``outside_collection_year, unknown_code, no_hcc, edit_excluded, unknown_member,
invalid_dates``, plus three the contract did not name (documented in the
report): ``duplicate`` (exact repeat of an earlier row; changes nothing),
``segment_without_hccs`` (the member's segment takes no diagnoses: new
enrollees) and ``model_not_implemented`` (the member's model family has no
model in this engine yet: ESRD until its spec lands). ``used`` counts the
diagnoses that produced at least one payment CC in at least one model (a CC
later removed by the heart patch or a hierarchy still counts as used; the trail
says what removed it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from engine import buckets, coefficients, diagnoses, heart_patch, hierarchies, mapping, variables
from engine.memo import derived
from engine.spec import DIAGNOSIS_FAMILIES, ModelSpec, specs_for_year

DX_REASONS = (
    "outside_collection_year",
    "unknown_code",
    "no_hcc",
    "edit_excluded",
    "unknown_member",
    "invalid_dates",
    "duplicate",
    "segment_without_hccs",
    "model_not_implemented",
)

MEMBER_COLUMNS = (
    "input_index",
    "MemberID",
    "age",
    "sex",
    "orec",
    "model_family",
    "segment",
    "disabl",
    "origds",
    "ne_origds",
    "ltimcaid",
    "nemcaid",
)

#: What the rows need of the scored variables when no trail is asked for.
LEAN_SCORED_COLUMNS = [
    "input_index",
    "model",
    "coefficient_milli",
    "bucket_rank",
    "kind",
    "display_name",
    "display_order",
]

TRAIL_SCHEMAS = {
    "hccs": {
        "input_index": pl.UInt32,
        "model": pl.Utf8,
        "hcc": pl.Int32,
        "label": pl.Utf8,
        "coefficient_milli": pl.Int64,
        "dx_codes": pl.List(pl.Utf8),
    },
    "hierarchy_dropped": {
        "input_index": pl.UInt32,
        "model": pl.Utf8,
        "hcc": pl.Int32,
        "dropped_by": pl.Int32,
        "rule": pl.Utf8,
    },
    "interactions": {
        "input_index": pl.UInt32,
        "model": pl.Utf8,
        "name": pl.Utf8,
        "label": pl.Utf8,
        "coefficient_milli": pl.Int64,
    },
}


@dataclass
class RawResult:
    """Raw rows (one per member per model), diagnosis summary and, with detail, the trail.

    ``trail`` keys when detail: ``hccs``, ``hierarchy_dropped``, ``interactions``,
    ``dropped_dx``, ``variables`` (every scored variable with its coefficient and bucket).
    ``dropped_dx`` is also always available as an attribute (cheap: the summary is
    computed from it), so callers can split the summary per member without detail.
    """

    rows: pl.DataFrame
    dx_summary: dict[str, int]
    trail: dict[str, pl.DataFrame] = field(default_factory=dict)
    dropped_dx: pl.DataFrame | None = None


def collection_year(tables: object) -> int:
    """The diagnosis year: ``parameters.collection_year`` or the payment year minus one."""
    parameters = getattr(tables, "parameters", None)
    value = getattr(parameters, "collection_year", None)
    if value is None and isinstance(parameters, dict):
        value = parameters.get("collection_year")
    if value is None:
        value = int(tables.payment_year) - 1
    return int(value)


def _check_members(members: pl.DataFrame) -> None:
    missing = [c for c in MEMBER_COLUMNS if c not in members.columns]
    if missing:
        raise ValueError(f"members frame lacks columns {missing} (see ratype.normalize)")


def member_models(members: pl.DataFrame, model_specs: list[ModelSpec]) -> pl.DataFrame:
    """One row per member per model that scores the member's family and segment."""
    base = members.select(
        pl.col("input_index").cast(pl.UInt32),
        pl.col("MemberID").cast(pl.Utf8),
        pl.col("age").cast(pl.Int32),
        pl.col("sex").cast(pl.Utf8),
        pl.col("orec").cast(pl.Int32),
        "model_family",
        "segment",
        *[pl.col(c).cast(pl.Boolean) for c in ("disabl", "origds", "ne_origds", "ltimcaid", "nemcaid")],
    )
    parts = [
        _with_spec_columns(base, members, spec)
        .filter(
            (pl.col("model_family") == spec.family)
            & pl.col("segment").is_in(list(spec.segments))
        )
        .with_columns(
            pl.lit(spec.label).alias("model"),
            pl.lit(rank, dtype=pl.Int32).alias("model_rank"),
            pl.col("segment")
            .is_in([s for s, fams in spec.segments.items() if fams & DIAGNOSIS_FAMILIES])
            .alias("takes_diagnoses"),
        )
        for rank, spec in enumerate(model_specs)
    ]
    if len(parts) > 1:
        return pl.concat(parts, how="diagonal_relaxed")
    if not parts:
        return base.clear().with_columns(
            pl.lit(None, dtype=pl.Utf8).alias("model"),
            pl.lit(None, dtype=pl.Int32).alias("model_rank"),
            pl.lit(None, dtype=pl.Boolean).alias("takes_diagnoses"),
        )
    return pl.concat(parts)


def _with_spec_columns(base: pl.DataFrame, members: pl.DataFrame, spec: ModelSpec) -> pl.DataFrame:
    """``base`` plus the spec's derived ``member_columns`` (null when their inputs are absent)."""
    if not spec.member_columns:
        return base
    return base.hstack(
        members.select(
            [
                (expr if set(expr.meta.root_names()) <= set(members.columns) else pl.lit(None))
                .alias(name)
                for name, expr in spec.member_columns.items()
            ]
        )
    )


def _apply_row_hooks(
    rows: pl.DataFrame, scored_members: pl.DataFrame, tables: object, model_specs: list[ModelSpec]
) -> pl.DataFrame:
    """``ModelSpec.adjust_rows`` on each model's own rows (ESRD new-enrollee graft divisor)."""
    for spec in model_specs:
        if spec.adjust_rows is None:
            continue
        mine = pl.col("model") == spec.label
        adjusted = spec.adjust_rows(
            rows.filter(mine), scored_members.filter(mine), tables.models[spec.model_id]
        ).select(rows.columns)
        rows = pl.concat([rows.filter(~mine), adjusted.cast(rows.schema)])
    return rows


def _scope_reason(counted: pl.DataFrame, scored_members: pl.DataFrame) -> pl.DataFrame:
    """Counted diagnoses of members no model maps diagnoses for, with their reason."""
    scope = scored_members.group_by("input_index").agg(
        pl.col("takes_diagnoses").any().alias("takes_diagnoses")
    )
    return (
        counted.join(scope, on="input_index", how="left")
        .filter(~pl.col("takes_diagnoses").fill_null(False))
        .with_columns(
            pl.when(pl.col("takes_diagnoses").is_null())
            .then(pl.lit("model_not_implemented"))
            .otherwise(pl.lit("segment_without_hccs"))
            .alias("reason")
        )
    )


def score_raw(
    members: pl.DataFrame,
    diagnoses_frame: pl.DataFrame,
    tables: object,
    detail: bool = False,
    *,
    mce_edits: bool = True,
) -> RawResult:
    """Raw CMS-HCC rows for every scorable member and every model of the year."""
    _check_members(members)
    model_specs = specs_for_year(list(tables.models_of_year))
    by_label = {spec.label: spec for spec in model_specs}
    scored_members = member_models(members, model_specs)

    counted, dropped = diagnoses.screen(
        diagnoses_frame, members.select("MemberID", "input_index"), collection_year(tables)
    )
    out_of_scope = _scope_reason(counted, scored_members)
    dropped_parts = [dropped, out_of_scope.select(diagnoses.DROPPED_COLUMNS)]
    counted = counted.join(out_of_scope.select("dx_index"), on="dx_index", how="anti")

    cc_parts, status_parts, patch_drop_parts = [], [], []
    hcc_parts, hierarchy_drop_parts, scored_parts = [], [], []
    model_rank = {spec.label: rank for rank, spec in enumerate(model_specs)}
    present = set(scored_members.get_column("model").unique().to_list())
    model_specs = [spec for spec in model_specs if spec.label in present]
    for spec in model_specs:
        model_tables = tables.models[spec.model_id]
        these_members = scored_members.filter(pl.col("model") == spec.label)
        dx = counted.select("dx_index", "input_index", "code").join(
            these_members.filter(pl.col("takes_diagnoses")).select("input_index", "age", "sex"),
            on="input_index",
            how="inner",
        )
        ccs, status = mapping.map_codes(
            dx,
            tables.mapping[spec.model_id],
            getattr(tables, "mce_age", None),
            mapping.payment_ccs(model_tables.variables),
            spec.label,
            mce_edits=mce_edits,
            per_diagnosis=False,
        )
        cc_parts.append(ccs)
        status_parts.append(status)
        distinct_ccs = ccs.select("input_index", "model", "cc").unique(subset=["input_index", "cc"])
        patched, patch_dropped = heart_patch.apply_cc_patches(distinct_ccs, spec.cc_patches)
        hccs, hierarchy_dropped = hierarchies.apply_hierarchies(patched, model_tables.hierarchies)
        patch_drop_parts.append(patch_dropped)
        hierarchy_drop_parts.append(hierarchy_dropped)
        hcc_parts.append(hccs)
        # HCCs with the member's segment: one member join for every HCC-based family
        hccs = variables.diagnosed_hccs(these_members, hccs, spec)
        model_variables = variables.build_variables(
            these_members, hccs, model_tables, spec, lazy=True, with_hccs=False
        )
        columns = None if detail else LEAN_SCORED_COLUMNS
        scored_parts.append(coefficients.attach_coefficients(model_variables, model_tables, columns))
        # the HCC family joins its coefficients on integers (no "HCC<n>" strings)
        scored_parts.append(
            coefficients.attach_hcc_coefficients(
                variables.member_hccs(these_members, hccs, spec), model_tables, variables.families.HCC, columns
            )
        )

    # every model's variables and coefficients in one query (models run in parallel)
    scored = (
        pl.concat(scored_parts, how="vertical_relaxed")
        if scored_parts
        else pl.DataFrame(schema=coefficients.SCORED_SCHEMA).lazy()
    )
    # materialized only for the trail; otherwise summed straight from the query
    if detail:
        scored = scored.collect()
    rows = (
        _apply_row_hooks(buckets.sum_buckets(scored_members, scored), scored_members, tables, model_specs)
        .sort(
            "input_index",
            pl.col("model").replace_strict(model_rank, default=None, return_dtype=pl.Int32),
        )
        .select(buckets.ROW_COLUMNS)
    )

    statuses = (
        mapping.combine_status(pl.concat(status_parts))
        if status_parts
        else pl.DataFrame(schema={"dx_index": pl.UInt32, "status_rank": pl.Int8})
    )
    mapped_out = mapping.recognize_valid_codes(
        counted.join(statuses, on="dx_index", how="left")
        .with_columns(pl.col("status_rank").fill_null(mapping.UNKNOWN))
        .filter(pl.col("status_rank") != mapping.USED),
        getattr(tables, "icd10_codes", None),
    )
    dropped_parts.append(
        mapped_out.with_columns(mapping.status_name(pl.col("status_rank")).alias("reason")).select(
            diagnoses.DROPPED_COLUMNS
        )
    )
    dropped_dx = pl.concat(dropped_parts, how="vertical_relaxed").sort("dx_index")

    reason_counts = dict(dropped_dx.group_by("reason").len().iter_rows())
    summary = {"used": counted.height - mapped_out.height}
    summary.update({reason: int(reason_counts.get(reason, 0)) for reason in DX_REASONS})

    dropped_dx = dropped_dx.select(
        "input_index", "MemberID", "DxCode", "FromDOS", "ThruDOS", "reason", "dx_index"
    )
    trail: dict[str, pl.DataFrame] = {}
    if detail:
        trail = _trail(
            tables, by_label, scored, cc_parts, hcc_parts, patch_drop_parts + hierarchy_drop_parts
        )
        trail["dropped_dx"] = dropped_dx
    return RawResult(rows=rows, dx_summary=summary, trail=trail, dropped_dx=dropped_dx)


def _labels(tables: object, by_label: dict[str, ModelSpec]) -> pl.DataFrame:
    key = "labels:" + ",".join(f"{label}={spec.model_id}" for label, spec in by_label.items())
    return derived(tables, key, lambda: _build_labels(tables, by_label))


def _build_labels(tables: object, by_label: dict[str, ModelSpec]) -> pl.DataFrame:
    frames = [
        tables.models[spec.model_id].labels.select(
            pl.lit(label).alias("model"),
            pl.col("hcc").cast(pl.Utf8).str.replace(r"^HCC", "").cast(pl.Int32),
            pl.col("label").cast(pl.Utf8),
        )
        for label, spec in by_label.items()
    ]
    return pl.concat(frames) if frames else pl.DataFrame(
        schema={"model": pl.Utf8, "hcc": pl.Int32, "label": pl.Utf8}
    )


def _concat_or_empty(frames: list[pl.DataFrame], name: str) -> pl.DataFrame:
    schema = TRAIL_SCHEMAS[name]
    frames = [f.select([pl.col(c).cast(t) for c, t in schema.items()]) for f in frames]
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def _trail(
    tables: object,
    by_label: dict[str, ModelSpec],
    scored: pl.DataFrame,
    cc_parts: list[pl.DataFrame],
    hcc_parts: list[pl.DataFrame],
    drop_parts: list[pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    codes = (
        pl.concat(cc_parts)
        .group_by("input_index", "model", pl.col("cc").alias("hcc"))
        .agg(pl.col("code").unique().sort().alias("dx_codes"))
        if cc_parts
        else None
    )
    hcc_coefficients = scored.filter(pl.col("family") == "hcc").select(
        "input_index",
        "model",
        pl.col("variable").str.extract(r"^HCC(\d+)$", 1).cast(pl.Int32).alias("hcc"),
        "coefficient_milli",
    )
    hccs_frames = []
    if hcc_parts:
        hccs_frames.append(
            pl.concat(hcc_parts)
            .join(_labels(tables, by_label), on=["model", "hcc"], how="left")
            .join(hcc_coefficients, on=["input_index", "model", "hcc"], how="left")
            .join(codes, on=["input_index", "model", "hcc"], how="left")
        )
    hccs = _concat_or_empty(hccs_frames, "hccs").sort("input_index", "model", "hcc")
    dropped = _concat_or_empty(drop_parts, "hierarchy_dropped").sort(
        "input_index", "model", "hcc", "dropped_by", nulls_last=True
    )
    interactions = _concat_or_empty(
        [
            scored.filter(pl.col("family") == "interaction").select(
                "input_index", "model", pl.col("variable").alias("name"), "label", "coefficient_milli"
            )
        ],
        "interactions",
    ).sort("input_index", "model", "name")
    return {
        "hccs": hccs,
        "hierarchy_dropped": dropped,
        "interactions": interactions,
        "variables": scored.sort("input_index", "model", "display_order"),
    }
