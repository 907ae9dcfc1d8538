"""Score rosters on Apache Spark where the plan's data already lives (`raf-service[spark]`).

    rows, errors = score_dataframes(memberships, diagnoses, 2025)

The engine is a pure function of member-partitioned frames, so Spark only has
to put each member's membership rows and diagnoses in the same place:

1. both inputs get a global `input_index` (their row position, as in
   `engine.run.score_batch`) and a bucket `pmod(xxhash64(MemberID), P)`;
2. both are repartitioned by the bucket into the same P partitions, then
   `groupBy(bucket).cogroup(...).applyInArrow` hands one bucket's memberships
   and diagnoses (Arrow tables) to `_BucketScorer`, which scores them with
   `engine.run.score_batch` through polars (zero-copy from Arrow) and returns
   the response rows, the member errors and the bucket's counts in one table;
3. the driver adds the counts up and checks member and diagnosis conservation
   for the whole run (`check_conservation`) before handing back `rows` and
   `errors`: every membership row is in `rows` or `errors`, every diagnosis row
   is counted in `dx_summary`, or the call raises `ConservationError` naming
   the counts.

Every row of one MemberID (duplicates included) and all its diagnoses hash to
one bucket, so a bucket is an independent batch; inside it rows are put back
in input order, which keeps the engine's "first row wins" rules for repeated
members. The answer is `score_batch`'s on the whole roster, field for field
(`tests/spark/test_score_dataframes.py`).

Each Python worker loads the bundled reference tables once (module-level
`_STORES`, reused across tasks as Spark reuses its Python workers); the
driver broadcasts the release id and table digest it scored with, and a
worker whose installed tables differ fails the task rather than score with
other coefficients.

Output columns and types are `score_batch`'s (`BatchResult.rows`: `input_index`
then the response fields; `BatchResult.errors`), mapped to Spark types
(`ScoredLayout.spark_schema`), so `rows` can be written straight to Parquet or Delta.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Self

import polars as pl

from app.batch import (
    ERROR_COLUMNS,
    EXIT_FATAL,
    EXIT_OK,
    EXIT_REJECTED,
    REQUIRED_DIAGNOSIS_FIELDS,
    REQUIRED_MEMBER_FIELDS,
)
from engine.finance import FINANCE_FIELDS
from engine.run import DIAGNOSIS_FIELDS, DX_SUMMARY_KEYS, MEMBERSHIP_FIELDS, score_batch

if TYPE_CHECKING:  # pyspark is an optional extra: imported where it is used
    from pyspark.sql import DataFrame

#: Members per Spark partition when `partitions` is not given. Measured with
#: `benchmarks/spark.py` (README "Scoring on Spark"): at 50k members a
#: partition is one engine chunk (`engine.run.CHUNK_MEMBERS`), its fixed cost
#: is a few percent of its scoring time, and a task needs well under 1 GB.
MEMBERS_PER_PARTITION = 50_000

#: The bucket column both inputs are partitioned and cogrouped by.
BUCKET = "_raf_bucket"
#: What a record of the scored table is: a response row, a member error or a count.
KIND = "_raf_kind"
COUNT_KEY, COUNT_VALUE = "_raf_key", "_raf_count"
ERROR_FIELDS = ("MemberID", "input_index", "field", "message")


class SparkInputError(ValueError):
    """An input DataFrame cannot be scored (a required column is missing); names the column."""


class ConservationError(RuntimeError):
    """The run lost or invented a membership row or a diagnosis; the message names the counts."""


class ReferenceMismatch(RuntimeError):
    """A worker's reference tables are not the release the driver scored with."""


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class SparkScores:
    """What `score_dataframes` returns; unpacks as `rows, errors`.

    `rows` and `errors` are views of one persisted scored table (computed once,
    when the conservation check ran); `unpersist()` (or leaving a `with` block)
    frees it. `partition_stats`:
    the largest bucket's membership rows, the engine's seconds in all buckets and
    in the slowest one, the largest Python worker peak RSS. Neither frame is ordered:
    sort by `input_index` (a member's rows are raw V28, raw V24, active, in
    that order within an `input_index` when sorted by `Active_Score`,
    `Clinical_Version`) or by `Member_Id`.
    """

    rows: DataFrame
    errors: DataFrame
    dx_summary: dict[str, int]
    member_count: int
    diagnosis_count: int
    members_scored: int
    members_rejected: int
    partitions: int
    reference: dict[str, Any]
    partition_stats: dict[str, float] = field(default_factory=dict)
    _scored: Any = None

    def __iter__(self) -> Iterator[DataFrame]:
        yield self.rows
        yield self.errors

    def unpersist(self) -> None:
        if self._scored is not None:
            self._scored.unpersist()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unpersist()


# --------------------------------------------------------------------------- types


def _polars_type(dtype: pl.DataType) -> pl.DataType:
    """`dtype` with unsigned ints widened to the signed type that holds them (Spark has
    no unsigned types); the rest maps one to one (`spark_schema`)."""
    widened = {pl.UInt8: pl.Int16, pl.UInt16: pl.Int32, pl.UInt32: pl.Int64}
    for unsigned, signed in widened.items():
        if dtype == unsigned:
            return signed
    if isinstance(dtype, pl.List):
        return pl.List(_polars_type(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct([pl.Field(f.name, _polars_type(f.dtype)) for f in dtype.fields])
    return dtype


@dataclass(frozen=True)
class ScoredLayout:
    """Columns of the table a bucket returns: `KIND`, the rows' columns, the errors'
    columns that rows lack, and a count (key, value). Derived from `score_batch` on
    an empty batch, so it is the engine's own schema, detail fields included."""

    row_schema: dict[str, pl.DataType]
    error_schema: dict[str, pl.DataType]

    @classmethod
    def of(
        cls, payment_year: int, store: Any, detail: bool, finance: bool = False
    ) -> ScoredLayout:
        empty = score_batch(
            pl.DataFrame(schema={f: pl.String for f in MEMBERSHIP_FIELDS}),
            pl.DataFrame(schema={f: pl.String for f in DIAGNOSIS_FIELDS}),
            payment_year,
            store,
            detail=detail,
            finance=finance,
        )
        return cls(
            {name: _polars_type(dtype) for name, dtype in empty.rows.schema.items()},
            {name: _polars_type(dtype) for name, dtype in empty.errors.schema.items()},
        )

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        extra = {n: t for n, t in self.error_schema.items() if n not in self.row_schema}
        return {
            KIND: pl.String,
            **self.row_schema,
            **extra,
            COUNT_KEY: pl.String,
            COUNT_VALUE: pl.Int64,
        }

    def spark_schema(self) -> Any:
        """The Spark schema of `polars_schema`: String -> string, Int16 -> short, Int8 ->
        byte, List -> array, Struct -> struct, ... (pyspark's own Arrow mapping)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(pl.DataFrame(schema=self.polars_schema).to_arrow().schema)


# --------------------------------------------------------------------------- inputs


def _input_frame(
    frame: DataFrame,
    fields: tuple[str, ...],
    required: tuple[str, ...],
    role: str,
    optional: tuple[str, ...] = (),
) -> tuple[DataFrame, int]:
    """(the known columns as strings, missing optional ones null, plus `input_index`; rows).

    Column names match case- and space-insensitively, as `raf score` reads files;
    a required column missing is a `SparkInputError` naming it. An `input_index`
    column the caller brings is kept (it must be unique: it is what errors cite);
    otherwise it is the row position (`_with_row_index`). `optional` columns
    (the finance fields) are kept only when present.
    """
    from pyspark.sql import functions as F

    by_key = {name.lower(): name for name in (*fields, *optional)}
    columns: dict[str, str] = {}
    for name in frame.columns:
        canonical = by_key.get(name.strip().lower())
        if canonical is None:
            continue
        if canonical in columns:
            raise SparkInputError(
                f"{role}: columns {columns[canonical]!r} and {name!r} both mean {canonical!r}"
            )
        columns[canonical] = name
    missing = [name for name in required if name not in columns]
    if missing:
        raise SparkInputError(
            f"{role}: no column {missing[0]!r} (expected columns {', '.join(fields)}; "
            f"found {', '.join(frame.columns) or 'none'})"
        )
    if "input_index" in frame.columns:
        count = frame.count()
    else:
        frame, count = _with_row_index(frame)
    return frame.select(
        F.col("input_index").cast("long").alias("input_index"),
        *[
            (F.col(f"`{columns[name]}`").cast("string") if name in columns else F.lit(None).cast("string"))
            .alias(name)
            for name in fields
        ],
        *[F.col(f"`{columns[name]}`").cast("string").alias(name) for name in optional if name in columns],
    ), count


def _with_row_index(frame: DataFrame) -> tuple[DataFrame, int]:
    """Add `input_index`, each row's 0-based position (partition order, then row order);
    also return the row count.

    `monotonically_increasing_id` is unique but jumps between partitions (the
    partition number sits in its upper bits); one count per input partition turns
    it into consecutive positions, all in the JVM. The input is read twice (the
    count, then the scoring), so it must read the same way twice: files and
    tables do; persist a sampled or otherwise non-deterministic frame first.
    """
    from pyspark.sql import functions as F

    tagged = frame.withColumn("_raf_partition", F.spark_partition_id()).withColumn(
        "_raf_id", F.monotonically_increasing_id()
    )
    counts = dict(tagged.groupBy("_raf_partition").count().collect())
    partitions = max(counts, default=-1) + 1
    offsets, total = [], 0
    for partition in range(partitions):
        offsets.append(total)
        total += counts.get(partition, 0)
    offset = F.element_at(F.array(*[F.lit(o) for o in offsets] or [F.lit(0)]), F.col("_raf_partition") + 1)
    first_id = F.shiftleft(F.col("_raf_partition").cast("long"), 33)
    indexed = tagged.withColumn("input_index", offset + (F.col("_raf_id") - first_id))
    return indexed.drop("_raf_partition", "_raf_id"), total


def _bucketed(frame: DataFrame, partitions: int) -> DataFrame:
    from pyspark.sql import functions as F

    bucket = F.pmod(F.xxhash64(F.col("MemberID")), F.lit(partitions)).cast("int")
    return frame.withColumn(BUCKET, bucket).repartition(partitions, BUCKET)


# --------------------------------------------------------------------------- workers

_STORES: dict[str, Any] = {}


def worker_store() -> Any:
    """This process's `ReferenceStore` (loaded once; `RAF_REFERENCE_DIR` as `raf score`)."""
    data_dir = os.environ.get("RAF_REFERENCE_DIR", "").strip()
    store = _STORES.get(data_dir)
    if store is None:
        from reference.store import ReferenceStore

        store = _STORES[data_dir] = ReferenceStore(data_dir or None)
    return store


class _BucketScorer:
    """The cogroup function: one bucket's memberships and diagnoses -> scored table.

    Pickled to the workers with the payment year, the layout and the broadcast
    reference; the store itself is never shipped (`worker_store`).
    """

    def __init__(
        self, payment_year: int, detail: bool, layout: ScoredLayout, reference: Any,
        finance: bool = False,
    ):
        self.payment_year = payment_year
        self.detail = detail
        self.layout = layout
        self.reference = reference  # Broadcast of {"release_id", "sha256"}
        self.finance = finance

    def __call__(self, memberships: Any, diagnoses: Any) -> Any:
        from pyspark.sql.pandas.types import to_arrow_schema

        started = time.perf_counter()
        store = worker_store()
        tables = store.year(self.payment_year)
        expected = self.reference.value
        if (tables.release_id, tables.sha256) != (expected["release_id"], expected["sha256"]):
            raise ReferenceMismatch(
                f"PY{self.payment_year}: this worker's reference tables are release "
                f"{tables.release_id} ({tables.sha256[:12]}), the driver scored with "
                f"{expected['release_id']} ({expected['sha256'][:12]}); install the same "
                "raf-service (or RAF_REFERENCE_DIR) on every node"
            )
        scored = score_bucket(
            pl.from_arrow(memberships), pl.from_arrow(diagnoses), self.payment_year, store,
            self.detail, finance=self.finance,
        )
        seconds = pl.DataFrame(
            {
                COUNT_KEY: ["partition_micros", "worker_peak_rss_kb"],
                COUNT_VALUE: [
                    int((time.perf_counter() - started) * 1e6),
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                ],
            }
        )
        schema = self.layout.polars_schema
        table = pl.concat(
            [*scored, seconds.with_columns(pl.lit("count").alias(KIND))], how="diagonal_relaxed"
        )
        unexpected = [name for name in table.columns if name not in schema]
        if unexpected:  # never drop what the engine answered: the layout is out of date
            raise RuntimeError(
                f"the engine returned columns the Spark layout does not have: {unexpected}"
            )
        table = table.select(
            pl.col(name).cast(dtype) if name in table.columns else pl.lit(None, dtype).alias(name)
            for name, dtype in schema.items()
        )
        return table.to_arrow().cast(to_arrow_schema(self.layout.spark_schema()))


def score_bucket(
    memberships: pl.DataFrame,
    diagnoses: pl.DataFrame,
    payment_year: int,
    store: Any,
    detail: bool = False,
    *,
    finance: bool = False,
) -> list[pl.DataFrame]:
    """Score one bucket: [rows, errors, counts], each with its `KIND` column.

    The bucket's rows arrive in no particular order with global `input_index`es;
    they are scored in input order under those indexes (so an error, or the
    message of an identical repeat, cites the row as `score_batch` on the whole
    roster would; `score_batch` chunks by row position, not index value). The
    counts are what `check_conservation` adds up: membership rows received and
    accounted for (by their own index or, for a repeat, their MemberID, as the
    engine accounts), distinct MemberIDs in and out, diagnosis rows received and
    per summary reason.
    """
    memberships = memberships.sort("input_index")
    diagnoses = diagnoses.sort("input_index")
    dx_index = diagnoses.get_column("input_index")
    result = score_batch(
        memberships, diagnoses, payment_year, store, detail=detail, finance=finance
    )
    rows = result.rows
    errors = result.errors

    out_ids = pl.concat(
        [rows.get_column("Member_Id"), errors.get_column("MemberID")]
    ).unique()
    seen_index = pl.concat([rows.get_column("input_index"), errors.get_column("input_index")])
    accounted = memberships.filter(
        pl.col("input_index").is_in(seen_index.implode())
        | pl.col("MemberID").is_in(out_ids.drop_nulls().implode())
    ).height
    counts = {
        "memberships_received": memberships.height,
        "memberships_accounted": accounted,
        "members_in": memberships.get_column("MemberID").n_unique(),
        "members_out": out_ids.len(),
        "members_scored": rows.filter(pl.col("Active_Score") == 1).height,
        "members_rejected": errors.get_column("input_index").n_unique(),
        "diagnoses_received": dx_index.len(),
        **{f"dx:{reason}": count for reason, count in result.dx_summary.items()},
    }
    count_frame = pl.DataFrame(
        {COUNT_KEY: list(counts), COUNT_VALUE: list(counts.values())},
        schema={COUNT_KEY: pl.String, COUNT_VALUE: pl.Int64},
    )
    return [
        rows.with_columns(pl.lit("row").alias(KIND)),
        errors.with_columns(pl.lit("error").alias(KIND)),
        count_frame.with_columns(pl.lit("count").alias(KIND)),
    ]


# --------------------------------------------------------------------------- driver


def check_conservation(counts: dict[str, int], member_count: int, diagnosis_count: int) -> None:
    """Raise `ConservationError` unless every input row is accounted for, cluster-wide.

    `counts` are the buckets' counts added up (`score_bucket`); `member_count` and
    `diagnosis_count` are the inputs' row counts, taken before scoring.
    """
    dx_counted = sum(v for k, v in counts.items() if k.startswith("dx:"))
    problems = []
    if counts.get("memberships_received", 0) != member_count:
        problems.append(
            f"{member_count} membership rows in the input but "
            f"{counts.get('memberships_received', 0)} reached a scoring task"
        )
    if counts.get("memberships_accounted", 0) != counts.get("memberships_received", 0):
        problems.append(
            f"{counts.get('memberships_received', 0)} membership rows scored but only "
            f"{counts.get('memberships_accounted', 0)} are in rows or errors"
        )
    if counts.get("members_out", 0) != counts.get("members_in", 0):
        problems.append(
            f"{counts.get('members_in', 0)} distinct MemberIDs in but "
            f"{counts.get('members_out', 0)} in rows and errors"
        )
    if counts.get("diagnoses_received", 0) != diagnosis_count:
        problems.append(
            f"{diagnosis_count} diagnosis rows in the input but "
            f"{counts.get('diagnoses_received', 0)} reached a scoring task"
        )
    if dx_counted != diagnosis_count:
        problems.append(
            f"{diagnosis_count} diagnosis rows in the input but {dx_counted} in the diagnoses summary"
        )
    if problems:
        raise ConservationError("member conservation failed: " + "; ".join(problems))


def score_dataframes(
    memberships: DataFrame,
    diagnoses: DataFrame,
    payment_year: int,
    *,
    detail: bool = False,
    partitions: int | None = None,
    members_per_partition: int = MEMBERS_PER_PARTITION,
) -> SparkScores:
    """Score Spark DataFrames of memberships and diagnoses; returns `SparkScores` (`rows, errors`).

    Inputs have the JSON field names (`MemberID, DOB, Gender, RAType, Hospice,
    LTIMCAID, NEMCAID, OREC`; `MemberID, FromDOS, ThruDOS, DxCode`), any column
    types (cast to strings, as `raf score` reads Parquet). `partitions` defaults to
    one per `members_per_partition` membership rows. Raises
    `reference.UnsupportedPaymentYear` before any Spark job for an unknown year,
    `SparkInputError` for a missing required column, `ConservationError` when the
    run's counts do not add up (nothing is returned then).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    store = worker_store()
    tables = store.year(payment_year)  # unknown year: fails here, on the driver
    # plan finance (Enrollment_*, County, Monthly_Rate) when the memberships carry a
    # finance column: decided once here, so every bucket returns the same columns
    present = {name.strip().lower() for name in memberships.columns}
    finance = any(name.lower() in present for name in FINANCE_FIELDS)
    layout = ScoredLayout.of(payment_year, store, detail, finance)
    members, member_count = _input_frame(
        memberships, MEMBERSHIP_FIELDS, REQUIRED_MEMBER_FIELDS, "memberships",
        optional=FINANCE_FIELDS if finance else (),
    )
    dx, diagnosis_count = _input_frame(
        diagnoses, DIAGNOSIS_FIELDS, REQUIRED_DIAGNOSIS_FIELDS, "diagnoses"
    )
    if max(member_count, diagnosis_count) >= 2**32:  # the engine's input_index is UInt32
        raise SparkInputError(
            f"{member_count:,} membership and {diagnosis_count:,} diagnosis rows: split the run "
            "(at most 4,294,967,295 rows of each per call)"
        )
    if partitions is None:
        if members_per_partition < 1:
            raise ValueError(f"members_per_partition must be at least 1, got {members_per_partition}")
        partitions = max(1, math.ceil(member_count / members_per_partition))
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")

    spark = memberships.sparkSession
    reference = spark.sparkContext.broadcast(
        {"release_id": tables.release_id, "sha256": tables.sha256}
    )
    scorer = _BucketScorer(payment_year, detail, layout, reference, finance)

    def score(memberships: Any, diagnoses: Any) -> Any:
        # a plain two-argument function: Spark reads the arity to tell (left, right)
        # from (key, left, right), and a callable object's `self` would count
        return scorer(memberships, diagnoses)

    scored = (
        _bucketed(members, partitions)
        .groupBy(BUCKET)
        .cogroup(_bucketed(dx, partitions).groupBy(BUCKET))
        .applyInArrow(score, schema=layout.spark_schema())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        aggregated = (
            scored.filter(F.col(KIND) == "count")
            .groupBy(COUNT_KEY)
            .agg(F.sum(COUNT_VALUE).alias("total"), F.max(COUNT_VALUE).alias("max"))
            .collect()
        )
        counts = {row[COUNT_KEY]: int(row["total"]) for row in aggregated}
        check_conservation(counts, member_count, diagnosis_count)
    except BaseException:
        scored.unpersist()
        raise
    most = {row[COUNT_KEY]: int(row["max"]) for row in aggregated}
    dx_summary = dict.fromkeys(DX_SUMMARY_KEYS, 0)
    dx_summary.update({k[3:]: v for k, v in counts.items() if k.startswith("dx:")})
    return SparkScores(
        rows=scored.filter(F.col(KIND) == "row").select(*layout.row_schema),
        errors=scored.filter(F.col(KIND) == "error").select(*layout.error_schema),
        dx_summary=dx_summary,
        member_count=member_count,
        diagnosis_count=diagnosis_count,
        members_scored=counts.get("members_scored", 0),
        members_rejected=counts.get("members_rejected", 0),
        partitions=partitions,
        reference={"payment_year": payment_year, "release_id": tables.release_id,
                   "sha256": tables.sha256},
        partition_stats={
            "max_memberships": most.get("memberships_received", 0),
            "seconds_total": counts.get("partition_micros", 0) / 1e6,
            "seconds_max": most.get("partition_micros", 0) / 1e6,
            # a Python worker's peak RSS (workers are reused, so: the largest so far)
            "worker_peak_rss_mb": most.get("worker_peak_rss_kb", 0) / 1024,
        },
        _scored=scored,
    )


# --------------------------------------------------------------------------- CLI

_NO_NULL_MARKER = "\u0000raf:no-null-marker\u0000"

#: Response-row columns the batch CLI writes to its detail file, not to `--out`.
DETAIL_KEY_COLUMNS = ("Member_Id", "Model", "Clinical_Version", "Active_Score")


def read_input(spark: Any, spec: str, fmt: str, role: str) -> tuple[DataFrame, int]:
    """(frame, line offset) for `--members`/`--diagnoses`: `table:NAME` (a catalog table),
    or a path/URI read as CSV (header, every column a string) or Parquet.

    The offset turns `input_index` into the CSV line (header = line 1) or the 1-based
    row, as `raf score` reports it; for a directory of files it is the position in
    Spark's read order.
    """
    if spec.startswith("table:"):
        return spark.table(spec.removeprefix("table:")), 1
    if fmt == "auto":
        suffix = os.path.splitext(spec.rstrip("/"))[1].lower()
        if suffix == ".json":
            raise SparkInputError(
                f"{spec}: a JSON request is request-sized; score it with `raf score` "
                "(spark-score reads CSV, Parquet or catalog tables)"
            )
        fmt = "csv" if suffix in (".csv", ".txt") else "parquet"
    if fmt == "csv":
        # as `raf score` reads CSV (polars): an empty field is null, a quoted empty
        # field ("") an empty string. Spark calls both null when `nullValue` is "";
        # a marker that never occurs leaves "" to the empty value
        reader = spark.read.options(
            header=True, inferSchema=False, escape='"', mode="FAILFAST", encoding="UTF-8",
            nullValue=_NO_NULL_MARKER, emptyValue="",
        )
        return reader.csv(spec), 2
    return spark.read.format(fmt).load(spec), 1


def output_frames(
    scores: SparkScores, source: Any, out_format: str
) -> tuple[DataFrame, DataFrame, DataFrame | None]:
    """(rows, errors, detail) as `raf score` writes them: rows without `input_index` and
    without the nested detail fields (those go to the detail output, keyed by member
    and model), `Warnings` null when empty (as on the wire), errors with `line` and an
    identical repeat's message naming the earlier row's line (`app.batch`'s rewrite,
    run on the errors in the workers). `source`: `line_offset`, `member_row_name`,
    `members_label`, as `app.batch.RosterSource` has them."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    nested = [
        f.name
        for f in scores.rows.schema.fields
        if isinstance(f.dataType, T.ArrayType) and isinstance(f.dataType.elementType, T.StructType)
    ]
    rows = scores.rows.drop("input_index", *nested).withColumn(
        "Warnings", F.when(F.size("Warnings") > 0, F.col("Warnings"))
    )
    if out_format == "csv":  # CSV has no arrays: `raf score` joins them with '; '
        rows = rows.withColumn("Warnings", F.concat_ws("; ", "Warnings")).withColumn(
            "Warnings", F.when(F.col("Warnings") != "", F.col("Warnings"))
        )
    def name_lines(batches: Iterator[Any]) -> Iterator[Any]:
        from app.batch import _name_repeated_lines

        for batch in batches:
            frame = pl.from_arrow(batch)
            repeats = frame.get_column("duplicate_of").is_not_null()
            if repeats.any():
                frame = _name_repeated_lines(frame, repeats, source)
            out = frame.select(
                "MemberID",
                (pl.col("input_index") + source.line_offset).alias("line"),
                "field",
                "message",
            )
            yield from out.to_arrow().cast(errors_arrow).to_batches()

    from pyspark.sql.pandas.types import to_arrow_schema

    errors_schema = "MemberID string, line long, field string, message string"
    errors_arrow = to_arrow_schema(T.StructType.fromDDL(errors_schema))
    errors = scores.errors
    if "duplicate_of" not in errors.columns:
        errors = errors.withColumn("duplicate_of", F.lit(None).cast("long"))
    errors = errors.mapInArrow(name_lines, errors_schema).select(*ERROR_COLUMNS)
    detail = scores.rows.select(*DETAIL_KEY_COLUMNS, *nested) if nested else None
    return rows, errors, detail


def _write(frame: DataFrame, target: str, fmt: str, mode: str) -> None:
    if target.startswith("table:"):
        frame.write.mode(mode).format(fmt).saveAsTable(target.removeprefix("table:"))
    else:
        frame.write.mode(mode).format(fmt).save(target)


def _sibling(target: str, tag: str) -> str:
    return f"{target.rstrip('/')}_{tag}"


def run(args: Any) -> int:
    """Body of `raf spark-score`: exit 0 all scored, 2 some members rejected, 1 fatal.

    Under `spark-submit` the session is the one spark-submit configured; run
    directly, it starts one (`--master`, default `local[*]`) and stops it at the end.
    """
    import json
    import sys

    started = time.monotonic()
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        sys.stderr.write(
            "raf spark-score: error: pyspark is not installed; pip install 'raf-service[spark]'\n"
        )
        return EXIT_FATAL
    from pyspark.errors import PySparkException

    from reference.store import UnsupportedPaymentYear

    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: we start the JVM
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    owned = SparkSession.getActiveSession() is None
    builder = SparkSession.builder.appName("raf spark-score")
    if args.master:
        builder = builder.master(args.master)
    for setting in args.conf or ():
        key, sep, value = setting.partition("=")
        if not sep or not key.strip():
            sys.stderr.write(f"raf spark-score: error: --conf {setting!r} is not KEY=VALUE\n")
            return EXIT_FATAL
        builder = builder.config(key.strip(), value)
    spark = builder.getOrCreate()
    out = args.out.rstrip("/")
    errors_target = args.errors or _sibling(out, "errors")
    fmt = args.format
    try:
        if args.detail and fmt == "csv":
            raise SparkInputError("--detail writes nested fields: use --format parquet (or delta, orc)")
        members, line_offset = read_input(spark, args.members, args.input_format, "memberships")
        source = SimpleNamespace(
            line_offset=line_offset,
            member_row_name="line {}" if line_offset == 2 else "row {}",
            members_label=args.members.removeprefix("table:").rstrip("/"),
        )
        if args.diagnoses:
            diagnoses, _ = read_input(spark, args.diagnoses, args.input_format, "diagnoses")
        else:
            diagnoses = spark.createDataFrame(
                [], ", ".join(f"{name} string" for name in DIAGNOSIS_FIELDS)
            )
        scores = score_dataframes(
            members,
            diagnoses,
            args.payment_year,
            detail=args.detail,
            partitions=args.partitions,
            members_per_partition=args.members_per_partition or MEMBERS_PER_PARTITION,
        )
        rows, errors, detail = output_frames(scores, source, fmt)
        _write(rows, out, fmt, args.mode)
        _write(errors, errors_target, fmt, args.mode)
        if detail is not None:
            _write(detail, _sibling(out, "detail"), fmt, args.mode)
        scores.unpersist()
    except (SparkInputError, UnsupportedPaymentYear, ConservationError, ValueError) as exc:
        sys.stderr.write(f"raf spark-score: error: {exc}\n")
        return EXIT_FATAL
    except PySparkException as exc:  # unreadable input, existing output, a failed task
        sys.stderr.write(f"raf spark-score: error: {exc}\n")
        return EXIT_FATAL
    except Exception as exc:  # a bug, not bad input: say so, keep the traceback  # noqa: BLE001
        import traceback

        traceback.print_exc()
        sys.stderr.write(
            f"raf spark-score: error: internal error ({type(exc).__name__}: {exc}); "
            "please report it with the traceback\n"
        )
        return EXIT_FATAL
    finally:
        if owned:
            spark.stop()
    summary = {
        "payment_year": args.payment_year,
        "member_count": scores.member_count,
        "members_scored": scores.members_scored,
        "members_rejected": scores.members_rejected,
        "diagnosis_count": scores.diagnosis_count,
        "diagnoses_summary": scores.dx_summary,
        "partitions": scores.partitions,
        "reference": scores.reference,
        "out": out,
        "errors": errors_target,
        "seconds": round(time.monotonic() - started, 3),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    if not args.quiet:
        sys.stderr.write(
            f"raf spark-score: {scores.member_count:,} members, {scores.members_scored:,} scored, "
            f"{scores.members_rejected:,} rejected, {scores.partitions} partitions -> {out}"
            f"; errors -> {errors_target} ({summary['seconds']:.1f}s)\n"
        )
    return EXIT_REJECTED if scores.members_rejected else EXIT_OK

