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

Steps 1-4 run once for all the year's models: each diagnosis carries the set of
models that map its member's codes (``diagnosis_scope``), the models' rules are
stacked with an integer ``model_rank``, and the hierarchy output is split per
model only for steps 5-7. Everything is a polars join or group-by over the whole
batch; the only Python loop is over the year's models (three at most: V28, V24,
ESRD V24) in steps 5-7, whose queries are then collected together. A batch of
one member and a batch of a million go through the same code.

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
    "invalid_on_service_date",
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
        "dx_codes": pl.List(pl.Utf8),
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
    base = [
        pl.col("input_index").cast(pl.UInt32),
        pl.col("MemberID").cast(pl.Utf8),
        pl.col("age").cast(pl.Int32),
        pl.col("sex").cast(pl.Utf8),
        pl.col("orec").cast(pl.Int32),
        "model_family",
        "segment",
        *[pl.col(c).cast(pl.Boolean) for c in ("disabl", "origds", "ne_origds", "ltimcaid", "nemcaid")],
    ]
    if not model_specs:
        return members.select(base).clear().with_columns(
            pl.lit(None, dtype=pl.Utf8).alias("model"),
            pl.lit(None, dtype=pl.Int32).alias("model_rank"),
            pl.lit(None, dtype=pl.Boolean).alias("takes_diagnoses"),
        )
    parts = [
        members.lazy()
        .select(*base, *_spec_columns(members, spec))
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
    # one query for every model: a small request pays per polars operation
    return pl.concat(parts, how="diagonal_relaxed" if len(parts) > 1 else "vertical").collect()


def _spec_columns(members: pl.DataFrame, spec: ModelSpec) -> list[pl.Expr]:
    """The spec's derived ``member_columns`` (null when their inputs are absent)."""
    return [
        (expr if set(expr.meta.root_names()) <= set(members.columns) else pl.lit(None)).alias(name)
        for name, expr in spec.member_columns.items()
    ]


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


#: What the dropped-diagnosis frame is built from.
DROPPED_INPUT_COLUMNS = [
    "dx_index", "input_index", "MemberID", "DxCode", "FromDOS", "ThruDOS", "code",
    "screen_reason", "scope_reason",
]

#: Why no model maps a counted diagnosis (``scope_reason``, an index into this tuple).
SCOPE_REASONS = ("model_not_implemented", "segment_without_hccs")

#: Every outcome of a diagnosis row as one Int8 code: the screening reasons, the scope
#: reasons, then the mapping statuses (``mapping.STATUS_PRECEDENCE``, ``used`` first).
_OUTCOMES = (*diagnoses.REASONS, *SCOPE_REASONS, *mapping.STATUS_PRECEDENCE)


def _outcome(screen_reason: pl.Expr, scope_reason: pl.Expr, status_rank: pl.Expr) -> pl.Expr:
    """A row's ``_OUTCOMES`` code: its screening reason, else its scope reason, else its status."""
    return pl.coalesce(
        screen_reason,
        scope_reason + len(diagnoses.REASONS),
        status_rank + len(diagnoses.REASONS) + len(SCOPE_REASONS),
    )


def diagnosis_scope(members: pl.DataFrame, model_specs: list[ModelSpec]) -> pl.LazyFrame:
    """Per member, which models map its diagnoses, as the diagnoses need it (lazy).

    ``MemberID, input_index, age, sex``, ``mapped_by`` (UInt8 bit set: bit ``r``
    = ``model_specs[r]`` scores the member and its segment takes diagnoses, the
    ``takes_diagnoses`` of ``member_models``) and ``scope_reason`` (Int8 index
    into ``SCOPE_REASONS`` when no model maps its diagnoses: no model scores the
    member at all, or only segments without diagnoses; else null). Both follow
    from the member's (model family, segment), looked up in ``_scope_table``.
    """
    return (
        members.lazy()
        .select(
            pl.col("MemberID").cast(pl.Utf8),
            pl.col("input_index").cast(pl.UInt32),
            pl.col("age").cast(pl.Int32),
            pl.col("sex").cast(pl.Utf8),
            pl.col("model_family").cast(pl.Utf8),
            pl.col("segment").cast(pl.Utf8),
        )
        .join(_scope_table(model_specs).lazy(), on=["model_family", "segment"], how="left")
        .select(
            "MemberID",
            "input_index",
            "age",
            "sex",
            pl.col("mapped_by").fill_null(pl.lit(0, dtype=pl.UInt8)),
            # a (family, segment) no model scores is not in the table
            pl.when(pl.col("mapped_by").is_null())
            .then(pl.lit(SCOPE_REASONS.index("model_not_implemented"), dtype=pl.Int8))
            .otherwise(pl.col("scope_reason"))
            .alias("scope_reason"),
        )
    )


#: ``_scope_table`` per list of specs (keyed by the specs' ids; the specs are kept alive here).
_SCOPE_TABLES: dict[tuple[int, ...], tuple[list[ModelSpec], pl.DataFrame]] = {}


def _scope_table(model_specs: list[ModelSpec]) -> pl.DataFrame:
    """``model_family, segment, mapped_by, scope_reason`` for every segment some model scores."""
    key = tuple(id(spec) for spec in model_specs)
    if key not in _SCOPE_TABLES:
        _SCOPE_TABLES[key] = (list(model_specs), _build_scope_table(model_specs))
    return _SCOPE_TABLES[key][1]


def _build_scope_table(model_specs: list[ModelSpec]) -> pl.DataFrame:
    if len(model_specs) > 8:
        raise ValueError("mapped_by holds at most 8 models")
    rows = [
        (spec.family, segment, (1 << rank) if families & DIAGNOSIS_FAMILIES else 0)
        for rank, spec in enumerate(model_specs)
        for segment, families in spec.segments.items()
    ]
    return (
        pl.DataFrame(
            rows,
            schema={"model_family": pl.Utf8, "segment": pl.Utf8, "mapped_by": pl.UInt8},
            orient="row",
        )
        .group_by("model_family", "segment")
        .agg(pl.col("mapped_by").sum().cast(pl.UInt8))
        .with_columns(
            pl.when(pl.col("mapped_by") == 0)
            .then(pl.lit(SCOPE_REASONS.index("segment_without_hccs"), dtype=pl.Int8))
            .otherwise(pl.lit(None, dtype=pl.Int8))
            .alias("scope_reason")
        )
    )


def _year_rules(
    tables: object, model_specs: list[ModelSpec], mce_edits: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``mapping.code_index`` of every model's ``mapping.candidate_rules`` stacked,
    with ``model_rank`` and ``model_bit``."""

    def build() -> pl.DataFrame:
        frames = [
            mapping.candidate_rules(
                tables.mapping[spec.model_id],
                getattr(tables, "mce_age", None),
                mapping.payment_ccs(tables.models[spec.model_id].variables),
                mce_edits=mce_edits,
            ).with_columns(
                pl.lit(rank, dtype=pl.UInt8).alias("model_rank"),
                pl.lit(1 << rank, dtype=pl.UInt8).alias("model_bit"),
            )
            for rank, spec in enumerate(model_specs)
        ]
        if not frames:
            return mapping.code_index(mapping.candidate_rules(
                pl.DataFrame(schema={"icd10": pl.Utf8, "cc": pl.Int32, "age_min": pl.Int32,
                                     "age_max": pl.Int32, "sex": pl.Utf8}),
                None, pl.DataFrame(schema={"cc": pl.Int32}), mce_edits=False,
            ).with_columns(
                pl.lit(0, dtype=pl.UInt8).alias("model_rank"), pl.lit(0, dtype=pl.UInt8).alias("model_bit")
            ))
        rules = pl.concat(frames, how="vertical_relaxed")
        # mapping.cc_key keeps a CC in 16 bits
        if rules.height and not rules.get_column("cc").is_between(0, 2**16 - 1).all():
            raise ValueError("mapping CC numbers must lie in 0..65535")
        return mapping.code_index(rules)

    key = "dx_rules:" + ",".join(spec.model_id for spec in model_specs) + f":mce={mce_edits}"
    return derived(tables, key, build)


def _year_patches(tables: object, model_specs: list[ModelSpec]) -> pl.DataFrame:
    """``heart_patch.companions`` of every model, with ``model_rank``."""

    def build() -> pl.DataFrame:
        frames = [
            heart_patch.companions(spec.cc_patches).with_columns(
                pl.lit(rank, dtype=pl.UInt8).alias("model_rank")
            )
            for rank, spec in enumerate(model_specs)
            if spec.cc_patches
        ]
        if not frames:
            return pl.DataFrame(
                schema={"cc": pl.Int32, "rule": pl.Utf8, "companion": pl.Int32, "model_rank": pl.UInt8}
            )
        return pl.concat(frames)

    key = "cc_patches:" + ",".join(spec.model_id for spec in model_specs)
    return derived(tables, key, build)


def _year_pairs(tables: object, model_specs: list[ModelSpec]) -> pl.DataFrame:
    """``hierarchies.pairs`` of every model, with ``model_rank``."""

    def build() -> pl.DataFrame:
        frames = [
            hierarchies.pairs(tables.models[spec.model_id].hierarchies).with_columns(
                pl.lit(rank, dtype=pl.UInt8).alias("model_rank")
            )
            for rank, spec in enumerate(model_specs)
        ]
        if not frames:
            return pl.DataFrame(
                schema={"dropped_by": pl.Int32, "cc": pl.Int32, "model_rank": pl.UInt8}
            )
        return pl.concat(frames)

    key = "hierarchy_pairs:" + ",".join(spec.model_id for spec in model_specs)
    return derived(tables, key, build)


def _model_label(model_specs: list[ModelSpec]) -> pl.Expr:
    """``model_rank`` -> the ``model`` label (``V28`` ...)."""
    return pl.col("model_rank").replace_strict(
        {rank: spec.label for rank, spec in enumerate(model_specs)}, return_dtype=pl.Utf8
    )


@dataclass
class _MappedDiagnoses:
    """What steps 1-4 hand to the variables, the summary and the trail."""

    #: ``input_index, model_rank, cc``: payment HCCs after the patches and hierarchies.
    hccs: pl.DataFrame
    #: every diagnosis row not used, in ``dx_index`` order (``RawResult.dropped_dx``).
    dropped_dx: pl.DataFrame
    reason_counts: dict[str, int]
    used: int
    #: with detail: kept (member, model, CC, code) rows and the patch/hierarchy drops.
    trail_ccs: pl.DataFrame | None = None
    trail_drops: pl.DataFrame | None = None


def _map_diagnoses(
    members: pl.DataFrame,
    diagnoses_frame: pl.DataFrame,
    tables: object,
    model_specs: list[ModelSpec],
    *,
    detail: bool,
    mce_edits: bool,
) -> _MappedDiagnoses:
    """Diagnoses -> edits -> heart patch -> hierarchies for every model of the year at once.

    The models are told apart by an integer ``model_rank`` (index into
    ``model_specs``), not by per-model frames. Each stage's output that later
    steps read more than once is materialized: polars' common-plan caching does
    not catch them all (measured at 100k: one fused query took ~3.5x the CPU; the
    patch fused into the hierarchy query ~1.8x).
    """
    screened = diagnoses.screen_query(
        diagnoses_frame,
        diagnosis_scope(members, model_specs),
        collection_year(tables),
        getattr(tables, "dated_codes", None),
    ).collect()
    in_scope = pl.col("screen_reason").is_null() & pl.col("scope_reason").is_null()
    codes, rules = _year_rules(tables, model_specs, mce_edits)
    candidates = mapping.candidates(
        screened.lazy().filter(in_scope).select(
            "dx_index", "input_index", "code", "age", "sex", "mapped_by"
        ),
        codes.lazy(),
        rules.lazy(),
    ).collect()
    ccs = mapping.distinct_ccs(candidates.lazy())
    patch_rules = _year_patches(tables, model_specs)
    if candidates.get_column("cc").is_in(heart_patch.rule_ccs(patch_rules).implode()).any():
        patched, patch_dropped = pl.collect_all(
            heart_patch.apply_cc_patches(ccs.collect().lazy(), patch_rules)
        )
    else:
        # no CC that a patch can zero (most small requests; a large batch always has
        # one): nothing to patch, and the distinct CCs feed the hierarchy query
        # directly instead of being materialized first (one query less)
        patched, patch_dropped = ccs, pl.LazyFrame(schema=heart_patch.RANKED_DROPPED_SCHEMA)
    hccs, hierarchy_dropped = hierarchies.apply_hierarchies(
        patched.lazy(), _year_pairs(tables, model_specs)
    )
    # every row that is not used: screened out, out of scope, or no kept CC
    not_used = (
        screened.lazy()
        .select(DROPPED_INPUT_COLUMNS)
        .join(mapping.combine_status(candidates.lazy()), on="dx_index", how="left", maintain_order="left")
        .with_columns(
            pl.when(in_scope)
            .then(pl.col("status_rank").fill_null(pl.lit(mapping.UNKNOWN, dtype=pl.Int8)))
            .alias("status_rank")
        )
        .filter((pl.col("status_rank") != mapping.USED).fill_null(True))
    )
    not_used = mapping.recognize_valid_codes(not_used, getattr(tables, "icd10_codes", None)).with_columns(
        _outcome(pl.col("screen_reason"), pl.col("scope_reason"), pl.col("status_rank")).alias("outcome")
    )
    queries = [hccs, not_used]
    if detail:
        trail_ccs = candidates.lazy().filter(pl.col("kept")).select(
            "input_index", _model_label(model_specs).alias("model"), "cc", "code"
        )
        trail_drops = pl.concat([patch_dropped.lazy(), hierarchy_dropped]).with_columns(
            _model_label(model_specs).alias("model")
        )
        queries += [trail_ccs, trail_drops]
    collected = pl.collect_all(queries)

    not_used = collected[1]
    reason_counts = {
        _OUTCOMES[outcome]: count for outcome, count in not_used.group_by("outcome").len().iter_rows()
    }
    dropped_dx = not_used.select(
        "input_index",
        "MemberID",
        "DxCode",
        "FromDOS",
        "ThruDOS",
        pl.col("outcome").replace_strict(dict(enumerate(_OUTCOMES)), return_dtype=pl.Utf8).alias("reason"),
        "dx_index",
    )
    return _MappedDiagnoses(
        hccs=collected[0],
        dropped_dx=dropped_dx,
        reason_counts=reason_counts,
        used=screened.height - not_used.height,
        trail_ccs=collected[2] if detail else None,
        trail_drops=collected[3] if detail else None,
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
    models = getattr(tables, "models", {}) or {}
    model_specs = specs_for_year(
        list(tables.models_of_year),
        {m: getattr(t, "identity", None) for m, t in models.items()},
    )
    by_label = {spec.label: spec for spec in model_specs}
    scored_members = member_models(members, model_specs)

    mapped = _map_diagnoses(
        members, diagnoses_frame, tables, model_specs, detail=detail, mce_edits=mce_edits
    )
    hccs_by_rank = mapped.hccs.partition_by("model_rank", as_dict=True, include_key=False)
    # one split of the members by model (not a filter per model)
    members_by_model = scored_members.partition_by("model", as_dict=True)

    hcc_parts, scored_parts = [], []
    model_rank = {spec.label: rank for rank, spec in enumerate(model_specs)}
    model_specs = [spec for spec in model_specs if (spec.label,) in members_by_model]
    for spec in model_specs:
        model_hccs = hccs_by_rank.get((model_rank[spec.label],))
        if model_hccs is None:
            model_hccs = mapped.hccs.clear().drop("model_rank")
        hcc_parts.append(
            model_hccs.select(
                "input_index", pl.lit(spec.label).alias("model"), pl.col("cc").alias("hcc")
            )
        )
    # HCCs with the member's segment: one member join for every HCC-based family, for
    # every model in one query (none without HCCs: build_variables then leaves those
    # families out)
    with_hccs = [i for i, hccs in enumerate(hcc_parts) if hccs.height]
    diagnosed = pl.collect_all(
        [
            variables.diagnosed_hccs_query(
                members_by_model[(model_specs[i].label,)], hcc_parts[i], model_specs[i]
            )
            for i in with_hccs
        ]
    )
    model_hccs_of = dict(zip(with_hccs, diagnosed))
    for i, spec in enumerate(model_specs):
        model_tables = tables.models[spec.model_id]
        these_members = members_by_model[(spec.label,)]
        has_hccs = i in model_hccs_of
        hccs = model_hccs_of.get(i, hcc_parts[i])
        model_variables = variables.build_variables(
            these_members, hccs, model_tables, spec, lazy=True, with_hccs=False
        )
        columns = None if detail else LEAN_SCORED_COLUMNS
        scored_parts.append(coefficients.attach_coefficients(model_variables, model_tables, columns))
        if has_hccs:
            # the HCC family joins its coefficients on integers (no "HCC<n>" strings)
            scored_parts.append(
                coefficients.attach_hcc_coefficients(
                    variables.member_hccs(these_members, hccs, spec),
                    model_tables,
                    variables.families.HCC,
                    columns,
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
        .lazy()
        .sort(
            "input_index",
            pl.col("model").replace_strict(model_rank, default=None, return_dtype=pl.Int32),
        )
        .select(buckets.ROW_COLUMNS)
        .collect()
    )

    summary = {"used": mapped.used}
    summary.update({reason: int(mapped.reason_counts.get(reason, 0)) for reason in DX_REASONS})

    trail: dict[str, pl.DataFrame] = {}
    if detail:
        trail = _trail(tables, by_label, scored, [mapped.trail_ccs], hcc_parts, [mapped.trail_drops])
        trail["dropped_dx"] = mapped.dropped_dx
    return RawResult(rows=rows, dx_summary=summary, trail=trail, dropped_dx=mapped.dropped_dx)


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
    # a dropped HCC lists the codes that produced it, as a kept one does
    drop_parts = [
        part.join(codes, on=["input_index", "model", "hcc"], how="left")
        if codes is not None else part.with_columns(pl.lit(None, pl.List(pl.Utf8)).alias("dx_codes"))
        for part in (p.rename({"cc": "hcc"}) if "cc" in p.columns else p for p in drop_parts)
    ]
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
