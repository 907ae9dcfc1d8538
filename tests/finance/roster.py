"""A small priced roster for the finance tests: several segments, partial years, a member
rate, county rates, an unpriced county and members the finance fields reject."""

from __future__ import annotations

from pathlib import Path

import polars as pl

MEMBERS = [
    # MemberID, DOB, Gender, RAType, OREC, Enrollment_Months, Start, End, County, Monthly_Rate
    ("A01", "1950-03-01", "F", "CN", "0", "12", "", "", "01001", ""),
    ("A02", "1944-07-12", "M", "CN", "0", "", "2025-03-15", "2025-08-31", "01001", ""),
    ("A03", "1985-10-13", "M", "CP", "0", "6", "", "", "01003", "1000.00"),
    ("A04", "1938-06-16", "F", "CN", "0", "", "", "", "01003", ""),
    ("A05", "1940-01-20", "M", "I", "0", "9", "", "", "01003", ""),
    ("A06", "1959-05-05", "F", "CP", "1", "", "", "", "", ""),
    ("A07", "1956-02-29", "F", "E", "0", "4", "", "", "01001", ""),
    ("A08", "1948-12-01", "M", "CN", "0", "", "", "", "99999", ""),
    ("A09", "1952-08-08", "F", "CN", "0", "13", "", "", "", ""),
    ("A10", "1951-01-01", "M", "CN", "0", "", "", "", "", "12.345"),
    ("A11", "1947-04-04", "F", "CN", "1", "12", "", "", "", "1250.25"),
    ("A12", "1949-09-09", "M", "I", "0", "", "", "", "01001", ""),
]
DIAGNOSES = [
    ("A01", "2024-02-01", "2024-02-01", "E119"),
    ("A01", "2024-05-01", "2024-05-01", "I509"),
    ("A02", "2024-03-01", "2024-03-01", "J449"),
    ("A03", "2024-08-18", "2024-08-21", "F13229"),
    ("A03", "2024-01-06", "2024-01-10", "S62X5"),
    ("A05", "2024-03-01", "2024-03-01", "I509"),
    ("A05", "2024-03-01", "2024-03-01", "N186"),
    ("A06", "2024-06-01", "2024-06-01", "F200"),
    ("A11", "2024-06-01", "2024-06-01", "C3490"),
    ("A12", "2024-06-01", "2024-06-01", "E1122"),
    ("ZZZ", "2024-06-01", "2024-06-01", "E119"),
]
RATES = "payment_year,county,monthly_rate,source\n2025,01001,1100.50,plan bid 2025\n" \
        "2025,01003,999.99,plan bid 2025\n2026,01001,1150.00,plan bid 2026\n"


def member_frame() -> pl.DataFrame:
    columns = ["MemberID", "DOB", "Gender", "RAType", "OREC", "Enrollment_Months",
               "Enrollment_Start", "Enrollment_End", "County", "Monthly_Rate"]
    frame = pl.DataFrame(MEMBERS, schema=columns, orient="row")
    return frame.with_columns(Hospice=pl.lit("N"), LTIMCAID=pl.lit("N"), NEMCAID=pl.lit("N"))


def diagnosis_frame() -> pl.DataFrame:
    return pl.DataFrame(DIAGNOSES, schema=["MemberID", "FromDOS", "ThruDOS", "DxCode"],
                        orient="row")


def write_priced_roster(directory: Path) -> tuple[Path, Path, Path]:
    members, diagnoses, rates = (directory / n for n in ("members.csv", "dx.csv", "rates.csv"))
    member_frame().write_csv(members)
    diagnosis_frame().write_csv(diagnoses)
    rates.write_text(RATES)
    return members, diagnoses, rates
