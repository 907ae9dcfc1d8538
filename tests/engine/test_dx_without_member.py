"""Diagnoses without a MemberID are counted once, as `unknown_member` (not also `used`)."""

from __future__ import annotations

import polars as pl

from engine.run import score_batch
from reference.store import ReferenceStore


def test_diagnoses_without_a_member_id_are_counted_once():
    members = pl.DataFrame(
        {"MemberID": ["M1"], "DOB": ["1950-01-01"], "Gender": ["F"], "RAType": ["CN"],
         "Hospice": ["N"], "LTIMCAID": ["N"], "NEMCAID": ["N"], "OREC": ["0"]}
    )
    diagnoses = pl.DataFrame(
        {"MemberID": ["M1", None, None], "FromDOS": ["2024-02-02"] * 3,
         "ThruDOS": ["2024-02-02"] * 3, "DxCode": ["E119", "E119", "I10"]}
    )
    result = score_batch(members, diagnoses, 2025, ReferenceStore.default())
    assert sum(result.dx_summary.values()) == diagnoses.height
    assert result.dx_summary["used"] == 1
    assert result.dx_summary["unknown_member"] == 2
