"""Data-quality warnings: a batch whose scores are plausible but rest on half its input.

A run whose diagnoses are mostly dated outside the collection year, or mostly
unreadable, still returns a score for every member -- a demographic-only one.
Nothing is wrong with any single row, so there is no error to report; these
warnings say so at the top of the answer instead (`warnings` of the API
response, the job record and the CLI's stderr, where `raf score --strict`
turns them into exit 3).

Each warning is `{"code", "message", "count"}` (`app.wire.DataWarning`):
`count` is the number of input rows it is about. Codes:

| code | fires when (share of the diagnosis rows received) | setting |
|---|---|---|
| `outside_collection_year` | more than 20% are dated outside the collection year | `RAF_WARN_OUTSIDE_YEAR_PCT` |
| `invalid_dates` | more than 5% have a FromDOS/ThruDOS that is not a date, or ThruDOS < FromDOS | `RAF_WARN_INVALID_DATES_PCT` |
| `unknown_code` | more than 20% have a DxCode that is no ICD-10-CM code (`no_hcc` codes are valid and do not count) | `RAF_WARN_UNKNOWN_CODE_PCT` |
| `no_diagnosis_used` | members were scored and no diagnosis at all was used (none sent, or none usable) | -- |

Other checks add their own `DataWarning`s to the same list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from app.wire import DataWarning

YearCounts = Mapping[int, int]


@dataclass(frozen=True)
class WarningThresholds:
    """Percent of the diagnosis rows received above which each warning fires (from the
    environment: `app.settings.warning_thresholds_from_env`)."""

    outside_collection_year_pct: float = 20.0
    invalid_dates_pct: float = 5.0
    unknown_code_pct: float = 20.0


def thru_year_counts(diagnoses: pl.DataFrame, outside_of: int) -> dict[int, int]:
    """Diagnosis rows per ThruDOS year other than `outside_of` (rows whose ThruDOS is not
    a date are left out). Rows dated `outside_of` are skipped by a prefix test before
    any date is parsed: in a usual roster they are nearly all of them."""
    if diagnoses.is_empty() or "ThruDOS" not in diagnoses.columns:
        return {}
    thru = pl.col("ThruDOS").cast(pl.String)
    years = (
        diagnoses.lazy()
        .filter(~thru.str.starts_with(str(outside_of)).fill_null(False))
        .select(
            thru.str.strip_chars().str.to_date("%Y-%m-%d", strict=False).dt.year().alias("year")
        )
        .filter(pl.col("year") != outside_of)
        .group_by("year")
        .agg(pl.len().alias("rows"))
        .collect()
    )
    return {int(year): int(rows) for year, rows in years.iter_rows()}


def add_counts(total: dict[int, int], more: YearCounts) -> None:
    for key, count in more.items():
        total[key] = total.get(key, 0) + int(count)


def _share(count: int, total: int) -> str:
    pct = 100 * count / total
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def _years_text(years: YearCounts, collection_year: int) -> tuple[str, str]:
    """The years outside the collection year, most rows first: ("2024" or "2023, 2024 and
    3 other years", "2024: 950 rows, 2023: 12 rows")."""
    outside = sorted((y for y in years if y != collection_year), key=lambda y: (-years[y], y))
    named = ", ".join(str(y) for y in sorted(outside[:3]))
    if len(outside) > 3:
        named += f" and {len(outside) - 3} other years"
    seen = ", ".join(f"{y}: {years[y]:,} rows" for y in outside[:10])
    return named, seen


def diagnosis_warnings(
    summary: Mapping[str, int],
    *,
    payment_year: int,
    collection_year: int,
    members_scored: int,
    thresholds: WarningThresholds,
    thru_years: Callable[[], YearCounts] | None = None,
) -> list[DataWarning]:
    """The warnings a diagnoses summary (`used` plus counts per reason) calls for.

    `thru_years` is called only when the collection-year warning fires: it gives the
    diagnosis rows per ThruDOS year outside the collection year, for the message to
    name the years actually seen.
    """
    total = sum(int(count) for count in summary.values())
    warnings: list[DataWarning] = []

    def over(reason: str, pct: float) -> int:
        count = int(summary.get(reason, 0))
        return count if total and count and 100 * count / total > pct else 0

    outside = over("outside_collection_year", thresholds.outside_collection_year_pct)
    if outside:
        years = dict(thru_years()) if thru_years is not None else {}
        named, seen = _years_text(years, collection_year)
        dated = f"dated {named}" if named else f"dated outside {collection_year}"
        warnings.append(
            DataWarning(
                code="outside_collection_year",
                message=f"{_share(outside, total)} of diagnoses ({outside:,} of {total:,}) are "
                f"{dated}; PY{payment_year} scores diagnoses from {collection_year} "
                f"(ThruDOS years outside {collection_year}: {seen or 'not recorded'}). Check "
                "the payment year or the diagnosis extract.",
                count=outside,
            )
        )
    for code, pct, what in (
        (
            "invalid_dates",
            thresholds.invalid_dates_pct,
            (
                "have a FromDOS or ThruDOS that is not a YYYY-MM-DD date, or a ThruDOS before "
                "the FromDOS; they are not scored."
            ),
        ),
        (
            "unknown_code",
            thresholds.unknown_code_pct,
            (
                "have a DxCode that is no ICD-10-CM code (neither in the bundled code lists "
                f"nor in the PY{payment_year} mappings); check the DxCode column."
            ),
        ),
    ):
        count = over(code, pct)
        if count:
            warnings.append(
                DataWarning(
                    code=code,
                    message=f"{_share(count, total)} of diagnoses ({count:,} of {total:,}) {what}",
                    count=count,
                )
            )
    if members_scored and not summary.get("used"):
        if total:
            reasons = sorted(
                ((r, c) for r, c in summary.items() if c and r != "used"), key=lambda rc: -rc[1]
            )
            why = ", ".join(f"{reason} {count:,}" for reason, count in reasons[:4])
            message = (
                f"none of the {total:,} diagnoses was used ({why}); every score is demographic only"
            )
        else:
            message = "no diagnoses were sent; every score is demographic only"
        warnings.append(DataWarning(code="no_diagnosis_used", message=message, count=total))
    return warnings
