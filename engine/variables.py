"""Stage 5: the model's variables for each member, as one long frame.

Each family is built only for the segments whose regression lists it
(``engine.spec``), and every name comes from the reference tables:

* age/sex cell (``kind = age_sex``, e.g. ``M35_44``): ``AGESEXV2.TXT`` bands,
  parsed from the variable names; plain age on February 1 (the V24
  ``AGEF=64 & OREC='0'`` recode is gone from CMS's V24 programs since V2422P2M
  and is absent from V2823T2M, so continuing enrollees use the plain age).
* new-enrollee cell (``kind = ne_cell``, e.g. ``NMCAID_NORIGDIS_NEF65``):
  ``V2823T2M.TXT`` step 3.6 (``NE_ORIGDS = (AGEF>=65)*(OREC='1')``,
  ``NMCAID_NORIGDIS = (NEMCAID <=0 and NE_ORIGDS <=0)`` ...) with AGESEXV2's NE
  age rule: age 64 with OREC 0 uses the 65 cell. ``ne_origds`` comes from the
  members frame.
* ``OriginallyDisabled_Female/Male`` (aged community), ``LTIMCAID`` and
  ``ORIGDS`` (institutional): boolean member expressions in ``engine.spec``.
* HCCs: ``HCC<n>`` for every payment HCC left after edits, patches and hierarchies.
* interactions (``interactions.csv``: ``interaction,term_1,term_2``): a term is a
  diagnosis group (``groups.csv``), an ``HCC<n>``, or a member flag
  (``DISABL``); an interaction fires when both terms are present
  (CMS: ``DIABETES_HF_V28 = DIABETES_V28*HF_V28``, ``DISABLED_HF_V28 = DISABL*HF_V28``).
* payment-HCC counts (``kind = count``: ``D1``..``D9``, ``D10P``): CMS
  ``HCC_pymt = sum(of CHPYMT(*)); D10P=(HCC_pymt>=10)``, counted after edits,
  the heart patch and hierarchies. No variable when a member has no HCC.

New enrollees (NE, SNPNE) get only their cell: their segments list no HCC,
interaction or count family.
"""

from __future__ import annotations

from functools import cache

import polars as pl

from engine import spec as families
from engine.cells import band_high, name_parts, spread_over_ages
from engine.keys import member_keys
from engine.memo import derived
from engine.spec import ModelSpec

MAX_HCC_COUNT = 1000
#: The variables frame's columns and types (``engine.coefficients`` extends them).
VARIABLE_SCHEMA = {
    "input_index": pl.UInt32,
    "model": pl.Utf8,
    "segment": pl.Utf8,
    "coef_segment": pl.Utf8,
    "variable": pl.Utf8,
    "family": pl.Utf8,
}
VARIABLE_COLUMNS = list(VARIABLE_SCHEMA)

_AGE_SEX_NAME = r"^([FM])(\d+)_(\d+|GT)$"
_NE_CELL_NAME = r"^(N?MCAID)_(N?ORIGDIS)_NE([FM])(\d+)(?:_(\d+|GT))?$"
_COUNT_NAME = r"^D(\d+)(P?)$"


def age_sex_cells(variables: pl.DataFrame) -> pl.DataFrame:
    return derived(variables, "age_sex_cells", lambda: _age_sex_cells(variables))


def _age_sex_cells(variables: pl.DataFrame) -> pl.DataFrame:
    """``sex, age, variable`` for every age 0..MAX_AGE, from the ``age_sex`` variables."""
    parsed = (
        name_parts(variables, "age_sex", _AGE_SEX_NAME)
        .select(
            "variable",
            pl.col("1").alias("sex"),
            pl.col("2").cast(pl.Int32).alias("age_low"),
            band_high(pl.col("2"), pl.col("3")).alias("age_high"),
        )
        .drop_nulls()
    )
    return spread_over_ages(parsed).select("sex", "age", "variable")


def ne_cells(variables: pl.DataFrame) -> pl.DataFrame:
    return derived(variables, "ne_cells", lambda: _ne_cells(variables))


def _ne_cells(variables: pl.DataFrame) -> pl.DataFrame:
    """``nemcaid, ne_origds, sex, ne_age, variable`` from the ``ne_cell`` variables."""
    parsed = (
        name_parts(variables, "ne_cell", _NE_CELL_NAME)
        .filter(pl.col("1").is_not_null())
        .select(
            "variable",
            (pl.col("1") == "MCAID").alias("nemcaid"),
            (pl.col("2") == "ORIGDIS").alias("ne_origds"),
            pl.col("3").alias("sex"),
            pl.col("4").cast(pl.Int32).alias("age_low"),
            band_high(pl.col("4"), pl.col("5")).alias("age_high"),
        )
    )
    return spread_over_ages(parsed, "ne_age").select(
        "nemcaid", "ne_origds", "sex", "ne_age", "variable"
    )


def count_cells(variables: pl.DataFrame) -> pl.DataFrame:
    return derived(variables, "count_cells", lambda: _count_cells(variables))


def _count_cells(variables: pl.DataFrame) -> pl.DataFrame:
    """``hcc_count, variable`` from the ``count`` variables (``D10P`` = 10 or more)."""
    parsed = (
        name_parts(variables, "count", _COUNT_NAME)
        .filter(pl.col("1").is_not_null())
        .select(
            "variable",
            pl.col("1").cast(pl.Int32).alias("low"),
            pl.when(pl.col("2") == "P")
            .then(pl.lit(MAX_HCC_COUNT))
            .otherwise(pl.col("1").cast(pl.Int32))
            .alias("high"),
        )
    )
    counts = pl.DataFrame(
        {"hcc_count": pl.int_range(1, MAX_HCC_COUNT + 1, eager=True).cast(pl.Int32)}
    )
    return (
        parsed.join(counts, how="cross")
        .filter(pl.col("hcc_count").is_between(pl.col("low"), pl.col("high")))
        .select("hcc_count", "variable")
    )


def _tag(frame: pl.DataFrame, family: str) -> pl.DataFrame:
    return frame.select(_tag_columns(family))


@cache
def _tag_columns(family: str) -> tuple[pl.Expr, ...]:
    # built once per family: building expressions costs about as much as running
    # them on one member, and every call tags several families per model
    return (
        pl.col("input_index").cast(pl.UInt32),
        pl.col("model"),
        pl.col("segment").cast(pl.Utf8),  # an Enum in ``_diagnosed_hccs``
        pl.col("segment").cast(pl.Utf8).alias("coef_segment"),
        pl.col("variable").cast(pl.Utf8),
        pl.lit(family).alias("family"),
    )


def _in_family(member_models: pl.DataFrame, model_spec: ModelSpec, family: str) -> pl.DataFrame:
    in_family = derived(
        model_spec,
        "in_family:" + family,
        lambda: pl.col("segment").is_in(model_spec.segments_with(family)),
    )
    return member_models.filter(in_family)


def _normalized_groups(groups: pl.DataFrame) -> pl.DataFrame:
    return derived(groups, "normalized_groups", lambda: groups.select(
        pl.col("group").cast(pl.Utf8).str.strip_chars(),
        pl.col("hcc").cast(pl.Utf8).str.strip_chars().str.replace(r"^HCC", "").cast(pl.Int32),
    ).unique())


def interaction_tokens(
    members: pl.DataFrame,
    hccs: pl.DataFrame,
    groups: pl.DataFrame,
    model_spec: ModelSpec,
    terms: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Terms present per member and model: ``HCC<n>``, group names, member flags.

    ``terms`` (``_interaction_terms``): when given, only HCCs and groups that some
    interaction names are turned into tokens (the others can never fire).
    """
    if terms is not None:
        hccs_as_terms = hccs.filter(pl.col("hcc").is_in(terms.get_column("hcc").implode()))
        group_table = _normalized_groups(groups).filter(
            pl.col("group").is_in(terms.get_column("term").implode())
        )
    else:
        hccs_as_terms, group_table = hccs, _normalized_groups(groups)
    if isinstance(hccs, pl.LazyFrame):
        group_table = group_table.lazy()
    hcc_tokens = hccs_as_terms.select(
        "input_index", "model", (pl.lit("HCC") + pl.col("hcc").cast(pl.Utf8)).alias("token")
    )
    group_tokens = (
        hccs.join(group_table, on="hcc", how="inner")
        .select("input_index", "model", pl.col("group").alias("token"))
        .unique()
    )
    flag_tokens = [
        members.filter(pl.col(column)).select(
            "input_index", "model", pl.lit(term).alias("token")
        )
        for term, column in model_spec.interaction_member_terms.items()
    ]
    return pl.concat([hcc_tokens, group_tokens, *flag_tokens], how="vertical_relaxed")


def _fire(tokens: pl.DataFrame, interactions: pl.DataFrame) -> pl.DataFrame:
    """``input_index, model, variable`` of the interactions whose two terms are tokens."""
    if isinstance(tokens, pl.LazyFrame):
        interactions = interactions.lazy()
    return (
        tokens.join(interactions, left_on="token", right_on="term_1", how="inner")
        .join(
            tokens.rename({"token": "term_2"}),
            on=["input_index", "model", "term_2"],
            how="semi",
        )
        .select("input_index", "model", "variable")
        .unique()
    )


def _coded_interactions(table: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Interaction terms as integer ids (built once per table).

    Returns ``(hcc_ids, coded, term_id)``: ``hcc, tid`` for the terms spelled
    ``HCC<n>`` exactly as ``interaction_tokens`` spells an HCC token; ``variable,
    vid, t1, t2`` (the interaction table with its name and terms as ids); term -> id.
    """
    return derived(table, "coded_interactions", lambda: _build_coded_interactions(table))


def _build_coded_interactions(
    table: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    interactions, _ = _interaction_table(table)
    terms = _interaction_terms(table).filter(pl.col("term").is_not_null())
    terms = terms.sort("term").with_row_index("tid")
    term_id = dict(zip(terms.get_column("term").to_list(), terms.get_column("tid").to_list()))
    hcc_ids = terms.filter(
        pl.col("hcc").is_not_null()
        & (pl.col("term") == pl.lit("HCC") + pl.col("hcc").cast(pl.Utf8))
    ).select("hcc", pl.col("tid").cast(pl.UInt32))
    coded = interactions.select(
        "variable",
        pl.col("variable").rank("dense").cast(pl.UInt32).alias("vid"),
        *[
            pl.col(c).replace_strict(term_id, default=None, return_dtype=pl.UInt32).alias(t)
            for c, t in (("term_1", "t1"), ("term_2", "t2"))
        ],
    )
    return hcc_ids, coded, term_id


_InteractionIds = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, int]]


def _interaction_ids(model_tables: object) -> _InteractionIds:
    """What ``_fire_coded`` joins against, built once per model table (a small request
    would otherwise pay an eager query per constant frame on every call).

    ``(hcc_ids, group_ids, term_pairs, names, term_id)``: ``hcc, tid`` of the
    ``HCC<n>`` terms; ``hcc, tid`` of the group terms (``groups.csv``); ``vid, t1,
    t2``; ``vid, variable``; term -> id.
    """

    def build() -> _InteractionIds:
        hcc_ids, coded, term_id = _coded_interactions(model_tables.interactions)
        group_ids = (
            _normalized_groups(model_tables.groups)
            .join(
                pl.DataFrame(
                    {"group": list(term_id), "tid": list(term_id.values())},
                    schema={"group": pl.Utf8, "tid": pl.UInt32},
                ),
                on="group",
                how="inner",
            )
            .select("hcc", "tid")
        )
        term_pairs = coded.drop("variable")
        names = coded.select("vid", "variable").unique()
        return hcc_ids, group_ids, term_pairs, names, term_id

    return derived(model_tables, "interaction_ids", build)


def _fire_coded(
    members: pl.LazyFrame,
    hccs: pl.LazyFrame,
    model_tables: object,
    model_spec: ModelSpec,
    keys: list[str],
    model: str | None = None,
) -> pl.LazyFrame:
    """``_fire(interaction_tokens(...))`` plus the member's ``segment``, for a table
    without nested interactions.

    Same tokens (HCCs, groups and member flags that some interaction names), as
    integer term ids; same firing rule (both terms present for the member).
    ``members`` and ``hccs`` carry ``segment``; every token keeps it, so the fired
    rows need no join back to the members. ``model``: the one model's name when
    ``keys`` is ``input_index`` alone; the tokens then carry no string at all (the
    name is a constant and interactions are ids until they have fired).
    """
    hcc_ids, group_ids, term_pairs, names, term_id = _interaction_ids(model_tables)
    single_model = keys == ["input_index"] and model is not None
    member_columns = ["input_index", *([] if single_model else ["model"]), "segment"]
    token_columns = [*member_columns, "tid"]
    parts = [
        hccs.join(hcc_ids.lazy(), on="hcc", how="inner").select(token_columns),
        # two HCCs of one group give the group token twice: harmless, the fired
        # rows are made unique below
        hccs.join(group_ids.lazy(), on="hcc", how="inner").select(token_columns),
    ]
    for term, column in model_spec.interaction_member_terms.items():
        if term in term_id:  # a flag no interaction names can never fire
            parts.append(
                members.filter(pl.col(column)).select(
                    *member_columns, pl.lit(term_id[term], dtype=pl.UInt32).alias("tid")
                )
            )
    tokens = pl.concat(parts, how="vertical_relaxed")
    fired = tokens.join(
        term_pairs.lazy(), left_on="tid", right_on="t1", how="inner"
    )
    if keys == ["input_index"]:
        # one integer key (member, second term) instead of two columns
        def key(term: str) -> pl.Expr:
            return (pl.col("input_index").cast(pl.UInt64) * (1 << 32) + pl.col(term)).alias("_k")

        fired = fired.with_columns(key("t2")).join(tokens.select(key("tid")), on="_k", how="semi")
    else:
        fired = fired.join(
            tokens.select(*keys, pl.col("tid").alias("t2")), on=[*keys, "t2"], how="semi"
        )
    fired = (
        fired.select(*member_columns, "vid")
        .unique()
        .join(names.lazy(), on="vid", how="inner")
    )
    if single_model:
        fired = fired.with_columns(pl.lit(model, dtype=pl.Utf8).alias("model"))
    return fired.select("input_index", "model", "segment", "variable")


def _interaction_terms(table: pl.DataFrame) -> pl.DataFrame:
    """``term, hcc``: every term of the interaction table (``hcc`` set for ``HCC<n>``)."""

    def build() -> pl.DataFrame:
        interactions, _ = _interaction_table(table)
        terms = pl.concat(
            [interactions.get_column("term_1"), interactions.get_column("term_2")]
        ).unique()
        return pl.DataFrame({"term": terms}).with_columns(
            pl.col("term").str.extract(r"^HCC(\d+)$", 1).cast(pl.Int32).alias("hcc")
        )

    return derived(table, "interaction_terms", build)


def _interaction_table(table: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """``variable, term_1, term_2`` (trimmed) and how many rows nest another interaction."""

    def build() -> tuple[pl.DataFrame, int]:
        interactions = table.select(
            pl.col("interaction").cast(pl.Utf8).str.strip_chars().alias("variable"),
            pl.col("term_1").cast(pl.Utf8).str.strip_chars(),
            pl.col("term_2").cast(pl.Utf8).str.strip_chars(),
        )
        nested = interactions.filter(
            pl.col("term_1").is_in(interactions["variable"].implode())
            | pl.col("term_2").is_in(interactions["variable"].implode())
        ).height
        return interactions, nested

    return derived(table, "interaction_table", build)


def _lazy_inputs(member_models: pl.DataFrame, hccs: pl.DataFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Members and HCCs as lazy frames with the engine's key and value types."""
    members = member_models.lazy().with_columns(
        pl.col("input_index").cast(pl.UInt32), pl.col("age").cast(pl.Int32)
    )
    hccs = hccs.lazy().with_columns(
        pl.col("input_index").cast(pl.UInt32), pl.col("hcc").cast(pl.Int32)
    )
    return members, hccs


def _diagnosis_segments(model_spec: ModelSpec) -> list[str]:
    return derived(model_spec, "diagnosis_segments", lambda: sorted(
        {s for family in families.DIAGNOSIS_FAMILIES for s in model_spec.segments_with(family)}
    ))


def _diagnosed_hccs(
    members: pl.LazyFrame, hccs: pl.LazyFrame, model_spec: ModelSpec, keys: list[str]
) -> pl.LazyFrame:
    """``hccs`` plus the member's ``segment``, for members whose segment takes diagnoses.

    The segment is an Enum of the diagnosis segments: the join then gathers a byte
    per HCC row instead of a string (string payload costs more than the join itself).
    """
    segments = _diagnosis_segments(model_spec)
    diagnosed = members.filter(pl.col("segment").is_in(segments)).select(
        "input_index", "model", pl.col("segment").cast(pl.Enum(segments))
    )
    return hccs.join(
        diagnosed.drop("model") if keys == ["input_index"] else diagnosed, on=keys, how="inner"
    )


def diagnosed_hccs(
    member_models: pl.DataFrame, hccs: pl.DataFrame, model_spec: ModelSpec
) -> pl.DataFrame:
    """``input_index, model, hcc, segment``: each HCC with its member's segment.

    The one member join that the HCC, interaction and count families all need;
    ``build_variables`` and ``member_hccs`` accept this frame as their ``hccs``
    and then skip the join (each family keeps its segments with a filter).
    """
    return diagnosed_hccs_query(member_models, hccs, model_spec).collect()


def diagnosed_hccs_query(
    member_models: pl.DataFrame, hccs: pl.DataFrame, model_spec: ModelSpec
) -> pl.LazyFrame:
    """``diagnosed_hccs`` as a lazy query (to collect several models' at once)."""
    keys = member_keys(member_models, hccs)
    members, lazy_hccs = _lazy_inputs(member_models, hccs)
    if keys == ["input_index"] and hccs.height:
        # one model: its name is put back as a constant instead of gathered per row
        model = hccs.get_column("model")[0]
        return _diagnosed_hccs(members, lazy_hccs.drop("model"), model_spec, keys).with_columns(
            pl.lit(model, dtype=pl.Utf8).alias("model")
        )
    return _diagnosed_hccs(members, lazy_hccs, model_spec, keys)


def _family_hccs(diagnosed_hccs: pl.LazyFrame, model_spec: ModelSpec, family: str) -> pl.LazyFrame:
    """The rows of ``_diagnosed_hccs`` whose member's segment lists ``family``."""
    segments = model_spec.segments_with(family)
    if segments == _diagnosis_segments(model_spec):
        return diagnosed_hccs  # every diagnosed segment lists it (CMS-HCC): nothing to drop
    return diagnosed_hccs.filter(pl.col("segment").is_in(segments))


def _members_and_diagnosed_hccs(
    member_models: pl.DataFrame, hccs: pl.DataFrame, model_spec: ModelSpec, keys: list[str]
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Lazy members and ``_diagnosed_hccs`` (no join when ``hccs`` is already ``diagnosed_hccs``)."""
    members, lazy_hccs = _lazy_inputs(member_models, hccs)
    if "segment" in hccs.columns:
        return members, lazy_hccs
    return members, _diagnosed_hccs(members, lazy_hccs, model_spec, keys)


def member_hccs(
    member_models: pl.DataFrame, hccs: pl.DataFrame, model_spec: ModelSpec
) -> pl.LazyFrame:
    """``input_index, model, hcc, segment``: the HCC family's HCCs (lazy), as in ``build_variables``.

    ``hccs`` as in ``build_variables`` (or from ``diagnosed_hccs``).
    """
    keys = member_keys(member_models, hccs)
    _, diagnosed = _members_and_diagnosed_hccs(member_models, hccs, model_spec, keys)
    return _family_hccs(diagnosed, model_spec, families.HCC)


def build_variables(
    member_models: pl.DataFrame,
    hccs: pl.DataFrame,
    model_tables: object,
    model_spec: ModelSpec,
    *,
    lazy: bool = False,
    with_hccs: bool = True,
) -> pl.DataFrame | pl.LazyFrame:
    """All variables of one model for its members (a LazyFrame when ``lazy``).

    ``with_hccs=False`` leaves out the HCC family (the caller scores it from
    ``member_hccs`` with ``engine.coefficients.attach_hcc_coefficients``).

    ``member_models``: ``input_index, model, segment, age, sex, orec, disabl,
    origds, ne_origds, ltimcaid, nemcaid`` (members scored by this model).
    ``hccs``: ``input_index, model, hcc`` after hierarchies, or ``diagnosed_hccs``
    of them (with the member's ``segment``: no member join here). Returns
    ``VARIABLE_COLUMNS`` (``coef_segment`` = the segment whose coefficients apply).
    """
    variables_table = model_tables.variables
    keys = member_keys(member_models, hccs)
    # One lazy query for every family, collected once: far fewer eager round trips
    # (what a small request pays for) and no intermediate frames.
    members, diagnosed_hccs = _members_and_diagnosed_hccs(member_models, hccs, model_spec, keys)
    parts: list[pl.LazyFrame] = []

    # A family that no member's segment lists, or that is built from HCCs when there
    # are none, yields no rows: its query is left out. A small request (one member,
    # one segment) then plans and runs a few joins instead of all of them; a large
    # batch has every segment and builds every family as before.
    present = set(member_models.get_column("segment").unique().to_list())
    has_hccs = hccs.height > 0

    def wanted(family: str) -> bool:
        return not present.isdisjoint(model_spec.segments_with(family))

    if wanted(families.AGE_SEX):
        cell_members = _in_family(members, model_spec, families.AGE_SEX)
        parts.append(
            _tag(
                cell_members.join(
                    age_sex_cells(variables_table).lazy(), on=["sex", "age"], how="inner"
                ),
                families.AGE_SEX,
            )
        )

    if wanted(families.NE_CELL):
        ne_members = _in_family(members, model_spec, families.NE_CELL).with_columns(
            pl.when((pl.col("age") == 64) & (pl.col("orec") == 0))
            .then(pl.lit(65, dtype=pl.Int32))
            .otherwise(pl.col("age"))
            .alias("ne_age")
        )
        parts.append(
            _tag(
                ne_members.join(
                    ne_cells(variables_table).lazy(),
                    on=["nemcaid", "ne_origds", "sex", "ne_age"],
                    how="inner",
                ),
                families.NE_CELL,
            )
        )

    for family, flags in model_spec.flag_variables.items():
        if not wanted(family):
            continue
        flagged = _in_family(members, model_spec, family)
        for variable, condition in flags.items():
            parts.append(
                _tag(
                    flagged.filter(condition).with_columns(pl.lit(variable).alias("variable")),
                    family,
                )
            )

    if with_hccs and has_hccs and wanted(families.HCC):
        parts.append(
            _tag(
                _family_hccs(diagnosed_hccs, model_spec, families.HCC).with_columns(
                    (pl.lit("HCC") + pl.col("hcc").cast(pl.Utf8)).alias("variable")
                ),
                families.HCC,
            )
        )

    _, nested = _interaction_table(model_tables.interactions)
    if wanted(families.INTERACTION) and (
        has_hccs or nested or _fires_on_member_terms_alone(model_tables.interactions, model_spec)
    ):
        parts.append(
            _tag(
                _interaction_variables(
                    member_models, members, diagnosed_hccs, model_tables, model_spec, keys
                ),
                families.INTERACTION,
            )
        )

    if has_hccs and wanted(families.COUNT):
        counted = (
            _family_hccs(diagnosed_hccs, model_spec, families.COUNT)
            .group_by(keys)
            .agg(
                pl.len().cast(pl.Int32).clip(upper_bound=MAX_HCC_COUNT).alias("hcc_count"),
                # one segment (and model) per member key
                pl.col("segment").first(),
                *([pl.col("model").first()] if keys == ["input_index"] else []),
            )
            .join(count_cells(variables_table).lazy(), on="hcc_count", how="inner")
        )
        parts.append(_tag(counted, families.COUNT))

    if model_spec.extra_variables is not None:
        parts.append(
            model_spec.extra_variables(members.collect(), model_tables)
            .select(VARIABLE_COLUMNS)
            .unique()
            .lazy()
        )

    # Each family yields distinct (member, model, variable) rows by construction (one
    # cell, distinct HCCs, unique interactions, one count), so no global de-duplication.
    variables = (
        pl.concat(parts, how="vertical_relaxed")
        if parts
        else pl.LazyFrame(schema=VARIABLE_SCHEMA)  # a call that builds no family
    )
    return variables if lazy else variables.collect()



def _fires_on_member_terms_alone(table: pl.DataFrame, model_spec: ModelSpec) -> bool:
    """Whether some interaction's two terms are both member flags (fires without an HCC)."""
    flags = sorted(model_spec.interaction_member_terms)

    def build() -> bool:
        interactions, _ = _interaction_table(table)
        return bool(
            interactions.filter(pl.col("term_1").is_in(flags) & pl.col("term_2").is_in(flags)).height
        )

    return derived(table, "fires_on_member_terms_alone:" + ",".join(flags), build)


def _interaction_variables(
    member_models: pl.DataFrame,
    members: pl.LazyFrame,
    diagnosed_hccs: pl.LazyFrame,
    model_tables: object,
    model_spec: ModelSpec,
    keys: list[str],
) -> pl.LazyFrame:
    """``input_index, model, segment, variable`` of the interactions that fire."""
    interaction_members = _in_family(members, model_spec, families.INTERACTION)
    interaction_hccs = _family_hccs(diagnosed_hccs, model_spec, families.INTERACTION)
    interactions, nested = _interaction_table(model_tables.interactions)
    if not nested:
        # the usual case (CMS-HCC V24/V28): terms as small integer ids, no string joins
        fired = _fire_coded(
            interaction_members,
            interaction_hccs,
            model_tables,
            model_spec,
            keys,
            member_models.get_column("model")[0] if member_models.height else None,
        )
    else:
        interaction_hccs = interaction_hccs.drop("segment")
        tokens = interaction_tokens(
            interaction_members,
            interaction_hccs,
            model_tables.groups,
            model_spec,
            _interaction_terms(model_tables.interactions),
        ).collect()
        fired = _fire(tokens, interactions)
    # An interaction can be a term of another (ESRD V24 V24_Interactions.csv:
    # NONAGED_gSubUseDs_gPsych = NonAged x gSubUseDs_gPsych_V24): fired names become
    # tokens for another pass until nothing new fires (passes, not members).
    # Only needed when the table nests interactions (never in CMS-HCC V24/V28).
    for _ in range(interactions.height if nested else 0):
        more = _fire(pl.concat([tokens, fired.rename({"variable": "token"})]), interactions)
        if more.height == fired.height:
            break
        fired = more
    if nested:
        fired = fired.lazy().join(interaction_members.select(*keys, "segment"), on=keys)
    return fired
