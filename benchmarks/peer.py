"""The peer under the same roster: hccinfhir 0.4.0's public `calculate_raf`.

hccinfhir scores one member and one model per call and takes an integer age, a
dual-eligibility code and flags rather than the MMR fields, so the roster is
translated once (outside the timed part, vectorized with polars):

* age: completed years on Feb 1 of the payment year, from DOB (what CMS does);
* RAType CF -> dual code "02" (QMB+, full benefit), CP -> "01" (QMB only,
  partial), everything else -> "00"; I -> lti=True; E/ED/E1/E2 -> new_enrollee;
* OREC as given; diagnoses: the member's codes whose ThruDOS is in the
  collection year (hccinfhir has no date filter, so we do that part for it).

The timed part is two `calculate_raf` calls per member (V24 then V28, raw
score, PY2025 mappings/hierarchies/coefficients from the wheel's own
`ra_*_2025.csv` files). That is less work than our engine does (no blend, no
normalization, no request validation, no response rows), so the ratio is
conservative.
"""

from __future__ import annotations

import time

import polars as pl

NE_CODES = ("E", "ED", "E1", "E2")


def prepare(memberships: pl.DataFrame, diagnoses: pl.DataFrame, payment_year: int) -> list[tuple]:
    """Per member: (member_id, codes, age, sex, dual, orec, new_enrollee, lti)."""
    cy = payment_year - 1
    ref = pl.date(payment_year, 2, 1)
    dob = pl.col("DOB").str.to_date("%Y-%m-%d")
    m = memberships.select(
        "MemberID",
        (
            ref.dt.year()
            - dob.dt.year()
            - ((ref.dt.month() * 100 + ref.dt.day()) < (dob.dt.month() * 100 + dob.dt.day())).cast(
                pl.Int32
            )
        ).alias("age"),
        pl.col("Gender").alias("sex"),
        pl.col("RAType")
        .replace_strict({"CF": "02", "CP": "01"}, default="00", return_dtype=pl.String)
        .alias("dual"),
        pl.col("OREC").alias("orec"),
        pl.col("RAType").is_in(NE_CODES).alias("ne"),
        (pl.col("RAType") == "I").alias("lti"),
    )
    dx = (
        diagnoses.filter(pl.col("ThruDOS").str.slice(0, 4) == str(cy))
        .group_by("MemberID")
        .agg(pl.col("DxCode").alias("codes"))
    )
    m = m.join(dx, on="MemberID", how="left", maintain_order="left").with_columns(
        pl.col("codes").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )
    return [
        (r[0], r[7], r[1], r[2], r[3], r[4], r[5], r[6])
        for r in m.select(
            "MemberID", "age", "sex", "dual", "orec", "ne", "lti", "codes"
        ).iter_rows()
    ]


def run(memberships: pl.DataFrame, diagnoses: pl.DataFrame, payment_year: int = 2025) -> dict:
    """Score every member with V24 and V28; return timing and a checksum."""
    from hccinfhir import calculate_raf
    from hccinfhir.utils import load_coefficients, load_dx_to_cc_mapping, load_hierarchies

    t0 = time.perf_counter()
    dx_map = load_dx_to_cc_mapping(f"ra_dx_to_cc_{payment_year}.csv")
    hier = load_hierarchies(f"ra_hierarchies_{payment_year}.csv")
    coef = load_coefficients(f"ra_coefficients_{payment_year}.csv")
    load_s = time.perf_counter() - t0

    members = prepare(memberships, diagnoses, payment_year)
    models = ("CMS-HCC Model V24", "CMS-HCC Model V28")
    total = 0.0
    errors = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _mid, codes, age, sex, dual, orec, ne, lti in members:
        for model in models:
            try:
                r = calculate_raf(
                    codes,
                    model_name=model,
                    age=age,
                    sex=sex,
                    dual_elgbl_cd=dual,
                    orec=orec,
                    crec=orec,
                    new_enrollee=ne,
                    lti=lti,
                    dx_to_cc_mapping=dx_map,
                    hierarchies_mapping=hier,
                    coefficients_mapping=coef,
                )
                total += r.risk_score
            except Exception:  # noqa: BLE001 - count, never stop the benchmark
                errors += 1
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "cpu_seconds": cpu,
        "members_per_cpu_s": len(members) / cpu if cpu else float("nan"),
        "members": len(members),
        "seconds": seconds,
        "members_per_s": len(members) / seconds if seconds else float("nan"),
        "load_s": load_s,
        "errors": errors,
        "checksum": round(total, 3),
    }
