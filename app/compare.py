"""Year over year: two scored runs joined by MemberID (`raf compare a b`, job compare).

Typical use: PY2026 final (2025 dates of service) as A against PY2027 to date
(2026 dates) as B. Per member: both active scores and the delta B - A (exact, in
millionths), the segment in each run, and the HCCs gained and lost. An HCC is
named with its model, as in `RA_Variable` ("V28 HCC38"); only models present in
both runs are compared (PY2025's V24 HCCs are not "lost" by a PY2026 run that
has no V24), unless the runs share no model, when every HCC is compared.
Members of only one run are listed (`In` = `a_only` / `b_only`) with a null delta.
"""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
from msgspec import Struct

from app.fielddoc import doc
from app.summary import Stats, _decimal_float, member_facts
from engine.rows import scaled_to_float

TOP_HCCS = 20

COMPARE_SCHEMA_DOC = (
    "MemberID, In (both|a_only|b_only), Segment_A, Segment_B, Active_A, Active_B, Delta, "
    "HCCs_Gained, HCCs_Lost"
)


class HccChange(Struct):
    """An HCC gained or lost between the two runs, and by how many members."""

    hcc: Annotated[str, doc("The HCC.", "HCC37")]
    members: Annotated[int, doc("Members who gained (or lost) it.", 12)]


class CompareSummary(Struct, omit_defaults=True):
    """Run A against run B, by MemberID (`raf compare`, `GET /v1/jobs/{a}/compare/{b}`)."""

    members_both: Annotated[int, doc("Members scored in both.", 950)]
    members_a_only: Annotated[int, doc("Members only in A.", 30)]
    members_b_only: Annotated[int, doc("Members only in B.", 20)]
    up: Annotated[int, doc("Members in both whose active score rose.", 400)]
    down: Annotated[int, doc("Members in both whose active score fell.", 350)]
    unchanged: Annotated[int, doc("Members in both with the same active score.", 200)]
    delta: Annotated[Stats | None, doc("Active B - active A over the members in both.")] = None
    mean_active_a: Annotated[float | None, doc("Mean active score in A.", 1.012)] = None
    mean_active_b: Annotated[float | None, doc("Mean active score in B.", 1.034)] = None
    hccs_gained: Annotated[list[HccChange] | None, doc("HCCs gained, most members first.")] = None
    hccs_lost: Annotated[list[HccChange] | None, doc("HCCs lost, most members first.")] = None
    payment_year_a: Annotated[int | None, doc("Payment year of A.", 2025)] = None
    payment_year_b: Annotated[int | None, doc("Payment year of B.", 2026)] = None


def _hcc_sets(rows: pl.LazyFrame, models: list[str] | None) -> pl.LazyFrame:
    raw = rows.filter(pl.col("Active_Score") == 0)
    if models is not None:
        raw = raw.filter(pl.col("Clinical_Version").is_in(models))
    return (
        raw.select(
            "Member_Id",
            hcc=pl.col("RA_Variable").str.extract_all(r"\bHCC\d+\b"),
            version=pl.col("Clinical_Version"),
        )
        .explode("hcc", empty_as_null=False)
        .drop_nulls("hcc")
        .group_by("Member_Id")
        .agg(hccs=(pl.col("version") + pl.lit(" ") + pl.col("hcc")).unique().sort())
    )


def _versions(rows: pl.LazyFrame) -> set[str]:
    return set(
        rows.filter(pl.col("Active_Score") == 0)
        .select(pl.col("Clinical_Version").unique())
        .collect()
        .get_column("Clinical_Version")
        .drop_nulls()
        .to_list()
    )


def compare_rows(a: pl.LazyFrame, b: pl.LazyFrame) -> pl.DataFrame:
    """Per-member comparison (columns `COMPARE_SCHEMA_DOC`; Active/Delta as floats)."""
    shared = sorted(_versions(a) & _versions(b)) or None
    facts = []
    for rows, tag in ((a, "A"), (b, "B")):
        f = member_facts(rows).lazy().select(
            "Member_Id", pl.col("segment").alias(f"Segment_{tag}"), pl.col("active").alias(f"_a{tag}")
        )
        f = f.join(_hcc_sets(rows.lazy(), shared), on="Member_Id", how="left").rename(
            {"hccs": f"_h{tag}"}
        )
        facts.append(f.with_columns(pl.lit(True).alias(f"_in{tag}")))
    empty = pl.lit([], pl.List(pl.String))
    joined = facts[0].join(facts[1], on="Member_Id", how="full", coalesce=True)
    return (
        joined.with_columns(
            pl.col("_hA").fill_null(empty),
            pl.col("_hB").fill_null(empty),
        )
        .select(
            pl.col("Member_Id").alias("MemberID"),
            In=pl.when(pl.col("_inA") & pl.col("_inB")).then(pl.lit("both"))
            .when(pl.col("_inA")).then(pl.lit("a_only")).otherwise(pl.lit("b_only")),
            Segment_A="Segment_A",
            Segment_B="Segment_B",
            Active_A=scaled_to_float(pl.col("_aA"), 6),
            Active_B=scaled_to_float(pl.col("_aB"), 6),
            Delta=scaled_to_float(pl.col("_aB") - pl.col("_aA"), 6),
            HCCs_Gained=pl.when(pl.col("_inA") & pl.col("_inB"))
            .then(pl.col("_hB").list.set_difference("_hA").list.sort()),
            HCCs_Lost=pl.when(pl.col("_inA") & pl.col("_inB"))
            .then(pl.col("_hA").list.set_difference("_hB").list.sort()),
            Delta_micro=pl.col("_aB") - pl.col("_aA"),
        )
        .sort("MemberID")
        .collect()
    )


def compare_summary(per_member: pl.DataFrame, **years: Any) -> CompareSummary:
    both = per_member.filter(pl.col("In") == "both")
    delta = both.get_column("Delta_micro")
    stats = None
    if both.height:
        def scaled(value: Any) -> float:
            return round(float(value) / 1_000_000, 6)

        stats = Stats(
            count=both.height,
            mean=_decimal_float(int(delta.sum()), both.height, 1_000_000),
            median=scaled(delta.median()),
            p10=scaled(delta.quantile(0.1, "linear")),
            p90=scaled(delta.quantile(0.9, "linear")),
            min=scaled(delta.min()),
            max=scaled(delta.max()),
        )

    def top(column: str) -> list[HccChange]:
        counts = (
            both.select(pl.col(column).explode(empty_as_null=False)).drop_nulls().group_by(column).len()
            .sort(["len", column], descending=[True, False]).head(TOP_HCCS)
        )
        return [HccChange(hcc=h, members=int(n)) for h, n in counts.iter_rows()]

    return CompareSummary(
        members_both=both.height,
        members_a_only=per_member.filter(pl.col("In") == "a_only").height,
        members_b_only=per_member.filter(pl.col("In") == "b_only").height,
        up=int((delta > 0).sum()),
        down=int((delta < 0).sum()),
        unchanged=int((delta == 0).sum()),
        delta=stats,
        mean_active_a=_decimal_float(int((both["Active_A"] * 1_000_000).round().sum()),
                                     both.height, 1_000_000) if both.height else None,
        mean_active_b=_decimal_float(int((both["Active_B"] * 1_000_000).round().sum()),
                                     both.height, 1_000_000) if both.height else None,
        hccs_gained=top("HCCs_Gained"),
        hccs_lost=top("HCCs_Lost"),
        **years,
    )


def payment_year_of(rows: pl.LazyFrame) -> int | None:
    if "Payment_Year" not in rows.collect_schema().names():
        return None
    years = rows.select(pl.col("Payment_Year").unique()).collect().get_column("Payment_Year")
    return int(years[0]) if years.len() == 1 and years[0] is not None else None
