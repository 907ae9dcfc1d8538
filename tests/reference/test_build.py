"""reference.build: condition parsing, edit folding, SAS parsing, and (with the
wheels at hand) byte-identical regeneration of reference/data/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from reference import build

WHEELS_DIR = os.environ.get("RAF_WHEELS_DIR")


def parsed(texts: list[str | None]) -> list[tuple]:
    frame = pl.DataFrame({"c": texts}, schema={"c": pl.Utf8})
    return frame.select(build.parse_age_condition("c")).rows()


def test_parse_age_conditions():
    assert parsed(
        [
            "age < 50",
            "age >= 50",
            "0 <= age <= 17",
            "9 <= age <= 64",
            "age = 0",
            "age >= 15",
            "6 <= age <= 18",
            None,
            "",
        ]
    ) == [
        (None, 49),
        (50, None),
        (None, 17),
        (9, 64),
        (None, 0),
        (15, None),
        (6, 18),
        (None, None),
        (None, None),
    ]


def edits_frame(rows: list[dict]) -> pl.DataFrame:
    schema = {
        "icd10": pl.Utf8,
        "action": pl.Utf8,
        "fire_from": pl.Int16,
        "fire_upto": pl.Int16,
        "fire_sex": pl.Utf8,
        "cc_override": pl.Int16,
    }
    frame = pl.DataFrame(rows, schema=schema)
    return frame.with_columns(
        (pl.col("fire_upto") + 1).alias("keep_age_min"),
        (pl.col("fire_from") - 1).alias("keep_age_max"),
        pl.col("fire_sex").replace_strict({"M": "F", "F": "M"}, default=None).alias("keep_sex"),
    )


def test_fold_edits_override_invalid_and_range():
    base = pl.DataFrame(
        {"icd10": ["D66", "J449", "F3481", "C50011", "A000"], "cc": [111, 280, 59, 23, 1]},
        schema={"icd10": pl.Utf8, "cc": pl.Int16},
    )
    edits = edits_frame(
        [
            {"icd10": "D66", "action": "override", "fire_sex": "F", "cc_override": 112},
            {"icd10": "J449", "action": "invalid", "fire_upto": 17},
            {"icd10": "F3481", "action": "invalid", "fire_from": 19, "fire_upto": 5},
            {"icd10": "C50011", "action": "override", "fire_upto": 49, "cc_override": 22},
            {"icd10": "ZZZ", "action": "override", "fire_upto": 49, "cc_override": 22},
        ]
    )
    folded = build.fold_edits(base, edits)
    assert folded.rows() == [
        ("A000", 1, None, None, None),
        ("C50011", 22, None, 49, None),
        ("C50011", 23, 50, None, None),
        ("D66", 111, None, None, "M"),
        ("D66", 112, None, None, "F"),
        ("F3481", 59, 6, 18, None),
        ("J449", 280, 18, None, None),
    ]


SAS_EDIT_SNIPPET = """
   IF &SEX="2" AND &ICD10 IN ("D66", "D67")  THEN CC="48";
   ELSE
   IF &AGE < 18 AND &ICD10 IN ("J410", "J411") THEN CC="112";
   ELSE
   IF (&AGE < 6 OR &AGE > 18) AND &ICD10 = "F3481" THEN CC="-1.0";
  %IF &SEDITS = 1 %THEN %DO;
     IF _TAGE NE "-1" AND (&AGE < 1) THEN CC='-1.0';
"""


def test_sas_edit_rules_parse():
    rules = build.sas_edit_rules(SAS_EDIT_SNIPPET).sort("icd10").rows()
    assert rules == [
        ("D66", 'SEX="2"', "override", 48),
        ("D67", 'SEX="2"', "override", 48),
        ("F3481", "(AGE < 6 OR AGE > 18)", "invalid", None),
        ("J410", "AGE < 18", "override", 112),
        ("J411", "AGE < 18", "override", 112),
    ]


def test_sas_hierarchies_parse_wrapped_lines():
    text = """ /*Neuro 2 */      %SET0(CC=191   , HIER=%STR(
180, 181, 182, 192, 253, 254 ));
 /*Heart 1 */      %SET0(CC=221   , HIER=%STR(222, 223
));"""
    pairs = build.sas_hierarchies(text).rows()
    assert (191, 180) in pairs and (191, 254) in pairs and (221, 223) in pairs
    assert len(pairs) == 8


def test_sas_v24_groups_and_interactions():
    text = """%*diagnostic categories;
            CANCER         = MAX(HCC8, HCC9);
            CHF            = HCC85;
            HCC47_gCancer  = HCC47*Cancer;
            DISABLED_HCC6  = DISABL*(HCC6);
           END; *there are some diagnoses for a person;"""
    groups, interactions = build.sas_v24_variables(text)
    assert groups.rows() == [("CANCER", 8), ("CANCER", 9), ("CHF", 85)]
    assert interactions.rows() == [
        ("HCC47_gCancer", "HCC47", "CANCER"),
        ("DISABLED_HCC6", "DISABL", "HCC6"),
    ]


def test_variable_table_rejects_unknown_variable():
    coefficients = pl.DataFrame(
        {
            "segment": ["CNA", "CNA"],
            "variable": ["HCC1", "MYSTERY_TERM"],
            "coefficient": ["0.1", "0.2"],
            "label": [None, None],
        },
        schema={"segment": pl.Utf8, "variable": pl.Utf8, "coefficient": pl.Utf8, "label": pl.Utf8},
    )
    empty_inter = pl.DataFrame(
        schema={"interaction": pl.Utf8, "term_1": pl.Utf8, "term_2": pl.Utf8}
    )
    labels = pl.DataFrame(schema={"hcc": pl.Int16, "label": pl.Utf8})
    with pytest.raises(ValueError, match="MYSTERY_TERM"):
        build.variable_table(coefficients, empty_inter, labels)


def test_finish_coefficients_rejects_four_decimals():
    frame = pl.DataFrame({"segment": ["CNA"], "variable": ["HCC1"], "coefficient": ["0.1234"]})
    with pytest.raises(AssertionError):
        build.finish_coefficients(frame)


@pytest.fixture(scope="session")
def wheels_dir(tmp_path_factory) -> Path:
    """The pinned wheels of reference/sources.toml: ``RAF_WHEELS_DIR`` (``.ci/run``
    downloads them there) or, when unset, a fresh ``pip download`` (never a skip: a
    machine that cannot fetch them fails this test)."""
    if WHEELS_DIR:
        path = Path(WHEELS_DIR)
        assert path.is_dir(), f"RAF_WHEELS_DIR={WHEELS_DIR} is not a directory"
        return path
    path = tmp_path_factory.mktemp("wheels")
    build.fetch_wheels(path)
    return path


def test_build_reproduces_committed_data(tmp_path, wheels_dir):
    manifest = build.build(wheels_dir, tmp_path)
    committed = json.loads((build.DATA_DIR / "manifest.json").read_text())
    assert manifest == committed
    for entry in committed["files"]:
        assert (tmp_path / entry["path"]).read_bytes() == (
            build.DATA_DIR / entry["path"]
        ).read_bytes(), entry["path"]
    assert (tmp_path / "manifest.json").read_bytes() == (
        build.DATA_DIR / "manifest.json"
    ).read_bytes()


def test_merge_age_ranges_joins_touching_and_overlapping_ranges():
    frame = pl.DataFrame(
        {
            "icd10": ["E10311", "E10311", "E10311", "X", "X", "Y", "Y"],
            "cc": [18, 18, 18, 5, 5, 7, 7],
            "age_min": [None, 21, None, None, 21, None, 50],
            "age_max": [None, None, 20, 20, None, 10, None],
            "sex": [None] * 7,
        },
        schema=build.MAPPING_SCHEMA,
    )
    merged = build.sort_mapping(frame).rows()
    assert merged == [
        ("E10311", 18, None, None, None),
        ("X", 5, None, None, None),
        ("Y", 7, None, 10, None),  # a gap (11..49) is not merged
        ("Y", 7, 50, None, None),
    ]
