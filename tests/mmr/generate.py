"""Write MMR detail records from the documented layout (`reference/mmr/layout_*.csv`).

Independent of the reader: each field is placed at its layout position and padded
to its length in a 495-space record, so a test that parses what this wrote checks
the reader against the layout file, not against itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from app.mmr import Layout, load_layout


def record(values: dict[str, Any], layout: Layout | None = None) -> str:
    """One record: `values` by layout column (MemberID, PaymentDate, DOB as YYYYMMDD, ...)."""
    layout = layout or load_layout()
    chars = [" "] * layout.record_length
    for column, start, length in layout.fields.select("column", "start", "length").iter_rows():
        value = values.get(column)
        if value is None:
            continue
        text = str(value)
        if len(text) > length:
            raise ValueError(f"{column}={text!r} is longer than its {length} positions")
        chars[start - 1 : start - 1 + length] = list(text.ljust(length))
    return "".join(chars)


def write(
    path: Path, rows: list[dict[str, Any]], layout: Layout | None = None, extra: list[str] = ()
) -> Path:
    """Write records (and any raw `extra` lines, e.g. a short record) to `path`."""
    layout = layout or load_layout()
    lines = [record(row, layout) for row in rows] + list(extra)
    path.write_text("".join(line + "\n" for line in lines), encoding="latin-1")
    return path


def monthly_records(
    member: dict[str, Any], months: list[str], payment_month: str | None = None, **overrides: Any
) -> list[dict[str, Any]]:
    """Prospective payment records, one per `YYYYMM` month, as CMS sends them."""
    out = []
    for month in months:
        row = {
            **member,
            "PaymentDate": payment_month or month,
            "Months": "1",
            "StartDate": month + "01",
            "EndDate": month + _last_day(month),
        }
        row.update(overrides)
        out.append(row)
    return out


def _last_day(month: str) -> str:
    import calendar

    return f"{calendar.monthrange(int(month[:4]), int(month[4:]))[1]:02d}"


def frame_of(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows)


def records_of(frame: pl.DataFrame, layout: Layout | None = None) -> pl.Series:
    """Many records at once: `frame` has a string column per layout column (any subset);
    each is padded to its field and the gaps are spaces, in one polars expression."""
    layout = layout or load_layout()
    parts: list[pl.Expr] = []
    position = 1
    for column, start, length in (
        layout.fields.sort("start").select("column", "start", "length").iter_rows()
    ):
        if column not in frame.columns:
            continue
        if start > position:
            parts.append(pl.lit(" " * (start - position)))
        parts.append(pl.col(column).fill_null("").str.pad_end(length).str.slice(0, length))
        position = start + length
    if position <= layout.record_length:
        parts.append(pl.lit(" " * (layout.record_length - position + 1)))
    return frame.select(pl.concat_str(parts).alias("record"))["record"]
