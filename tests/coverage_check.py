"""Pitfall 3 (silent key mismatch) check shared by the CMS-HCC and ESRD tests.

Every (segment, variable) the engine generates must have a coefficient for the
segment or be listed in the model spec's ``intentionally_absent``; nothing on
that list may have a coefficient; and every coefficient must be reachable.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

KEY = ["segment", "variable"]


def key_mismatches(
    generated: pl.DataFrame,
    coefficients: pl.DataFrame,
    intentionally_absent: Mapping[str, frozenset[str]],
) -> dict[str, list[tuple[str, str]]]:
    """Lists that must all be empty, by what they mean (``generated``: segment, variable)."""
    listed = coefficients.select(KEY).unique()
    absent = pl.DataFrame(
        [(s, v) for s, names in intentionally_absent.items() for v in names],
        schema={"segment": pl.Utf8, "variable": pl.Utf8},
        orient="row",
    )
    return {
        "generated without coefficient": generated.join(listed, on=KEY, how="anti")
        .join(absent, on=KEY, how="anti")
        .sort(KEY)
        .rows(),
        "intentionally absent but has a coefficient": absent.join(
            listed, on=KEY, how="semi"
        ).rows(),
        "coefficient never generated": listed.join(generated, on=KEY, how="anti").sort(KEY).rows(),
        "intentionally absent but never generated": absent.join(
            generated, on=KEY, how="anti"
        ).rows(),
    }
