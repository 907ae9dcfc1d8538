"""`raf reconcile`: our active scores against the risk scores CMS paid on, per member.

Inputs: our scores (the output of `raf score` or a job's result: the active row
of each member) and CMS's side, either its MMR detail file (`app.mmr`: the
latest counted payment month's Risk Adjustment Factor A, with its RA factor type
code, OREC, ESRD flag and months) or a CSV `MemberID, RiskScore` with optional
`PaymentMonth` (YYYYMM or YYYY-MM; the latest month in the payment year is
used) and optional `RAType`.

Per member (`RECONCILIATION_COLUMNS`): both scores, `Difference` = ours − CMS's,
`Match` (`exact`, `within_rounding`, `off`, `missing_cms`, `missing_ours`,
`cms_invalid`) and a `Likely_Cause` with its `Cause_Detail` where one can be
named, first that applies:

* `missing_cms` / `missing_ours`: the member is on one side only (a member we
  rejected says why, from our errors file);
* `within_rounding`: |Difference| ≤ 0.0005, CMS's four-decimal rounding;
* `ratype_differs`: CMS's RA factor type code is not the one we scored;
* `segment_differs`: same code, but OREC (originally disabled, segment) differs;
* `esrd`: an ESRD member (model, normalization or dialysis/graft status);
* `new_enrollee`: a new-enrollee code (demographic score: NEMCAID, OREC, age);
* `diagnoses_cms_lacked`: ours is higher and carries disease HCCs: diagnoses
  CMS did not have (not submitted, or after its sweep);
* `cms_higher`: CMS's is higher: diagnoses or status CMS had that we did not.

Differences are computed in integer millionths (our active score has six
decimals, CMS's four), so "exact" and "within 0.0005" are exact comparisons.
The summary counts members exact, within 0.0005 and off by more, the mean
difference and, where a monthly rate is known (`--monthly-rate`, or a
`Monthly_Rate` column in the scores), its dollar effect: Difference × rate ×
months (the scores' `Enrollment_Months`, else CMS's months, else 12), in cents.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl

from app import batch, mmr

WITHIN_ROUNDING_MICRO = 500  # 0.0005: CMS publishes risk scores to four decimals
EXIT_OK = 0
EXIT_FATAL = 1
EXIT_OVER_THRESHOLD = 4
NEW_ENROLLEE_SEGMENTS = ("NE", "SNPNE", "DNE", "GNE")
RECONCILIATION_COLUMNS = (
    "MemberID",
    "Payment_Year",
    "Our_Score",
    "CMS_Score",
    "Difference",
    "Match",
    "Likely_Cause",
    "Cause_Detail",
    "Our_RAType",
    "CMS_RAType",
    "Our_Segment",
    "Our_OREC",
    "CMS_OREC",
    "Our_RA_Variable",
    "CMS_Payment_Month",
    "CMS_Months",
    "Enrollment_Months",
    "Dollar_Effect",
)


class ReconcileInputError(batch.BatchInputError):
    """A file that cannot be reconciled; the message names the file and column."""


# --------------------------------------------------------------------------- inputs


def _read_table(path: Path, role: str) -> pl.DataFrame:
    if not path.is_file():
        raise ReconcileInputError(f"{path}: {role} file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise ReconcileInputError(f"{path}: cannot read {role} file: {exc}") from exc
    raise ReconcileInputError(f"{path}: {role} must be .csv or .parquet")


def _micro(column: str) -> pl.Expr:
    """A score as Int64 millionths: from text exactly, from a float by rounding to 6 decimals."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return (text.cast(pl.Float64, strict=False) * 1_000_000).round(0).cast(pl.Int64)


def load_scores(path: Path) -> pl.DataFrame:
    """Our active rows: `MemberID, Payment_Year, Our_Score_micro, Our_RAType, Our_Segment,
    Our_OREC, Our_RA_Variable, Our_Disease_micro` (+ `Enrollment_Months`, `Monthly_Rate`
    when the scores carry them)."""
    rows = _read_table(path, "scores")
    needed = ("Member_Id", "RAF_Total", "Active_Score", "RAType_Org", "RAType", "Payment_Year")
    if rows.width == 0:  # no member scored (every one rejected): an empty side, not an error
        rows = pl.DataFrame(schema=dict.fromkeys(needed, pl.String))
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise ReconcileInputError(
            f"{path}: scores have no column {missing[0]!r} (expected the output of `raf score`)"
        )
    active = rows.filter(pl.col("Active_Score").cast(pl.Int64, strict=False) == 1)
    optional = [
        pl.col(c).cast(pl.Float64, strict=False).alias(c)
        for c in ("Enrollment_Months", "Monthly_Rate")
        if c in active.columns
    ]
    disease = [c for c in active.columns if c.startswith("RAF_Disease")]
    return active.select(
        pl.col("Member_Id").cast(pl.String).alias("MemberID"),
        pl.col("Payment_Year").cast(pl.Int64, strict=False),
        _micro("RAF_Total").alias("Our_Score_micro"),
        pl.col("RAType_Org").cast(pl.String).str.to_uppercase().alias("Our_RAType"),
        pl.col("RAType").cast(pl.String).alias("Our_Segment"),
        (pl.col("OREC_Org") if "OREC_Org" in active.columns else pl.lit(None))
        .cast(pl.String)
        .alias("Our_OREC"),
        (pl.col("RA_Variable") if "RA_Variable" in active.columns else pl.lit(None))
        .cast(pl.String)
        .alias("Our_RA_Variable"),
        pl.sum_horizontal(_micro(c) for c in disease).alias("Our_Disease_micro")
        if disease
        else pl.lit(0, pl.Int64).alias("Our_Disease_micro"),
        *optional,
    )


def load_our_errors(path: Path | None) -> pl.DataFrame:
    """Members we rejected (`MemberID, field, message`), so `missing_ours` can say why."""
    empty = pl.DataFrame(schema={"MemberID": pl.String, "Our_Error": pl.String})
    if path is None or not path.is_file():
        return empty
    errors = _read_table(path, "errors")
    if "MemberID" not in errors.columns or "message" not in errors.columns:
        return empty
    return (
        errors.filter(pl.col("MemberID").is_not_null())
        .group_by("MemberID", maintain_order=True)
        .agg(
            # the message usually names its field already ("DOB '1950-13-01' is not a date")
            pl.when(pl.col("message").str.starts_with(pl.col("field").cast(pl.String)))
            .then(pl.col("message"))
            .otherwise(pl.format("{}: {}", pl.col("field").cast(pl.String), pl.col("message")))
            .first()
            .alias("field")
        )
        .rename({"field": "Our_Error"})
        .select(pl.col("MemberID").cast(pl.String), pl.col("Our_Error").cast(pl.String))
    )


def cms_from_mmr(
    path: Path, payment_year: int, layout: str | Path | None = None
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """CMS's side from its MMR: the latest counted month's score and status per member.

    Members whose status changed between months are kept (their latest month is what
    CMS pays on now); members whose records are malformed are `cms_invalid`."""
    try:
        result = mmr.read_mmr(path, payment_year, mmr.load_layout(layout), status_rule="latest")
    except mmr.MmrError as exc:
        raise ReconcileInputError(str(exc)) from exc
    side = result.members.select(
        "MemberID",
        pl.col("CMS_Score_micro"),
        "CMS_RAType",
        "CMS_OREC",
        (pl.col("CMS_ESRD") == "Y").alias("CMS_ESRD"),
        "CMS_Payment_Month",
        pl.col("Enrollment_Months").alias("CMS_Months"),
        pl.when(pl.col("CMS_Score_micro").is_null())
        .then(pl.lit("no Risk Adjustment Factor A in the latest counted month"))
        .alias("CMS_Invalid"),
    )
    invalid = (
        result.errors.filter(pl.col("MemberID").is_not_null())
        .filter(~pl.col("MemberID").is_in(side["MemberID"].implode()))
        .group_by("MemberID", maintain_order=True)
        .agg(
            pl.format("MMR line {}: {}", pl.col("input_index") + 1, pl.col("message"))
            .str.join("; ")
            .alias("CMS_Invalid")
        )
    )
    side = pl.concat([side, invalid], how="diagonal_relaxed")
    return side, result.summary


def cms_from_csv(path: Path, payment_year: int) -> tuple[pl.DataFrame, dict[str, Any]]:
    """CMS's side from a CSV `MemberID, RiskScore[, PaymentMonth][, RAType]`."""
    table = _read_table(path, "CMS scores")
    renames = batch._field_renames(
        path, table.columns, ("MemberID", "RiskScore", "PaymentMonth", "RAType")
    )
    table = table.rename(renames)
    for column in ("MemberID", "RiskScore"):
        if column not in table.columns:
            raise ReconcileInputError(
                f"{path}: CMS scores have no column {column!r} (expected MemberID, RiskScore, "
                "optional PaymentMonth, optional RAType)"
            )
    line_offset = 2 if path.suffix.lower() == ".csv" else 1
    table = table.with_row_index("_line", offset=line_offset).with_columns(
        pl.col("MemberID").cast(pl.String).str.strip_chars(),
        _micro("RiskScore").alias("CMS_Score_micro"),
    )
    has_month = "PaymentMonth" in table.columns
    if has_month:
        digits = pl.col("PaymentMonth").cast(pl.String).str.replace_all("-", "").str.strip_chars()
        table = table.with_columns(digits.str.to_date("%Y%m", strict=False).alias("_month"))
    invalid_row = pl.col("CMS_Score_micro").is_null() | (
        pl.col("_month").is_null() if has_month else pl.lit(False)
    )
    rows = table.filter(pl.col("MemberID").is_not_null() & (pl.col("MemberID") != ""))
    blank_ids = table.height - rows.height
    bad = (
        rows.filter(invalid_row)
        .group_by("MemberID", maintain_order=True)
        .agg(
            pl.format("CMS line {}: RiskScore or PaymentMonth unreadable", pl.col("_line"))
            .str.join("; ")
            .alias("CMS_Invalid")
        )
    )
    good = rows.filter(~invalid_row)
    other_years = 0
    if has_month:
        in_year = good.filter(pl.col("_month").dt.year() == payment_year)
        other_years = good.height - in_year.height
        side = (
            in_year.sort("_month", "_line")
            .group_by("MemberID", maintain_order=True)
            .agg(
                pl.col("CMS_Score_micro").last(),
                pl.col("_month").last().dt.strftime("%Y-%m").alias("CMS_Payment_Month"),
                pl.col("_month").n_unique().cast(pl.Int64).alias("CMS_Months"),
                *(
                    [pl.col("RAType").last().cast(pl.String).str.to_uppercase().alias("CMS_RAType")]
                    if "RAType" in good.columns
                    else []
                ),
            )
        )
    else:
        side = (
            good.group_by("MemberID", maintain_order=True)
            .agg(
                pl.col("CMS_Score_micro").first(),
                pl.col("CMS_Score_micro").n_unique().alias("_scores"),
                pl.col("_line").cast(pl.String).str.join(", ").alias("_lines"),
                *(
                    [
                        pl.col("RAType")
                        .first()
                        .cast(pl.String)
                        .str.to_uppercase()
                        .alias("CMS_RAType")
                    ]
                    if "RAType" in good.columns
                    else []
                ),
            )
            .with_columns(
                pl.when(pl.col("_scores") > 1)
                .then(
                    pl.format(
                        "CMS lines {}: different RiskScore for one member and no PaymentMonth",
                        "_lines",
                    )
                )
                .alias("CMS_Invalid")
            )
            .drop("_scores", "_lines")
        )
    side = pl.concat(
        [side, bad.filter(~pl.col("MemberID").is_in(side["MemberID"].implode()))],
        how="diagonal_relaxed",
    )
    summary = {
        "file": str(path),
        "rows": table.height,
        "rows_without_member": blank_ids,
        "rows_unreadable": rows.filter(invalid_row).height,
        "rows_other_years": other_years,
        "members": side.height,
    }
    return side, summary


def load_cms(
    path: Path, payment_year: int, cms_format: str | None = None, layout: str | Path | None = None
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """CMS's side by format: `csv` (.csv/.parquet) or `mmr` (anything else)."""
    fmt = cms_format or ("csv" if path.suffix.lower() in (".csv", ".parquet", ".pq") else "mmr")
    if fmt == "csv":
        side, summary = cms_from_csv(path, payment_year)
    else:
        side, summary = cms_from_mmr(path, payment_year, layout)
    for column, dtype in (
        ("CMS_RAType", pl.String),
        ("CMS_OREC", pl.String),
        ("CMS_ESRD", pl.Boolean),
        ("CMS_Payment_Month", pl.String),
        ("CMS_Months", pl.Int64),
        ("CMS_Invalid", pl.String),
    ):
        if column not in side.columns:
            side = side.with_columns(pl.lit(None, dtype).alias(column))
    return side, {"format": fmt, **summary}


# --------------------------------------------------------------------------- reconcile


def _code_sets() -> tuple[list[str], list[str]]:
    from ratype.tables import code_table

    codes = code_table()
    esrd = codes.filter(pl.col("esrd") == "yes")["code"].to_list()
    new_enrollee = codes.filter(pl.col("segment_rule").is_in(NEW_ENROLLEE_SEGMENTS))[
        "code"
    ].to_list()
    return esrd, new_enrollee + ["SE"]


def _score_text(micro: str) -> pl.Expr:
    return pl.format("{}", (pl.col(micro).abs() / 1_000_000).round(6))


def reconcile(
    ours: pl.DataFrame,
    cms: pl.DataFrame,
    payment_year: int,
    our_errors: pl.DataFrame | None = None,
    monthly_rate: float | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Join both sides per member; return the per-member table and the summary."""
    esrd_codes, new_enrollee_codes = _code_sets()
    joined = ours.join(cms, on="MemberID", how="full", coalesce=True)
    if our_errors is not None and our_errors.height:
        joined = joined.join(our_errors, on="MemberID", how="left")
    else:
        joined = joined.with_columns(pl.lit(None, pl.String).alias("Our_Error"))
    both = pl.col("Our_Score_micro").is_not_null() & pl.col("CMS_Score_micro").is_not_null()
    diff = pl.col("Our_Score_micro") - pl.col("CMS_Score_micro")
    joined = joined.with_columns(
        pl.when(both & pl.col("CMS_Invalid").is_null()).then(diff).alias("_diff"),
        pl.col("Our_Score_micro").is_not_null().alias("_ours"),
        (pl.col("CMS_Score_micro").is_not_null() | pl.col("CMS_Invalid").is_not_null()).alias(
            "_cms"
        ),
    )
    d = pl.col("_diff")
    match = (
        pl.when(~pl.col("_cms"))
        .then(pl.lit("missing_cms"))
        .when(~pl.col("_ours"))
        .then(pl.lit("missing_ours"))
        .when(pl.col("CMS_Invalid").is_not_null())
        .then(pl.lit("cms_invalid"))
        .when(d == 0)
        .then(pl.lit("exact"))
        .when(d.abs() <= WITHIN_ROUNDING_MICRO)
        .then(pl.lit("within_rounding"))
        .otherwise(pl.lit("off"))
    )
    off = match == "off"
    ratype_differs = pl.col("CMS_RAType").is_not_null() & (
        pl.col("CMS_RAType") != pl.col("Our_RAType")
    )
    orec_differs = (
        pl.col("CMS_OREC").is_not_null()
        & pl.col("Our_OREC").is_not_null()
        & (pl.col("CMS_OREC") != pl.col("Our_OREC"))
    )
    is_esrd = (
        pl.col("Our_RAType").is_in(esrd_codes)
        | pl.col("CMS_RAType").is_in(esrd_codes)
        | (pl.col("CMS_ESRD").fill_null(False))
    )
    is_new = pl.col("Our_RAType").is_in(new_enrollee_codes) | pl.col("CMS_RAType").is_in(
        new_enrollee_codes
    )
    by = _score_text("_diff")
    cause = (
        pl.when(match == "missing_cms")
        .then(
            pl.struct(
                c=pl.lit("missing_cms"),
                t=pl.lit(f"no CMS score for payment year {payment_year}"),
            )
        )
        .when(match == "missing_ours")
        .then(
            pl.struct(
                c=pl.lit("missing_ours"),
                t=pl.when(pl.col("Our_Error").is_not_null())
                .then(pl.format("we rejected the member: {}", pl.col("Our_Error")))
                .otherwise(pl.lit("not in our scores")),
            )
        )
        .when(match == "cms_invalid")
        .then(pl.struct(c=pl.lit("cms_invalid"), t=pl.col("CMS_Invalid")))
        .when(match == "within_rounding")
        .then(
            pl.struct(
                c=pl.lit("within_rounding"),
                t=pl.format("within CMS's rounding: |difference| {} <= 0.0005", by),
            )
        )
        .when(off & ratype_differs)
        .then(
            pl.struct(
                c=pl.lit("ratype_differs"),
                t=pl.format("RAType differs: ours {}, CMS {}", "Our_RAType", "CMS_RAType"),
            )
        )
        .when(off & orec_differs)
        .then(
            pl.struct(
                c=pl.lit("segment_differs"),
                t=pl.format(
                    "OREC differs (ours {}, CMS {}): segment / originally-disabled status",
                    "Our_OREC",
                    "CMS_OREC",
                ),
            )
        )
        .when(off & is_esrd)
        .then(
            pl.struct(
                c=pl.lit("esrd"),
                t=pl.lit("ESRD member: dialysis/graft status, ESRD model or its normalization"),
            )
        )
        .when(off & is_new)
        .then(
            pl.struct(
                c=pl.lit("new_enrollee"),
                t=pl.lit("new enrollee: demographic score only; check NEMCAID, OREC and age"),
            )
        )
        .when(off & (d > 0) & (pl.col("Our_Disease_micro") > 0))
        .then(
            pl.struct(
                c=pl.lit("diagnoses_cms_lacked"),
                t=pl.format(
                    "ours is higher by {} with disease HCCs ({}): diagnoses CMS did not have",
                    by,
                    "Our_RA_Variable",
                ),
            )
        )
        .when(off & (d < 0))
        .then(
            pl.struct(
                c=pl.lit("cms_higher"),
                t=pl.format(
                    "CMS's is higher by {}: diagnoses or status CMS had that our inputs did not", by
                ),
            )
        )
        .when(off)
        .then(pl.struct(c=pl.lit("unexplained"), t=pl.format("ours is higher by {}", by)))
    )
    months = pl.coalesce(
        [
            c
            for c in (
                pl.col("Enrollment_Months") if "Enrollment_Months" in joined.columns else None,
                pl.col("CMS_Months").cast(pl.Float64),
                pl.lit(12.0),
            )
            if c is not None
        ]
    )
    rate = pl.col("Monthly_Rate") if "Monthly_Rate" in joined.columns else pl.lit(None, pl.Float64)
    if monthly_rate is not None:
        rate = pl.coalesce(rate, pl.lit(float(monthly_rate)))
    rate_cents = (rate * 100).round(0).cast(pl.Int64)
    # cents = diff (millionths) x rate (cents) x months / 1e6, half away from zero
    effect_num = d * rate_cents * months.round(0).cast(pl.Int64)
    effect_cents = effect_num.sign() * ((effect_num.abs() + 500_000) // 1_000_000)
    table = joined.with_columns(
        match.alias("Match"),
        cause.alias("_cause"),
        effect_cents.alias("_effect_cents"),
        months.alias("_months"),
    ).with_columns(
        pl.col("_cause").struct.field("c").alias("Likely_Cause"),
        pl.col("_cause").struct.field("t").alias("Cause_Detail"),
    )
    out = (
        table.with_columns(
            pl.lit(payment_year).alias("Payment_Year"),
            (pl.col("Our_Score_micro") / 1_000_000).round(6).alias("Our_Score"),
            (pl.col("CMS_Score_micro") / 1_000_000).round(6).alias("CMS_Score"),
            (pl.col("_diff") / 1_000_000).round(6).alias("Difference"),
            (pl.col("_effect_cents") / 100).round(2).alias("Dollar_Effect"),
            *(
                []
                if "Enrollment_Months" in table.columns
                else [pl.lit(None, pl.Float64).alias("Enrollment_Months")]
            ),
        )
        .select(RECONCILIATION_COLUMNS)
        .sort("MemberID")
    )
    summary = _summary(table, payment_year)
    return out, summary


def _summary(table: pl.DataFrame, payment_year: int) -> dict[str, Any]:
    matched = table.filter(pl.col("_diff").is_not_null())
    counts = dict(table.group_by("Match").len().iter_rows())
    causes = {
        cause: count
        for cause, count in table.filter(pl.col("Likely_Cause").is_not_null())
        .group_by("Likely_Cause")
        .len()
        .sort("Likely_Cause")
        .iter_rows()
    }
    diff = matched["_diff"]
    effect = matched.filter(pl.col("_effect_cents").is_not_null())
    return {
        "payment_year": payment_year,
        "members": table.height,
        "matched": matched.height,
        "exact": counts.get("exact", 0),
        "within_rounding": counts.get("within_rounding", 0),
        "off_by_more": counts.get("off", 0),
        "missing_cms": counts.get("missing_cms", 0),
        "missing_ours": counts.get("missing_ours", 0),
        "cms_invalid": counts.get("cms_invalid", 0),
        "mean_difference": round(float(diff.mean()) / 1_000_000, 6) if matched.height else None,
        "mean_abs_difference": round(float(diff.abs().mean()) / 1_000_000, 6)
        if matched.height
        else None,
        "max_abs_difference": round(float(diff.abs().max()) / 1_000_000, 6)
        if matched.height
        else None,
        "causes": causes,
        "dollar_effect": {
            "members_with_rate": effect.height,
            "total": int(effect["_effect_cents"].sum()) / 100,
            "per_member": round(int(effect["_effect_cents"].sum()) / 100 / effect.height, 2),
            "rule": "Difference x monthly rate x months (Enrollment_Months, else CMS's months, else 12)",
        }
        if effect.height
        else None,
    }


def over_threshold(table: pl.DataFrame, threshold: float, include_missing: bool = False) -> int:
    """Members whose |Difference| exceeds `threshold` (and, optionally, one-sided members)."""
    limit = round(threshold * 1_000_000)
    over = (pl.col("Difference") * 1_000_000).round(0).abs() > limit
    if include_missing:
        over = over | pl.col("Match").is_in(["missing_cms", "missing_ours", "cms_invalid"])
    return table.filter(over.fill_null(False)).height


def reconcile_files(
    scores: Path,
    cms_path: Path,
    *,
    payment_year: int | None = None,
    cms_format: str | None = None,
    layout: str | Path | None = None,
    errors: Path | None = None,
    monthly_rate: float | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Read both sides and reconcile; the one function behind the CLI and jobs."""
    ours = load_scores(scores)
    years = ours["Payment_Year"].drop_nulls().unique().to_list()
    if payment_year is None:
        if len(years) != 1:
            raise ReconcileInputError(
                f"{scores}: scores hold payment years {sorted(years)}; pass --payment-year"
            )
        payment_year = int(years[0])
    ours = ours.filter(pl.col("Payment_Year") == payment_year)
    if errors is None:
        default = batch.sibling_path(scores, "errors", ".csv")
        errors = default if default.is_file() else None
    cms, cms_summary = load_cms(cms_path, payment_year, cms_format, layout)
    table, summary = reconcile(ours, cms, payment_year, load_our_errors(errors), monthly_rate)
    summary["cms"] = cms_summary
    summary["scores"] = str(scores)
    return table, summary


# --------------------------------------------------------------------------- CLI


def describe(summary: dict[str, Any]) -> str:
    """The summary in one paragraph, as `raf reconcile` prints it."""
    text = (
        f"{summary['members']:,} members, {summary['matched']:,} on both sides: "
        f"{summary['exact']:,} exact, {summary['within_rounding']:,} within 0.0005, "
        f"{summary['off_by_more']:,} off by more; {summary['missing_cms']:,} missing from CMS, "
        f"{summary['missing_ours']:,} missing from ours, {summary['cms_invalid']:,} unreadable on CMS's side"
    )
    if summary["mean_difference"] is not None:
        text += f"; mean difference {summary['mean_difference']:+.6f}"
    if summary.get("dollar_effect"):
        effect = summary["dollar_effect"]
        text += (
            f"; dollar effect ${effect['total']:+,.2f} over {effect['members_with_rate']:,} members"
        )
    if summary["causes"]:
        text += "; causes: " + ", ".join(f"{k} {v}" for k, v in summary["causes"].items())
    return text


def run(args: argparse.Namespace) -> int:
    """Body of `raf reconcile`: exit 0, or 4 with `--fail-over` when members are over it."""
    out = Path(args.out)
    summary_path = (
        Path(args.summary) if args.summary else batch.sibling_path(out, "summary", ".json")
    )
    try:
        if batch.OUTPUT_FORMATS.get(out.suffix.lower()) not in ("csv", "parquet"):
            raise ReconcileInputError(f"{out}: --out must be .csv or .parquet")
        table, summary = reconcile_files(
            Path(args.scores),
            Path(args.cms),
            payment_year=args.payment_year,
            cms_format=args.cms_format,
            layout=args.mmr_layout,
            errors=Path(args.errors) if args.errors else None,
            monthly_rate=args.monthly_rate,
        )
        if args.fail_over is not None:
            summary["fail_over"] = {
                "threshold": args.fail_over,
                "members_over": over_threshold(table, args.fail_over, args.fail_on_missing),
                "includes_missing": bool(args.fail_on_missing),
            }
        batch.write_table(table, out)
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    except batch.BatchInputError as exc:
        sys.stderr.write(f"raf reconcile: error: {exc}\n")
        return EXIT_FATAL
    if not args.quiet:
        sys.stderr.write(f"raf reconcile: {describe(summary)} → {out}; summary → {summary_path}\n")
    over = summary.get("fail_over", {}).get("members_over", 0)
    if over:
        sys.stderr.write(f"raf reconcile: {over:,} member(s) over --fail-over {args.fail_over}\n")
        return EXIT_OVER_THRESHOLD
    return EXIT_OK
