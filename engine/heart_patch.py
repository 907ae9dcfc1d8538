"""Stage 3: CC patches applied after mapping and before hierarchies (V28 heart patch).

CMS ``V2823T2M.TXT`` step 3.6, right before ``%&HIERMAC``::

    %*heart interaction patch;
    IF CC223 = 1 AND MAX(CC221, CC222, CC224, CC225, CC226) = 0
    THEN CC223 = 0;

CMS's 2026 Python package does the same in ``transform.py``
(``condition_cols = ['CC221','CC222','CC224','CC225','CC226']``). V24 has no
such rule. The rule is data (``engine.spec.CcPatch``) attached to the V28 spec
only, so V24 and ESRD never see it.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from engine.mapping import cc_key
from engine.memo import derived
from engine.spec import CcPatch

DROPPED_COLUMNS = ["input_index", "model", "hcc", "dropped_by", "rule"]

#: ``DROPPED_COLUMNS`` while the year's models are still told apart by ``model_rank``.
RANKED_DROPPED_SCHEMA = {
    "input_index": pl.UInt32,
    "model_rank": pl.UInt8,
    "hcc": pl.Int32,
    "dropped_by": pl.Int32,
    "rule": pl.Utf8,
}


@lru_cache(maxsize=16)
def companions(patches: tuple[CcPatch, ...]) -> pl.DataFrame:
    """``cc, rule, companion``: one row per (patched CC, CC whose presence keeps it)."""
    return pl.DataFrame(
        {
            "cc": [p.cc for p in patches],
            "rule": [p.name for p in patches],
            "companion": [list(p.requires_any) for p in patches],
        },
        schema={"cc": pl.Int32, "rule": pl.Utf8, "companion": pl.List(pl.Int32)},
    ).explode("companion", empty_as_null=False)


def rule_ccs(rules: pl.DataFrame, column: str = "cc") -> pl.Series:
    """The distinct CCs of ``rules[column]`` (``cc``: the patched CCs), once per rules frame."""
    return derived(rules, f"rule_ccs:{column}", lambda: rules.get_column(column).unique())


def apply_cc_patches(
    ccs: pl.LazyFrame, rules: pl.DataFrame
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Zero each patched CC whose companions are all absent (every model at once).

    ``ccs``: distinct ``input_index, model_rank, cc, key`` (``mapping.distinct_ccs``).
    ``rules``: ``model_rank, cc, rule, companion`` (``companions`` of each model's
    patches, tagged with its rank). Returns ``(kept, dropped)`` (lazy); ``dropped``
    has ``RANKED_DROPPED_SCHEMA`` (``dropped_by`` null, ``rule`` = patch name).
    """
    if rules.is_empty():
        return ccs, pl.LazyFrame(schema=RANKED_DROPPED_SCHEMA)
    # few CCs take part in a patch: narrow the member CCs to them before any join
    def among(column: str) -> pl.Expr:
        return pl.col("cc").is_in(rule_ccs(rules, column).implode())

    patched = ccs.filter(among("cc")).join(rules.lazy(), on=["model_rank", "cc"], how="inner")
    with_companion = patched.join(
        ccs.filter(among("companion")).select(pl.col("key").alias("companion_key")),
        left_on=cc_key(pl.col("companion")),
        right_on="companion_key",
        how="semi",
    ).select("key", "rule")
    to_drop = (
        patched.select("input_index", "model_rank", "cc", "key", "rule")
        .unique()
        .join(with_companion, on=["key", "rule"], how="anti")
    )
    kept = ccs.join(to_drop.select("key"), on="key", how="anti")
    dropped = to_drop.select(
        pl.col("input_index").cast(pl.UInt32),
        pl.col("model_rank").cast(pl.UInt8),
        pl.col("cc").alias("hcc"),
        pl.lit(None, dtype=pl.Int32).alias("dropped_by"),
        "rule",
    )
    return kept, dropped
