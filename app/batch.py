"""`raf score`: score roster files of any size with the same engine as the API.

The CLI and the asynchronous jobs (`app.jobs`) share one pipeline,
`score_roster`, so a file scored from the shell and the same file submitted as a
job produce the same bytes. The pipeline never holds a whole roster in memory:

1. inputs are scanned lazily as strings (CSV, Parquet) -- the seed's JSON
   request format is the one exception, it is a request-sized document;
2. only the `MemberID` column is sorted to cut the roster into key ranges of
   about `chunk_members` members, so all of a member's diagnoses (and every
   duplicate of a MemberID) fall in the same chunk;
3. each chunk is collected with predicate pushdown, scored by
   `engine.run.score_batch` and appended to the output sinks.

Rows are written in MemberID order (ties in file order) rather than file order:
that order is the same for every chunk size, which is what makes chunked output
byte-identical to one-chunk output without an external sort of the results.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec
import polars as pl

from app.json_depth import check_json_depth
from app.quality import WarningThresholds, add_counts, diagnosis_warnings, thru_year_counts
from app.settings import warning_thresholds_from_env
from app.software import software_dict
from engine.finance import FINANCE_FIELDS
from ratype.normalizer import MEMBERSHIP_FIELDS

MEMBER_FIELDS: tuple[str, ...] = (*MEMBERSHIP_FIELDS, *FINANCE_FIELDS)  # finance: optional
DIAGNOSIS_FIELDS: tuple[str, ...] = ("MemberID", "FromDOS", "ThruDOS", "DxCode")
#: Columns the scoring needs: a file without one of them is one fatal error (CLI exit 1,
#: job submission 400), not one rejected member or dropped diagnosis per row.
REQUIRED_MEMBER_FIELDS: tuple[str, ...] = ("MemberID", "DOB", "Gender", "RAType")
REQUIRED_DIAGNOSIS_FIELDS: tuple[str, ...] = ("MemberID", "FromDOS", "ThruDOS", "DxCode")
REQUIRED_FIELDS = {"memberships": REQUIRED_MEMBER_FIELDS, "diagnoses": REQUIRED_DIAGNOSIS_FIELDS}
ERROR_COLUMNS: tuple[str, ...] = ("MemberID", "line", "field", "message")
INPUT_FORMATS = {
    ".mmr": "mmr",
    ".csv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
}
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_REJECTED = 2  # some membership rows are in the errors file
EXIT_WARNINGS = 3  # --strict and a data-quality warning fired (app.quality)

ScoreBatch = Callable[..., Any]


class BatchInputError(Exception):
    """A fatal problem with an input or output file; the message names the file and field."""


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class RosterSource:
    """Lazy string frames of one roster, each with a global `input_index`.

    `line_offset` turns a member's `input_index` into the line (CSV: header is
    line 1), row (Parquet, 1-based) or array position (JSON, 1-based) a user can
    find in the file they sent; `diagnoses_line_offset` does the same for a
    diagnosis row of the diagnoses file.
    """

    memberships: pl.LazyFrame
    diagnoses: pl.LazyFrame
    line_offset: int
    members_label: str
    embedded_payment_year: int | None = None
    embedded_rates: Any = None  # a JSON request's own `rates` (engine.finance.RateTable)
    diagnoses_line_offset: int = 2
    diagnoses_label: str = "diagnoses"
    # Members rejected before scoring (`MemberID, input_index, field, message`): an MMR
    # file's malformed records and conflicting months. `inputs`: what the reader counted.
    rejected: pl.DataFrame | None = None
    inputs: dict[str, Any] | None = None
    #: how messages name a membership row by its `line` ("line {}" in a CSV, "row {}" in
    #: Parquet); None for a JSON request, whose `memberships[i]` the engine already names
    member_row_name: str | None = "line {}"


def input_format(path: Path) -> str:
    fmt = INPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BatchInputError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
            "use .csv, .parquet or .json (or .mmr for CMS's MMR detail file)"
        )
    return fmt


def _as_string_columns(
    lf: pl.LazyFrame, fields: tuple[str, ...], present: list[str]
) -> pl.LazyFrame:
    """Keep the known columns, as strings, so Parquet ints/dates read like CSV text."""
    return lf.select(
        pl.col("input_index").cast(pl.UInt32),
        *[pl.col(name).cast(pl.String) for name in fields if name in present],
    )


def _scan_table(
    path: Path, fields: tuple[str, ...], required: tuple[str, ...], role: str
) -> tuple[pl.LazyFrame, int]:
    """Scan a CSV or Parquet table lazily; fail fast, naming the file, if it cannot be used."""
    if not path.is_file():
        raise BatchInputError(f"{path}: {role} file not found")
    fmt = input_format(path)
    try:
        if fmt == "csv":
            lf = pl.scan_csv(path, infer_schema=False, row_index_name="input_index")
            line_offset = 2
        elif fmt == "parquet":
            lf = pl.scan_parquet(path).with_row_index("input_index")
            line_offset = 1
        elif fmt == "json":
            raise BatchInputError(
                f"{path}: a JSON request carries its own diagnoses; pass it as --members only"
            )
        else:
            raise BatchInputError(f"{path}: an MMR file holds memberships, not a {role} table")
        names = lf.collect_schema().names()
    except BatchInputError:
        raise
    except Exception as exc:  # polars raises several types for unreadable files
        raise BatchInputError(f"{path}: cannot read {role} file: {exc}") from exc
    renames = _field_renames(path, names, fields)
    lf, names = lf.rename(renames), [renames.get(n, n) for n in names]
    require_columns(path, role, [n for n in names if n != "input_index"], required)
    return _as_string_columns(lf, fields, names), line_offset


_PLAIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ .-]{0,39}$")


def require_columns(
    label: str | Path, role: str, found: list[str], required: tuple[str, ...] | None = None
) -> None:
    """One fatal error naming the file, every missing required column and the columns found.

    `role` is "memberships" or "diagnoses" (`REQUIRED_FIELDS` says what each needs);
    `found` are the header names after `_field_renames`. Optional columns (Hospice,
    LTIMCAID, NEMCAID, OREC) may be absent: they are judged per member. Used when a
    file is opened (CLI and jobs) and by the submit-time checks. The columns found
    are quoted only when they look like column names: a file of junk bytes, or one
    whose first line is data, must not come back echoed.
    """
    required = REQUIRED_FIELDS[role] if required is None else required
    missing = [name for name in required if name not in found]
    if not missing:
        return
    shown = [n for n in found if _PLAIN_NAME.match(n)]
    found_text = (
        f"found: {', '.join(shown)}"
        if shown and len(shown) == len(found) and len(shown) <= 40
        else "the first line does not look like a header of column names"
    )
    plural = "s" if len(missing) > 1 else ""
    raise BatchInputError(
        f"{label}: {role} file is missing required column{plural} {', '.join(missing)} "
        f"(required: {', '.join(required)}; {found_text})"
    )


def _field_renames(path: Path, names: list[str], fields: tuple[str, ...]) -> dict[str, str]:
    """Accept header spellings that differ only in case or surrounding spaces
    (`memberid`, ` DxCode `): spreadsheet exports vary, the meaning does not."""
    by_key = {field.lower(): field for field in fields}
    renames: dict[str, str] = {}
    for name in names:
        field = by_key.get(name.strip().lower())
        if field is None or name == field:
            continue
        if field in names or field in renames.values():
            raise BatchInputError(f"{path}: column {name!r} and another column both mean {field!r}")
        renames[name] = field
    return renames


# --------------------------------------------------------------------------- submit-time checks

HEAD_LINES = 1_000  # how much of a CSV `check_roster_files` reads: the header and first rows
MAX_LINE_BYTES = 64 * 1024  # no roster row is near this long; a longer "line" is not a CSV
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def check_roster_files(members: Path, diagnoses: Path | None, head_lines: int = HEAD_LINES) -> None:
    """Cheap checks of uploaded roster files before a job is accepted: the encoding,
    header, delimiter and the first `head_lines` rows of a CSV (quotes closed, no
    more fields than the header), a Parquet file's schema and first rows. Raises
    `BatchInputError` with a short message naming the file, the line and the
    problem; polars' own text is never part of it. JSON requests are decoded
    whole by `open_roster`, which is the check for them.
    """
    for path, role, fields, required in (
        (members, "memberships", MEMBER_FIELDS, REQUIRED_MEMBER_FIELDS),
        (diagnoses, "diagnoses", DIAGNOSIS_FIELDS, REQUIRED_DIAGNOSIS_FIELDS),
    ):
        if path is None or not path.is_file():
            continue  # open_roster says "not found" in its own words
        fmt = input_format(path)
        if fmt == "csv":
            problem = csv_problem(path, role, fields, required, head_lines)
            if problem:
                raise BatchInputError(problem)
        elif fmt == "parquet":
            try:
                names = list(pl.read_parquet_schema(path))
                pl.scan_parquet(path).head(head_lines).collect()
            except Exception as exc:  # polars raises several types for unreadable files
                raise BatchInputError(
                    f"{path}: {role} file is not a readable Parquet file"
                ) from exc
            renames = _field_renames(path, names, fields)
            require_columns(path, role, [renames.get(n, n) for n in names], required)


def csv_problem(
    path: Path,
    role: str,
    fields: tuple[str, ...],
    required: tuple[str, ...],
    max_lines: int | None = None,
) -> str | None:
    """The first problem in a roster CSV (within `max_lines`, or the whole file), as a
    message naming the line, or None. No roster field holds a line break, so every line
    must be one complete CSV record; that lets the check name the exact line. Used at
    job submit (the first rows) and, when a full read fails, to say where (the file).
    """
    with open(path, "rb") as handle:
        return _first_csv_problem(path, role, _lines(handle, max_lines), fields, required)


def _lines(handle: Any, max_lines: int | None) -> Iterator[tuple[int, bytes]]:
    number = 0
    while max_lines is None or number < max_lines:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        yield number, raw


def _first_csv_problem(
    path: Path,
    role: str,
    lines: Iterable[tuple[int, bytes]],
    fields: tuple[str, ...],
    required: tuple[str, ...],
) -> str | None:
    width = 0
    seen_header = False
    for number, raw in lines:
        where = f"{path}: line {number}"
        if len(raw) > MAX_LINE_BYTES:
            return f"{where} is longer than {MAX_LINE_BYTES:,} bytes; is this a CSV file?"
        try:
            text = codecs.decode(raw, "utf-8")
        except UnicodeDecodeError as exc:
            return (
                f"{where}: byte {exc.start + 1} is not UTF-8 text; "
                f"save the {role} file as UTF-8 CSV"
            )
        text = text.removeprefix("\ufeff") if number == 1 else text
        text = text.rstrip("\r\n")
        if any(ord(ch) < 32 and ch != "\t" for ch in text):
            return f"{where} has control characters; is this a CSV file?"
        if not seen_header:
            seen_header = True
            header = _csv_record(text)
            if header is None:
                return f"{where}: the header line has an unclosed or stray quote"
            if len(header) == 1:
                for delimiter, name in _OTHER_DELIMITERS.items():
                    if delimiter in header[0]:
                        return (
                            f"{where}: the header is {name}-separated; "
                            f"send comma-separated values"
                        )
            renames = _field_renames(path, header, fields)
            try:
                require_columns(path, role, [renames.get(n, n) for n in header], required)
            except BatchInputError as exc:
                return f"{where}: {str(exc).removeprefix(f'{path}: ')}"
            width = len(header)
            continue
        if not text.strip():
            continue
        record = _csv_record(text)
        if record is None:
            return (
                f"{where}: a quoted field is not closed, or text follows its closing quote; "
                'quote whole fields ("...") and double any quote inside them ("")'
            )
        if len(record) > width:
            return f"{where} has {len(record)} fields; the header (line 1) has {width}"
    if not seen_header:
        return f"{path}: the {role} file is empty; expected a header line"
    return None


def _csv_record(text: str) -> list[str] | None:
    try:
        return next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration):
        return None


class InputReadError(BatchInputError):
    """An input file failed part-way through a full read (a bad row past the rows checked
    at submit). `path` and `role` let a caller say where without quoting polars."""

    def __init__(self, message: str, path: str, role: str) -> None:
        super().__init__(message)
        self.path = path
        self.role = role

    def short_message(self) -> str:
        """The first bad line when the file is a CSV, else what kind of file it failed as."""
        path = Path(self.path)
        fields, required = (
            (DIAGNOSIS_FIELDS, REQUIRED_DIAGNOSIS_FIELDS)
            if self.role == "diagnoses"
            else (MEMBER_FIELDS, REQUIRED_MEMBER_FIELDS)
        )
        fmt = INPUT_FORMATS.get(path.suffix.lower(), "csv")
        if fmt == "csv" and path.is_file():
            problem = csv_problem(path, self.role, fields, required)
            if problem:
                return problem
        return f"{path}: cannot read the {self.role} file; it is not well-formed {fmt.upper()}"


class _JsonRequest(msgspec.Struct):
    memberships: list[dict[str, Any]]
    diagnoses: list[dict[str, Any]] = []
    payment_year: int | str | None = None
    rates: list[dict[str, Any]] | None = None


def _records_frame(records: list[dict[str, Any]], fields: tuple[str, ...]) -> pl.DataFrame:
    """Build a string frame from JSON records; non-string scalars (OREC: 0) become their text.

    A field holding an object or an array cannot be cast to text by polars (ComputeError:
    a 500 found by fuzzing `POST /api/risk-assessment`); only then are the records rebuilt
    with such values as their JSON text (and integers, which may not fit Int64, as their
    digits), so that member is judged like any other bad value
    (a member error naming the field) instead of failing the whole roster."""
    schema = {name: pl.String for name in fields}
    try:
        frame = pl.DataFrame(records, schema=schema, strict=False)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, TypeError, ValueError):
        frame = pl.DataFrame(
            [{name: _scalar_or_json(record.get(name)) for name in fields} for record in records],
            schema=schema,
            strict=False,
        )
    return frame.with_row_index("input_index")


def _scalar_or_json(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value).decode()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an integer past Int64 (JSON allows any) fails polars' cast too
    return value


def _read_json_request(path: Path) -> RosterSource:
    try:
        body = path.read_bytes()
        check_json_depth(body)
        request = msgspec.json.decode(body, type=_JsonRequest)
    except OSError as exc:
        raise BatchInputError(f"{path}: cannot read request file: {exc}") from exc
    except msgspec.ValidationError as exc:
        raise BatchInputError(f"{path}: not a risk-score request: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BatchInputError(f"{path}: not valid JSON: {exc}") from exc
    for role, records, fields in (
        ("memberships", request.memberships, MEMBER_FIELDS),
        ("diagnoses", request.diagnoses, DIAGNOSIS_FIELDS),
    ):
        if records:  # a field no record has is a missing column; one record without it is
            seen = set().union(*records)  # that member's (or diagnosis's) own problem
            require_columns(path, role, [name for name in fields if name in seen])
    year = request.payment_year
    try:
        embedded = None if year in (None, "") else int(year)
    except ValueError as exc:
        raise BatchInputError(f"{path}: `payment_year` {year!r} is not a year") from exc
    memberships = _records_frame(request.memberships, MEMBER_FIELDS)
    # a finance field no member sent is not a column: the output then has no finance columns
    memberships = memberships.drop(
        name for name in FINANCE_FIELDS if memberships.get_column(name).null_count() == memberships.height
    )
    return RosterSource(
        memberships=memberships.lazy(),
        diagnoses=_records_frame(request.diagnoses, DIAGNOSIS_FIELDS).lazy(),
        line_offset=1,
        members_label=str(path),
        embedded_payment_year=embedded,
        embedded_rates=_request_rates(path, request.rates, embedded),
        diagnoses_line_offset=1,
        diagnoses_label=str(path),
        member_row_name=None,
    )


def _request_rates(path: Path, records: list[dict[str, Any]] | None, year: int | None) -> Any:
    """A JSON request's `rates` as a RateTable (rows without `payment_year` take the
    request's); a bad row is fatal, naming it (`rates[i]`), as the API's 400 does."""
    if not records:
        return None
    from engine.finance import RateTable, RateTableError

    try:
        return RateTable.from_records(
            ({**r, "payment_year": r.get("payment_year", year)} for r in records),
            label=f"{path}: rates",
        )
    except RateTableError as exc:
        raise BatchInputError(str(exc)) from exc


def _diagnoses_table(diagnoses: Path | None) -> tuple[pl.LazyFrame, int]:
    if diagnoses is None:
        empty = pl.LazyFrame(
            schema={"input_index": pl.UInt32, **{name: pl.String for name in DIAGNOSIS_FIELDS}}
        )
        return empty, 2
    return _scan_table(diagnoses, DIAGNOSIS_FIELDS, REQUIRED_DIAGNOSIS_FIELDS, "diagnoses")


def open_mmr_roster(
    mmr_path: Path,
    diagnoses: Path | None,
    payment_year: int,
    layout: str | Path | None = None,
    status_rule: str = "error",
) -> tuple[RosterSource, Any]:
    """A roster from CMS's MMR detail file (`app.mmr`): one membership per member for the
    payment year; the file's malformed records and conflicting months are `rejected`.
    Returns the source and the `MmrResult` (its `members` frame is the audit of the file)."""
    from app import mmr

    try:
        result = mmr.read_mmr(mmr_path, payment_year, mmr.load_layout(layout), status_rule)  # type: ignore[arg-type]
    except mmr.MmrError as exc:
        raise BatchInputError(str(exc)) from exc
    columns = [name for name in MEMBER_FIELDS if name in result.memberships.columns]
    diagnosis_frame, diagnoses_line_offset = _diagnoses_table(diagnoses)
    source = RosterSource(
        result.memberships.select("input_index", *columns).lazy(),
        diagnosis_frame,
        line_offset=1,
        members_label=str(mmr_path),
        diagnoses_line_offset=diagnoses_line_offset,
        diagnoses_label=str(diagnoses) if diagnoses else "diagnoses",
        rejected=result.errors,
        inputs={"mmr": result.summary},
    )
    return source, result


def open_roster(
    members: Path, diagnoses: Path | None, payment_year: int | None = None
) -> RosterSource:
    """Open a roster: a JSON request alone, an MMR file (`.mmr`; needs `payment_year`), or
    a memberships table, each with an optional diagnoses table."""
    if input_format(members) == "mmr":
        if payment_year is None:
            raise BatchInputError(f"{members}: an MMR file needs the payment year")
        return open_mmr_roster(members, diagnoses, payment_year)[0]
    if input_format(members) == "json":
        if diagnoses is not None:
            raise BatchInputError(
                f"{diagnoses}: --diagnoses must be omitted when --members is a JSON request "
                f"({members} already carries `diagnoses`)"
            )
        if not members.is_file():
            raise BatchInputError(f"{members}: memberships file not found")
        return _read_json_request(members)
    member_frame, line_offset = _scan_table(
        members, MEMBER_FIELDS, REQUIRED_MEMBER_FIELDS, "memberships"
    )
    diagnosis_frame, diagnoses_line_offset = _diagnoses_table(diagnoses)
    return RosterSource(
        member_frame,
        diagnosis_frame,
        line_offset,
        str(members),
        diagnoses_line_offset=diagnoses_line_offset,
        diagnoses_label=str(diagnoses) if diagnoses else "diagnoses",
        member_row_name="line {}" if input_format(members) == "csv" else "row {}",
    )


# --------------------------------------------------------------------------- chunking


@dataclass(frozen=True)
class ChunkPlan:
    """MemberID key ranges of about `chunk_members` members each.

    `lower_bounds[k]` is the smallest MemberID of chunk k; ranges are half-open
    on the sorted keys, so every row of one MemberID (its diagnoses, its
    duplicates) is in one chunk. `chunk_by_member` maps each distinct MemberID to
    its chunk; rows whose MemberID is null or unknown (a diagnosis of no listed
    member) go to the last chunk, so nothing is dropped.
    """

    member_total: int
    lower_bounds: pl.Series
    chunk_by_member: pl.DataFrame

    @property
    def count(self) -> int:
        return max(1, self.lower_bounds.len())

    def with_chunk(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """Add `_chunk` by a hash join on MemberID: streams the rows, and costs the same
        for 5 chunks or 5,000 (an expression per range boundary did not)."""
        return frame.join(self.chunk_by_member.lazy(), on="MemberID", how="left").with_columns(
            pl.col("_chunk").fill_null(self.count - 1)
        )


def plan_chunks(
    memberships: pl.LazyFrame, chunk_members: int, label: str = "memberships"
) -> ChunkPlan:
    """Read and sort only the MemberID column to cut the roster into key ranges."""
    if chunk_members < 1:
        raise BatchInputError(f"--chunk-members must be at least 1, got {chunk_members}")
    ids = _read(memberships.select("MemberID"), label)["MemberID"]
    known = ids.drop_nulls()
    lower_bounds = known.sort().gather_every(chunk_members).unique(maintain_order=True)
    distinct = known.unique().sort()
    chunk_by_member = pl.DataFrame(
        {
            "MemberID": distinct,
            "_chunk": (lower_bounds.search_sorted(distinct, side="right").cast(pl.Int64) - 1).cast(
                pl.UInt32
            ),
        }
    )
    return ChunkPlan(ids.len(), lower_bounds, chunk_by_member)


def _read(frame: pl.LazyFrame, label: str, role: str = "memberships") -> pl.DataFrame:
    """Collect an input, naming the file when its content is unreadable (bad UTF-8, ragged rows)."""
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise InputReadError(f"{label}: cannot read file: {exc}", label, role) from exc


@contextlib.contextmanager
def chunked_frames(
    source: RosterSource, plan: ChunkPlan, staging_dir: Path | None
) -> Iterator[Iterator[tuple[pl.DataFrame, pl.DataFrame]]]:
    """Yield (memberships, diagnoses) per chunk.

    One chunk: the inputs as they are. Several: each input is first copied once,
    streaming, to a Parquet file with a `_chunk` column (under `staging_dir`, beside
    the output, not in a possibly small /tmp), so each chunk is a cheap filtered
    Parquet scan instead of a fresh parse of the whole CSV.
    """
    if plan.count == 1:
        yield iter(
            [
                (
                    _read(source.memberships, source.members_label),
                    _read(source.diagnoses, source.diagnoses_label, "diagnoses"),
                )
            ]
        )
        return
    stage = Path(tempfile.mkdtemp(prefix=".raf-stage-", dir=staging_dir))
    try:
        staged = []
        for name, frame, label in (
            ("memberships", source.memberships, source.members_label),
            ("diagnoses", source.diagnoses, source.diagnoses_label),
        ):
            path = stage / f"{name}.parquet"
            try:
                plan.with_chunk(frame).sink_parquet(path, row_group_size=64_000)
            except pl.exceptions.PolarsError as exc:
                raise InputReadError(f"{label}: cannot read {name} file: {exc}", label, name) from exc
            staged.append(pl.scan_parquet(path))

        def frames() -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
            for k in range(plan.count):
                yield tuple(  # type: ignore[misc]  (file order within the chunk, as unchunked)
                    lf.filter(pl.col("_chunk") == k)
                    .drop("_chunk")
                    .sort("input_index")
                    .collect(engine="streaming")
                    for lf in staged
                )

        yield frames()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# --------------------------------------------------------------------------- sinks


class TableSink(Protocol):
    def write(self, frame: pl.DataFrame) -> None: ...
    def close(self, envelope: dict[str, Any] | None = None) -> None: ...
    def abort(self) -> None: ...


def _lists_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists: join list cells (Warnings, DxCodes) with '; '."""
    list_columns = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    if not list_columns:
        return frame
    return frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join("; ") for name in list_columns
    )


def _null_columns_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """An all-null column has dtype Null; give it a real type so chunks concatenate."""
    return frame.with_columns(
        pl.col(name).cast(pl.String) for name, dtype in frame.schema.items() if dtype == pl.Null
    )


class _StagedFile:
    """Write to `<path>.<random>.partial` and rename on close, so a failed run leaves no half
    file and two runs writing the same output (a job re-run while an orphaned worker still
    finishes the old attempt) never write into each other's staging file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.staging = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.partial")
        path.parent.mkdir(parents=True, exist_ok=True)

    def publish(self) -> None:
        os.replace(self.staging, self.path)

    def discard(self) -> None:
        if self.staging.is_dir():
            shutil.rmtree(self.staging, ignore_errors=True)
        else:
            self.staging.unlink(missing_ok=True)


class CsvSink(_StagedFile):
    """Appends chunk after chunk; the header is written once, from the first chunk."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._handle = open(self.staging, "wb")  # noqa: SIM115
        self._columns: list[str] | None = None

    def write(self, frame: pl.DataFrame) -> None:
        frame = _lists_as_text(frame)
        if self._columns is None:
            self._columns = frame.columns
            frame.write_csv(self._handle, include_header=True)
        else:
            frame.select(self._columns).write_csv(self._handle, include_header=False)

    def close(self, envelope: dict[str, Any] | None = None) -> None:
        self._handle.close()
        self.publish()

    def abort(self) -> None:
        self._handle.close()
        self.discard()


class ParquetSink(_StagedFile):
    """One Parquet part per chunk, then one streaming concatenation into the final file.

    Uses polars only (pyarrow is a dev dependency); memory stays at one row group.
    With `final_format="csv"` the concatenation is written as CSV instead: that is
    how the detail trail, whose columns differ from chunk to chunk (a chunk without
    dropped diagnoses has no `Reason`), gets one header. `leading_columns` fixes the
    column order: those first, the rest by name, so it is the same for any chunk size.
    """

    def __init__(
        self,
        path: Path,
        final_format: str = "parquet",
        leading_columns: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(path)
        self.staging.mkdir(parents=True, exist_ok=True)
        self._parts: list[Path] = []
        self._final_format = final_format
        self._leading = leading_columns

    def write(self, frame: pl.DataFrame) -> None:
        if frame.width == 0:
            return
        if self._final_format == "csv":
            frame = _lists_as_text(frame)
        part = self.staging / f"part-{len(self._parts):06d}.parquet"
        _null_columns_as_text(frame).write_parquet(part)
        self._parts.append(part)

    def _combined(self) -> pl.LazyFrame:
        if not self._parts:
            return pl.LazyFrame()
        combined = pl.concat([pl.scan_parquet(p) for p in self._parts], how="diagonal_relaxed")
        if self._leading is not None:
            names = combined.collect_schema().names()
            first = [c for c in self._leading if c in names]
            combined = combined.select(*first, *sorted(c for c in names if c not in first))
        return combined

    def close(self, envelope: dict[str, Any] | None = None) -> None:
        final = self.staging.with_suffix(".tmp")
        if self._final_format == "csv":
            combined = self._combined()
            if combined.collect_schema().len():
                combined.sink_csv(final)
            else:
                final.write_bytes(b"")
        elif len(self._parts) == 1 and self._leading is None:
            os.replace(self._parts[0], final)
        else:
            self._combined().sink_parquet(final)
        os.replace(final, self.path)
        self.discard()

    def abort(self) -> None:
        self.discard()


class JsonSink(_StagedFile):
    """Rows streamed as a JSON array; with an envelope, wrapped like the API response
    (then `errors` is inlined too, as the API does, so the pipeline keeps them for it)."""

    def __init__(self, path: Path, envelope: bool) -> None:
        super().__init__(path)
        self.embeds_errors = envelope
        self._handle = open(self.staging, "wb")  # noqa: SIM115
        self._envelope = envelope
        self._first = True
        self._handle.write(b'{"results":[' if envelope else b"[")

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        body = frame.write_json().encode()[1:-1]  # polars writes '[{...},{...}]'
        if not self._first:
            self._handle.write(b",")
        self._handle.write(body)
        self._first = False

    def close(self, envelope: dict[str, Any] | None = None) -> None:
        self._handle.write(b"]")
        if self._envelope:
            for key, value in (envelope or {}).items():
                self._handle.write(
                    b"," + msgspec.json.encode(key) + b":" + msgspec.json.encode(value)
                )
            self._handle.write(b"}")
        self._handle.close()
        self.publish()

    def abort(self) -> None:
        self._handle.close()
        self.discard()


def open_sink(
    path: Path, envelope: bool = False, varying_columns: tuple[str, ...] | None = None
) -> TableSink:
    """A sink by file extension. `varying_columns` (leading column names) marks a table
    whose columns differ between chunks, such as the detail trail."""
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt == "csv":
        return (
            CsvSink(path) if varying_columns is None else ParquetSink(path, "csv", varying_columns)
        )
    if fmt == "parquet":
        return ParquetSink(path, leading_columns=varying_columns)
    if fmt == "json":
        return JsonSink(path, envelope)
    raise BatchInputError(
        f"{path}: unsupported output type {path.suffix or '(none)'!r}; use .csv, .parquet or .json"
    )


def sibling_path(out: Path, tag: str, suffix: str | None = None) -> Path:
    """`scores.parquet` → `scores.errors.csv` / `scores.detail.parquet`."""
    return out.with_name(f"{out.stem}.{tag}{suffix if suffix is not None else out.suffix}")


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """One whole table to a file by extension (lists become '; '-joined text in CSV)."""
    sink = open_sink(path)
    try:
        sink.write(frame)
    except BaseException:
        sink.abort()
        raise
    sink.close()


def mmr_members_table(members: pl.DataFrame) -> pl.DataFrame:
    """The MMR audit table: per member, the months counted, the lines read, CMS's score."""
    leading = ["MemberID", "Lines", "Enrollment_Months", "Payment_Months", "DOB", "Gender",
               "RAType", "OREC", "Hospice", "Hospice_Months", "LTIMCAID", "NEMCAID", "County",
               "CMS_Score"]
    table = members.sort("MemberID").with_columns(
        (pl.col("CMS_Score_micro") / 1_000_000).round(6).alias("CMS_Score")
    ).drop("CMS_Score_micro")
    return table.select(*leading, pl.exclude(leading))


# --------------------------------------------------------------------------- progress


class Progress:
    """Members done / total and rate on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        width = 30
        filled = int(width * done / total) if total else width
        self.stream.write(
            f"\r[{'#' * filled}{' ' * (width - filled)}] {done:,}/{total:,} members"
            f"  {done / elapsed:,.0f}/s  "
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------- pipeline


@dataclass
class BatchSummary:
    """What a run did; the CLI prints it (and writes it beside the output), a job stores it.

    Every membership row is counted once: `member_count` (rows received) =
    `members_scored` (members with rows: an active row, or raw rows only) + `members_rejected` (rows in
    errors) + `duplicate_rows` (rows identical to an earlier row, in errors naming
    it). `diagnoses_summary` adds up to the diagnosis rows received. `warnings` are
    the data-quality warnings (`app.quality`) as `{code, message, count}` dicts.
    """

    payment_year: int
    member_count: int = 0
    members_scored: int = 0
    members_rejected: int = 0
    duplicate_rows: int = 0
    row_count: int = 0
    chunks: int = 0
    diagnoses_summary: dict[str, int] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    roster: Any = None  # app.summary.RosterSummary when score_roster(summary=True)
    inputs: dict[str, Any] = field(default_factory=dict)  # e.g. {"mmr": what the MMR reader counted}
    #: diagnosis rows per ThruDOS year outside the collection year (only the warning's
    #: message needs them)
    thru_years: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def error_rows(self) -> int:
        """Rows of the errors file."""
        return self.members_rejected + self.duplicate_rows

    @property
    def status(self) -> str:
        return "partial" if self.error_rows else "success"

    def as_dict(self) -> dict[str, Any]:
        return {
            "payment_year": self.payment_year,
            "member_count": self.member_count,
            "members_scored": self.members_scored,
            "members_rejected": self.members_rejected,
            "duplicate_rows": self.duplicate_rows,
            "count": self.row_count,
            "chunks": self.chunks,
            "diagnoses_summary": self.diagnoses_summary,
            "warnings": self.warnings,
            "reference": self.reference,
            "software": software_dict(),
            "seconds": round(self.seconds, 3),
            **({"inputs": self.inputs} if self.inputs else {}),
        }


TRAIL_LEADING_COLUMNS = ("MemberID", "line", "Model", "Section")
_TRAIL_RENAMES = {
    "hcc": "Code",
    "name": "Code",
    "DxCode": "Code",
    "label": "Label",
    "model": "Model",
    "dropped_by": "Dropped_By",
    "reason": "Reason",
    "dx_codes": "DxCodes",
}


def trail_rows(
    trail: dict[str, pl.DataFrame],
    members: pl.DataFrame,
    line_offset: int,
    diagnoses_line_offset: int,
) -> pl.DataFrame:
    """Flatten the engine's trail frames into one long table: one row per model variable,
    HCC, dropped HCC, interaction or dropped diagnosis (`Section` says which), keyed by
    MemberID and the member's input `line`; a diagnosis also carries its `dx_line` in the
    diagnoses file, so an ignored diagnosis can be found where it was sent."""
    ids = members.select("input_index", "MemberID")
    parts = []
    for section, frame in trail.items():
        if frame.height == 0:
            continue
        part = frame.with_columns(pl.lit(section).alias("Section"))
        if "MemberID" not in part.columns and "input_index" in part.columns:
            part = part.join(ids, on="input_index", how="left")
        if "coefficient_milli" in part.columns:
            part = part.with_columns(
                (pl.col("coefficient_milli") / 1000).alias("Coefficient")
            ).drop("coefficient_milli")
        if "dx_index" in part.columns:
            part = part.with_columns(
                (pl.col("dx_index").cast(pl.Int64) + diagnoses_line_offset).alias("dx_line")
            ).drop("dx_index")
        part = part.rename({k: v for k, v in _TRAIL_RENAMES.items() if k in part.columns})
        part = part.with_columns(
            pl.col(c).cast(pl.String) for c in ("Code", "Dropped_By") if c in part.columns
        )
        parts.append(part)
    if not parts:
        return pl.DataFrame()
    flat = pl.concat(parts, how="diagonal_relaxed")
    if "input_index" in flat.columns:
        flat = flat.with_columns((pl.col("input_index").cast(pl.Int64) + line_offset).alias("line"))
    leading = [c for c in TRAIL_LEADING_COLUMNS if c in flat.columns]
    return flat.select(*leading, pl.exclude(*leading, "input_index")).sort(
        "MemberID", "line", nulls_last=True, maintain_order=True
    )


def response_columns(rows: pl.DataFrame) -> pl.DataFrame:
    """The flat response fields: nested per-row detail (`HCCs`, `Interactions`, ... as lists
    of structs) goes to the detail file instead, so `--detail` never changes `--out`."""
    nested = [
        name
        for name, dtype in rows.schema.items()
        if isinstance(dtype, pl.Struct)
        or (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct))
    ]
    rows = rows.drop("input_index", *nested)
    if "Warnings" in rows.columns:  # as on the wire: no warnings is null, not []
        rows = rows.with_columns(
            pl.when(pl.col("Warnings").list.len() > 0).then(pl.col("Warnings")).alias("Warnings")
        )
    return rows


def _write_chunk(
    result: Any,
    members: pl.DataFrame,
    source: RosterSource,
    summary: BatchSummary,
    results: TableSink,
    errors: TableSink,
    detail: TableSink | None,
    facts: list[pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Append one chunk's rows, errors (with input lines) and trail; add up its counts
    (and, with `facts`, keep the chunk's `app.summary.member_facts` and warnings).

    Rows are re-sorted by MemberID (stable, so a member's V28, V24, active rows keep
    their order) to make the output independent of the chunk size.
    """
    rows = result.rows.sort(["Member_Id", "input_index"], nulls_last=True, maintain_order=True)
    results.write(response_columns(rows))
    chunk_errors = result.errors
    if "duplicate_of" not in chunk_errors.columns:
        chunk_errors = chunk_errors.with_columns(duplicate_of=pl.lit(None, pl.UInt32))
    repeats = chunk_errors.get_column("duplicate_of").is_not_null()
    if source.member_row_name is not None and repeats.any():
        chunk_errors = _name_repeated_lines(chunk_errors, repeats, source)
    rejected = (
        chunk_errors.sort("MemberID", "input_index", nulls_last=True, maintain_order=True)
        .with_columns((pl.col("input_index").cast(pl.Int64) + source.line_offset).alias("line"))
        .select(ERROR_COLUMNS)
    )
    errors.write(rejected)
    if detail is not None:
        detail.write(
            trail_rows(result.trail, members, source.line_offset, source.diagnoses_line_offset)
        )
    if facts is not None:
        from app.summary import member_facts

        facts.append(
            member_facts(rows).join(
                rows.filter(pl.col("Active_Score") == 1).select("Member_Id", "Warnings"),
                on="Member_Id",
                how="left",
            )
        )
    summary.chunks += 1
    summary.member_count += int(result.member_count)
    # members with rows: an active row, or raw rows only (a factor not published)
    summary.members_scored += rows.get_column("input_index").n_unique()
    summary.duplicate_rows += int(repeats.sum())
    summary.members_rejected += chunk_errors.filter(~repeats)["input_index"].n_unique()
    summary.row_count += rows.height
    for reason, count in (result.dx_summary or {}).items():
        summary.diagnoses_summary[reason] = summary.diagnoses_summary.get(reason, 0) + int(count)
    summary.reference = dict(result.reference or {})
    return rejected


def _write_rejected(source: RosterSource, summary: BatchSummary, errors: TableSink) -> pl.DataFrame:
    """Members the input reader already rejected: written first, counted as received and
    rejected (one per MemberID; a record without a readable MemberID counts alone)."""
    assert source.rejected is not None
    rejected = (
        source.rejected.sort("MemberID", "input_index", nulls_last=True, maintain_order=True)
        .with_columns((pl.col("input_index").cast(pl.Int64) + source.line_offset).alias("line"))
        .select(ERROR_COLUMNS)
    )
    errors.write(rejected)
    ids = rejected["MemberID"]
    members = ids.drop_nulls().n_unique() + ids.null_count()
    summary.member_count += members
    summary.members_rejected += members
    return rejected


def _name_repeated_lines(
    errors: pl.DataFrame, repeats: pl.Series, source: RosterSource
) -> pl.DataFrame:
    """Messages of identical repeats name the earlier row by its line in the file
    (the engine names it `memberships[<input_index>]`, right for a request only)."""
    from ratype.normalizer import duplicate_row_message

    earlier = pl.format(
        f"{source.member_row_name} of {{}}",
        pl.col("duplicate_of").cast(pl.Int64) + source.line_offset,
        pl.lit(Path(source.members_label).name),
    )
    return errors.with_columns(
        pl.when(pl.lit(repeats)).then(duplicate_row_message(earlier)).otherwise(pl.col("message"))
        .alias("message")
    )


def score_roster(
    source: RosterSource,
    payment_year: int,
    *,
    score_batch: ScoreBatch,
    store: Any,
    results: TableSink,
    errors: TableSink,
    detail: TableSink | None = None,
    chunk_members: int = 250_000,
    progress: Callable[[int, int], None] | None = None,
    staging_dir: Path | None = None,
    rates: Any = None,
    roster_summary: bool = False,
    thresholds: WarningThresholds | None = None,
) -> BatchSummary:
    """Score a roster chunk by chunk into the sinks; the one pipeline behind the CLI and jobs.

    Sinks are closed (published) only when every chunk succeeded and aborted
    otherwise, so a crash mid-run never leaves a plausible-looking partial result.
    Finance (`engine.finance`) is on when the memberships have a finance column;
    `rates` (a `RateTable`) then prices members by County. `roster_summary`
    sets `BatchSummary.roster` (`app.summary`), from one small row per member.
    Data-quality warnings use `thresholds` (default: the `RAF_WARN_*` environment).
    """
    thresholds = warning_thresholds_from_env() if thresholds is None else thresholds
    collection_year = _collection_year(store, payment_year)
    started = time.monotonic()
    summary = BatchSummary(payment_year=payment_year)
    sinks = [s for s in (results, errors, detail) if s is not None]
    kept_errors: list[pl.DataFrame] | None = (
        [] if getattr(results, "embeds_errors", False) or roster_summary else None
    )
    facts: list[pl.DataFrame] | None = [] if roster_summary else None
    names = source.memberships.collect_schema().names()
    if source.embedded_rates is not None:  # the request's own table first, as in the API
        from engine.finance import RateTable

        rates = RateTable.layered(source.embedded_rates, rates)
    finance = (
        {"finance": True, "rates": rates} if any(f in names for f in FINANCE_FIELDS) else {}
    )
    try:
        if source.inputs:
            summary.inputs = dict(source.inputs)
        if source.rejected is not None and source.rejected.height:
            rejected = _write_rejected(source, summary, errors)
            if kept_errors is not None:
                kept_errors.append(rejected)
        plan = plan_chunks(source.memberships, chunk_members, source.members_label)
        total = plan.member_total
        if progress:
            progress(0, total)
        member_warnings: Counter[tuple[str, str]] = Counter()
        with chunked_frames(source, plan, staging_dir) as chunks:
            for members, diagnoses in chunks:
                result = score_batch(
                    members, diagnoses, payment_year, store, detail=detail is not None, **finance
                )
                rejected = _write_chunk(
                    result, members, source, summary, results, errors, detail, facts
                )
                for warning in getattr(result, "warnings", None) or []:  # e.g. raw rows only
                    member_warnings[(warning["code"], warning["message"])] += warning["count"]
                if (result.dx_summary or {}).get("outside_collection_year"):
                    add_counts(summary.thru_years, thru_year_counts(diagnoses, collection_year))
                if kept_errors is not None:
                    kept_errors.append(rejected)
                if progress:
                    progress(summary.member_count, total)
        summary.seconds = time.monotonic() - started
        summary.warnings = [
            msgspec.structs.asdict(warning)
            for warning in diagnosis_warnings(
                summary.diagnoses_summary,
                payment_year=payment_year,
                collection_year=collection_year,
                members_scored=summary.members_scored,
                thresholds=thresholds,
                thru_years=lambda: summary.thru_years,
            )
        ] + [
            {"code": code, "message": message, "count": count}
            for (code, message), count in member_warnings.items()
        ]
        envelope = {
            "status": summary.status,
            "message": summary_message(summary),
            "count": summary.row_count,
            "member_count": summary.member_count,
            "members_scored": summary.members_scored,
            "warnings": summary.warnings,
            "diagnoses_summary": summary.diagnoses_summary,
            "reference": summary.reference,
            "software": software_dict(),
            "timestamp": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(),
        }
        if facts is not None:
            summary.roster = _roster_summary(summary, facts, kept_errors or [])
        if kept_errors is not None and getattr(results, "embeds_errors", False):
            envelope["errors"] = (
                pl.concat(kept_errors, how="vertical_relaxed")
                .select("MemberID", "field", "message", "line")
                .to_dicts()
                if kept_errors
                else []
            )
        for sink in sinks:
            sink.close(envelope)
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return summary


def _roster_summary(
    summary: BatchSummary, facts: list[pl.DataFrame], rejected: list[pl.DataFrame]
) -> Any:
    from app.summary import summarize

    frame = pl.concat(facts, how="vertical_relaxed")
    return summarize(
        frame,
        payment_year=summary.payment_year,
        members_received=summary.member_count,
        errors=pl.concat(rejected, how="vertical_relaxed") if rejected else None,
        diagnoses_summary=summary.diagnoses_summary,
        warnings=summary.warnings,
        member_warnings=frame.get_column("Warnings"),
        reference=summary.reference,
    )


def summary_message(summary: BatchSummary) -> str:
    """The envelope's `message`: what was not scored, in words."""
    parts = []
    if summary.members_rejected:
        parts.append(f"{summary.members_rejected} member(s) could not be scored")
    if summary.duplicate_rows:
        parts.append(f"{summary.duplicate_rows} row(s) repeat an earlier row and are scored once")
    return f"{' and '.join(parts)}; see errors" if parts else "Data processed successfully"


def _collection_year(store: Any, payment_year: int) -> int:
    parameters = getattr(store.year(payment_year), "parameters", None)
    return int(getattr(parameters, "collection_year", payment_year - 1))


# --------------------------------------------------------------------------- engine wiring


def default_engine() -> tuple[ScoreBatch, Any]:
    """The real `score_batch` and one process-wide `ReferenceStore`, imported lazily so the
    batch module loads (and its tests run) without the engine; tests monkeypatch this."""
    from engine.run import score_batch

    return score_batch, _process_store()


_STORE: Any = None


def _process_store() -> Any:
    global _STORE
    if _STORE is None:
        from reference.store import ReferenceStore

        _STORE = ReferenceStore(os.environ.get("RAF_REFERENCE_DIR", "").strip() or None)
    return _STORE


def cli_rates(path: str | None) -> Any:
    """`--rates FILE` over the configured `RAF_RATES` table (`engine.finance.RateTable`);
    a table that cannot be used is fatal, naming the file and line."""
    from engine.finance import RateTable, RateTableError

    tables = []
    for candidate in (path, os.environ.get("RAF_RATES", "").strip() or None):
        if candidate:
            try:
                tables.append(RateTable.from_csv(candidate))
            except RateTableError as exc:
                raise BatchInputError(str(exc)) from exc
    return RateTable.layered(*tables)


def check_payment_year(store: Any, payment_year: int) -> None:
    """Unsupported years are a fatal error before any file is read."""
    try:
        store.year(payment_year)
    except Exception as exc:
        if type(exc).__name__ == "UnsupportedPaymentYear" or isinstance(
            exc, (LookupError, ValueError)
        ):
            raise BatchInputError(f"--payment-year {payment_year}: {exc}") from exc
        raise


# --------------------------------------------------------------------------- CLI


def _fail(message: str) -> int:
    sys.stderr.write(f"raf score: error: {message}\n")
    return EXIT_FATAL


def report_lines(summary: BatchSummary, out: Path, errors_path: Path) -> list[str]:
    """What `raf score` tells stderr: the row counts, the diagnoses summary, the warnings.

    The counts are the job record's (`BatchSummary.as_dict`), so a file scored from
    the shell and submitted as a job read the same.
    """
    counts = (
        f"{summary.member_count:,} membership rows: {summary.members_scored:,} members scored, "
        f"{summary.members_rejected:,} rejected, {summary.duplicate_rows:,} identical duplicate "
        f"rows; {summary.row_count:,} result rows → {out}; errors → {errors_path} "
        f"({summary.seconds:.1f}s)"
    )
    lines = [counts]
    diagnoses = summary.diagnoses_summary
    received = sum(diagnoses.values())
    counted = ", ".join(
        f"{reason} {count:,}" for reason, count in diagnoses.items() if count or reason == "used"
    )
    lines.append(f"{received:,} diagnosis rows: {counted}")
    lines.extend(f"warning: [{w['code']}] {w['message']}" for w in summary.warnings)
    return lines


def _write_summary(path: Path, summary: BatchSummary) -> None:
    staging = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.partial")
    staging.write_bytes(msgspec.json.format(msgspec.json.encode(summary.as_dict())) + b"\n")
    os.replace(staging, path)


def run(args: argparse.Namespace) -> int:
    """Body of `raf score`: exit 0 all scored, 2 some rows in the errors file, 1 fatal,
    3 with `--strict` when a data-quality warning fired."""
    out = Path(args.out)
    errors_path = Path(args.errors) if args.errors else sibling_path(out, "errors", ".csv")
    run_summary_path = (
        Path(args.run_summary)
        if getattr(args, "run_summary", None)
        else sibling_path(out, "run", ".json")
    )
    quiet = bool(getattr(args, "quiet", False))
    try:
        if OUTPUT_FORMATS.get(out.suffix.lower()) is None:
            raise BatchInputError(
                f"{out}: unsupported output type {out.suffix or '(none)'!r}; use .csv, .parquet or .json"
            )
        if OUTPUT_FORMATS.get(errors_path.suffix.lower()) is None:
            raise BatchInputError(
                f"{errors_path}: unsupported errors file type; use .csv, .parquet or .json"
            )
        score, store = default_engine()
        check_payment_year(store, args.payment_year)
        diagnoses = Path(args.diagnoses) if args.diagnoses else None
        mmr_path = getattr(args, "mmr", None)
        if bool(mmr_path) == bool(args.members):
            raise BatchInputError("give exactly one of --members and --mmr")
        if mmr_path:
            source, mmr_result = open_mmr_roster(
                Path(mmr_path),
                diagnoses,
                args.payment_year,
                layout=getattr(args, "mmr_layout", None),
                status_rule=getattr(args, "mmr_status", "error"),
            )
            write_table(mmr_members_table(mmr_result.members), sibling_path(out, "memberships"))
        else:
            source = open_roster(Path(args.members), diagnoses)
        if source.embedded_payment_year not in (None, args.payment_year):
            raise BatchInputError(
                f"{args.members}: `payment_year` {source.embedded_payment_year} in the request "
                f"differs from --payment-year {args.payment_year}"
            )
        rates = cli_rates(getattr(args, "rates", None))
        summary_path = Path(args.summary) if getattr(args, "summary", None) else None
        progress = Progress(0, enabled=not quiet and sys.stderr.isatty())
        summary = score_roster(
            source,
            args.payment_year,
            score_batch=score,
            store=store,
            results=open_sink(out, envelope=True),
            errors=open_sink(errors_path),
            detail=open_sink(sibling_path(out, "detail"), varying_columns=TRAIL_LEADING_COLUMNS)
            if args.detail
            else None,
            chunk_members=args.chunk_members,
            progress=progress,
            staging_dir=out.parent,
            rates=rates,
            roster_summary=summary_path is not None,
        )
        progress.finish()
        _write_summary(run_summary_path, summary)
        if summary_path is not None:
            from app.summary import encode

            summary_path.parent.mkdir(parents=True, exist_ok=True)
            summary_path.write_bytes(encode(summary.roster))
    except BatchInputError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{getattr(exc, 'filename', None) or ''}: {exc}".lstrip(": "))
    except Exception as exc:  # a bug, not bad input: say so, keep the traceback for the report  # noqa: BLE001
        import traceback

        traceback.print_exc()
        return _fail(
            f"internal error ({type(exc).__name__}: {exc}); please report it with the traceback"
        )
    if not quiet and "mmr" in summary.inputs:
        counts = summary.inputs["mmr"]
        sys.stderr.write(
            f"raf score: MMR {counts['records']:,} records ({counts['records_in_payment_year']:,} "
            f"in {summary.payment_year}, {counts['records_other_years']:,} other years, "
            f"{counts['malformed_records']:,} malformed, {counts['blank_lines']:,} blank lines) "
            f"→ {counts['memberships']:,} memberships, {counts['months_counted']:,} member-months"
            f"; memberships → {sibling_path(out, 'memberships')}\n"
        )
    lines = report_lines(summary, out, errors_path)
    # warnings are printed even with --quiet: they are why a plausible score may be wrong
    for line in lines if not quiet else lines[2:]:
        sys.stderr.write(f"raf score: {line}\n")
    if summary.warnings and getattr(args, "strict", False):
        return EXIT_WARNINGS
    return EXIT_REJECTED if summary.error_rows else EXIT_OK
