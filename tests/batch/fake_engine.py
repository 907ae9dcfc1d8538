"""A tiny stand-in for `engine.run.score_batch` with the contract's shape (ARCHITECTURE.md).

Used only while the real engine is absent; its numbers mean nothing, but it is
per-member deterministic and rejects what the API rejects (Gender not M/F, DOB
not a date, PACE RAType, duplicate MemberID), so the batch plumbing is testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from engine.rows import ROW_FIELDS

# The row layout is the real engine's: the fake must not drift from it.
SEED_FIELDS = list(ROW_FIELDS)
MEMBER_FIELDS = ["MemberID", "DOB", "Gender", "RAType", "Hospice", "LTIMCAID", "NEMCAID", "OREC"]


class UnsupportedPaymentYear(ValueError):
    pass


class FakeStore:
    years = (2024, 2025)

    def year(self, payment_year: int) -> object:
        if payment_year not in self.years:
            raise UnsupportedPaymentYear(
                f"payment year {payment_year} is not supported (supported: 2024, 2025)"
            )
        return object()


@dataclass
class FakeBatchResult:
    rows: pl.DataFrame
    errors: pl.DataFrame
    dx_summary: dict[str, int]
    trail: dict[str, pl.DataFrame] = field(default_factory=dict)
    reference: dict[str, object] = field(default_factory=dict)
    member_count: int = 0


def fake_score_batch(
    memberships: pl.DataFrame,
    diagnoses: pl.DataFrame,
    payment_year: int,
    store: object,
    detail: bool = False,
) -> FakeBatchResult:
    store.year(payment_year)
    m = memberships
    if "input_index" not in m.columns:
        m = m.with_row_index("input_index")
    m = m.with_columns(
        pl.lit(None, pl.String).alias(c) for c in MEMBER_FIELDS if c not in m.columns
    )
    dob = pl.col("DOB").str.to_date("%Y-%m-%d", strict=False)
    checked = m.with_columns(
        dup=pl.col("MemberID").is_duplicated(),
        bad_dob=dob.is_null(),
        bad_gender=~pl.col("Gender").is_in(["M", "F"]),
        bad_ratype=pl.col("RAType").is_in(["PK", "PI", "PJ"]),
    )
    error_rules = [
        ("dup", "MemberID", "duplicate MemberID"),
        ("bad_dob", "DOB", "not a date"),
        ("bad_gender", "Gender", "must be M or F"),
        ("bad_ratype", "RAType", "unsupported RAType"),
    ]
    field_expr = pl.when(pl.col(error_rules[0][0])).then(pl.lit(error_rules[0][1]))
    message_expr = pl.when(pl.col(error_rules[0][0])).then(pl.lit(error_rules[0][2]))
    for flag, name, message in error_rules[1:]:
        field_expr = field_expr.when(pl.col(flag)).then(pl.lit(name))
        message_expr = message_expr.when(pl.col(flag)).then(pl.lit(message))
    checked = checked.with_columns(field=field_expr, message=message_expr)
    errors = (
        checked.filter(pl.col("field").is_not_null())
        .select("MemberID", pl.col("input_index").cast(pl.UInt32), "field", "message")
        .sort("input_index")
    )
    good = checked.filter(pl.col("field").is_null())
    dx = diagnoses.join(good.select("MemberID"), on="MemberID", how="semi")
    dx_counts = dx.group_by("MemberID").agg(
        n=pl.len(), codes=pl.col("DxCode").sort().str.join(", ")
    )
    scored = good.join(dx_counts, on="MemberID", how="left").with_columns(
        n=pl.col("n").fill_null(0),
        age=(pl.lit(payment_year) - dob.dt.year()).cast(pl.Int64),
    )
    models = pl.DataFrame(
        {
            "Clinical_Version": ["V28", "V24", "V28 / V24"],
            "Active_Score": pl.Series([0, 0, 1], dtype=pl.Int8),
            "model_rank": [0, 1, 2],
        }
    )
    rows = (
        scored.join(models, how="cross")
        .with_columns(
            demographic_milli=(pl.col("age") * 7 + pl.col("model_rank") * 3) % 900,
            disease_milli=pl.col("n") * (311 + pl.col("model_rank") * 17),
        )
        .select(
            "input_index",
            Payment_Year=pl.lit(payment_year),
            Member_Id="MemberID",
            BirthDate_Org="DOB",
            BirthDate="DOB",
            Age="age",
            Age_Band=pl.lit("65_69"),
            Gender_Org="Gender",
            Gender="Gender",
            RAType_Org="RAType",
            RAType="RAType",
            Hospice_Org="Hospice",
            Hospice="Hospice",
            LTIMCAID_Org="LTIMCAID",
            LTIMCAID="LTIMCAID",
            NEMCAID_Org="NEMCAID",
            NEMCAID="NEMCAID",
            OREC_Org="OREC",
            OREC="OREC",
            Originally_Disabled=pl.lit("N"),
            Originally_ESRD=pl.lit("0"),
            RA_Variable=pl.col("codes").fill_null(""),
            RAF_Demographic=pl.col("demographic_milli") / 1000,
            RAF_Demographic_Interaction_With_Medicaid_Or_OREC=pl.lit(0.0),
            RAF_Disease=pl.col("disease_milli") / 1000,
            RAF_Disease_Count=pl.lit(0.0),
            RAF_Disease_Interaction_With_Disease=pl.lit(0.0),
            RAF_Disease_Interaction_With_Disability_Or_NonAged=pl.lit(0.0),
            RAF_Total=(pl.col("demographic_milli") + pl.col("disease_milli")) / 1000,
            Model=pl.lit("HCC Model-Regular"),
            Clinical_Version="Clinical_Version",
            Active_Score="Active_Score",
            Warnings=pl.when(pl.col("n") == 0)
            .then(pl.lit(["no diagnoses"]))
            .otherwise(pl.lit(None, pl.List(pl.String))),
            model_rank="model_rank",
        )
        .sort("input_index", "model_rank")
        .drop("model_rank")
    )
    trail = {}
    if detail:
        trail = {
            "hccs": dx.drop("input_index", strict=False)
            .join(good.select("MemberID", "input_index"), on="MemberID")
            .select(
                "input_index",
                model=pl.lit("V28"),
                hcc=pl.col("DxCode").str.len_chars(),
                label=pl.lit("fake"),
                coefficient_milli=pl.lit(311, pl.Int64),
                dx_codes=pl.concat_list("DxCode"),
            ),
            "dropped_dx": diagnoses.join(good.select("MemberID"), on="MemberID", how="anti").select(
                pl.lit(None, pl.UInt32).alias("input_index"),
                pl.col("input_index").alias("dx_index"),
                "MemberID",
                "DxCode",
                "FromDOS",
                "ThruDOS",
                reason=pl.lit("unknown_member"),
            ),
        }
    return FakeBatchResult(
        rows=rows,
        errors=errors,
        dx_summary={"used": dx.height, "unknown_member": diagnoses.height - dx.height},
        trail=trail,
        reference={"payment_year": payment_year, "release_id": "fake", "sha256": "0" * 64},
        member_count=memberships.height,
    )
