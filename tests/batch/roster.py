"""Deterministic synthetic rosters for the batch tests (no randomness, no real people).

Every value is a pure function of the member's position, so a failing test
reproduces exactly. `bad_every` plants members the API rejects (Gender "X",
DOB not a date, a PACE RAType, a duplicate MemberID) so error paths are exercised.
"""

from __future__ import annotations

import polars as pl

RATYPES = ["CN", "CP", "CF", "CN", "CP", "I", "CN", "E"]
DX_CODES = [
    "E119",
    "I509",
    "F13229",
    "N184",
    "J449",
    "E1122",
    "I4820",
    "C50911",
    "E1165",
    "I10",
    "Z0000",
    "F329",
    "G20",
    "M069",
    "R69",
    "BADCODE",
]
DX_PER_MEMBER_MAX = 5


def members_frame(n: int, bad_every: int | None = None) -> pl.DataFrame:
    i = pl.int_range(n, dtype=pl.Int64)
    frame = pl.select(
        MemberID=pl.format("M{}", i.cast(pl.String).str.zfill(7)),
        DOB=pl.format(
            "{}-{}-{}",
            (1925 + (i * 7919) % 70).cast(pl.String),
            (1 + (i * 31) % 12).cast(pl.String).str.zfill(2),
            (1 + (i * 17) % 28).cast(pl.String).str.zfill(2),
        ),
        Gender=pl.when(i * 37 % 2 == 0).then(pl.lit("M")).otherwise(pl.lit("F")),
        RAType=pl.lit(pl.Series(RATYPES)).gather(i % len(RATYPES)),
        Hospice=pl.when(i % 41 == 0).then(pl.lit("Y")).otherwise(pl.lit("N")),
        LTIMCAID=pl.when(i % 23 == 0).then(pl.lit("Y")).otherwise(pl.lit("N")),
        NEMCAID=pl.lit("N"),
        OREC=pl.when(i % 9 == 0).then(pl.lit("1")).otherwise(pl.lit("0")),
    )
    if bad_every:
        k = pl.int_range(n, dtype=pl.Int64)
        frame = frame.with_columns(
            Gender=pl.when(k % bad_every == 3).then(pl.lit("X")).otherwise("Gender"),
            DOB=pl.when(k % bad_every == 5).then(pl.lit("not-a-date")).otherwise("DOB"),
            RAType=pl.when(k % bad_every == 7).then(pl.lit("PK")).otherwise("RAType"),
            # a duplicate of the previous member's ID
            MemberID=pl.when((k % bad_every == 11) & (k > 0))
            .then(pl.col("MemberID").shift(1))
            .otherwise("MemberID"),
        )
    return frame


def diagnoses_frame(members: pl.DataFrame) -> pl.DataFrame:
    """0..5 diagnoses per member, interleaved across members (not grouped), so chunking
    has to gather each member's diagnoses from all over the file."""
    n = members.height
    per_member = (pl.int_range(n, dtype=pl.Int64) * 13 % (DX_PER_MEMBER_MAX + 1)).alias("k")
    base = members.select("MemberID").with_row_index("m").with_columns(per_member)
    long = (
        base.with_columns(j=pl.int_ranges(0, pl.col("k")))
        .explode("j", empty_as_null=True)
        .drop_nulls("j")
        .with_columns(seq=(pl.col("m").cast(pl.Int64) * 7 + pl.col("j")))
    )
    codes = pl.Series(DX_CODES)
    return (
        long.with_columns(
            FromDOS=pl.format(
                "2024-{}-{}",
                (1 + pl.col("seq") % 12).cast(pl.String).str.zfill(2),
                (1 + pl.col("seq") % 27).cast(pl.String).str.zfill(2),
            ),
            DxCode=pl.lit(codes).gather(pl.col("seq") % len(DX_CODES)),
            order=(pl.col("seq") * 2654435761) % 4294967291,
        )
        .with_columns(ThruDOS=pl.col("FromDOS"))
        .sort("order")
        .select("MemberID", "FromDOS", "ThruDOS", "DxCode")
    )


def roster(n: int, bad_every: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    members = members_frame(n, bad_every)
    return members, diagnoses_frame(members)
