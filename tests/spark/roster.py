"""A roster with every case a distributed run can get wrong, and its Spark frames.

`make_roster` (benchmarks/roster.py) gives the realistic mix, ESRD members
included (~3%), plus planted cases: members the normalizer rejects, identical
repeated rows (one member, with a warning), conflicting rows for one MemberID
(rejected), blank and null MemberIDs, and diagnoses of members the roster does
not have. Both files are then shuffled, so a member's diagnoses are scattered
over the whole diagnoses input, away from its membership row.
"""

from __future__ import annotations

import polars as pl

from benchmarks.roster import make_roster


def planted_roster(n_members: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    members, diagnoses = make_roster(n_members, seed=seed)
    rejected = members.slice(0, 30).with_columns(
        MemberID=pl.format("R{}", pl.col("MemberID")),
        Gender=pl.Series(["X", "M", "F"] * 10),
        DOB=pl.Series(["1950-01-01", "not-a-date", "1960-03-04"] * 10),
        RAType=pl.Series(["CN", "CN", "PK"] * 10),
    )
    identical = members.slice(100, 12)
    conflicting = members.slice(200, 12).with_columns(
        Gender=pl.when(pl.col("Gender") == "M").then(pl.lit("F")).otherwise(pl.lit("M"))
    )
    blank = members.slice(300, 4).with_columns(MemberID=pl.Series(["", None, " ", None]))
    strangers = diagnoses.slice(0, 60).with_columns(MemberID=pl.format("Z{}", pl.col("MemberID")))
    no_member = diagnoses.slice(60, 5).with_columns(MemberID=pl.lit(None, pl.String))
    members = pl.concat([members, rejected, identical, conflicting, blank])
    diagnoses = pl.concat([diagnoses, strangers, no_member])
    return (
        members.sample(fraction=1.0, shuffle=True, seed=seed),
        diagnoses.sample(fraction=1.0, shuffle=True, seed=seed + 1),
    )


def spark_frames(spark, members: pl.DataFrame, diagnoses: pl.DataFrame, partitions: int = 3):
    """Spark frames in the polars frames' row order, each split over `partitions` input
    partitions (consecutive slices, so row positions are the polars row indexes)."""

    def frame(rows: pl.DataFrame):
        size = -(-rows.height // partitions)
        parts = [spark.createDataFrame(rows.slice(k * size, size).to_arrow()) for k in range(partitions)]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined.union(part)
        return combined

    return frame(members), frame(diagnoses)
