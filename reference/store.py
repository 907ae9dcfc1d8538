"""Loader for the pinned reference data in ``reference/data/`` (see docs/ARCHITECTURE.md).

``ReferenceStore`` is created once per process; ``store.year(py)`` parses a payment
year's files on first use and returns the cached ``YearTables`` afterwards (models
are year-independent and parsed once for all years). Thread-safe.

Dtypes: ICD-10 codes ``Utf8``; ``cc``/``hcc``/``parent_hcc``/``child_hcc``/``age_min``/
``age_max`` ``Int16`` (null = unbounded); ``sex`` ``Utf8`` ``M``/``F``/null;
``coefficient`` the source decimal string; ``coefficient_milli`` ``Int64`` thousandths.

Model identity (label, family, response-row texts, normalization keys) is data:
``models/<id>/model.json``, generated from ``reference/sources.toml``.

``RAF_PARAMETER_OVERRIDES=path.csv`` (or ``ReferenceStore(parameter_overrides=...)``)
lets an operator supply a parameter the bundled data lacks (PY2025 ESRD factors):
same columns as ``parameters.csv``, ``source`` required, optional ``force`` column.
An override of a ``cms``/``corroborated`` value is refused unless ``force`` is
``yes``; an accepted row gets status ``operator`` and changes the year's release id
and sha256, so answers computed with and without it never share a cache entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Environment variable naming an operator's parameter overrides file.
OVERRIDES_ENV = "RAF_PARAMETER_OVERRIDES"
#: Statuses an override may not replace without ``force``.
PUBLISHED_STATUSES = ("cms", "corroborated")

MAPPING_SCHEMA = {
    "icd10": pl.Utf8,
    "cc": pl.Int16,
    "age_min": pl.Int16,
    "age_max": pl.Int16,
    "sex": pl.Utf8,
}
MCE_SCHEMA = {"icd10": pl.Utf8, "age_min": pl.Int16, "age_max": pl.Int16}
#: icd10cm/codes.csv: a billable ICD-10-CM code and the fiscal years it is valid in
#: (inclusive; null = open: valid before / after the evidence the build had).
CODE_SCHEMA = {"code": pl.Utf8, "first_fy": pl.Int16, "last_fy": pl.Int16}
MODEL_SCHEMAS = {
    "coefficients": {"segment": pl.Utf8, "variable": pl.Utf8, "coefficient": pl.Utf8},
    "variables": {"variable": pl.Utf8, "bucket": pl.Utf8, "kind": pl.Utf8, "label": pl.Utf8},
    "hierarchies": {"parent_hcc": pl.Int16, "child_hcc": pl.Int16},
    "groups": {"group": pl.Utf8, "hcc": pl.Int16},
    "interactions": {"interaction": pl.Utf8, "term_1": pl.Utf8, "term_2": pl.Utf8},
    "labels": {"hcc": pl.Int16, "label": pl.Utf8},
}
PARAMETER_SCHEMA = {
    "payment_year": pl.Int16,
    "parameter": pl.Utf8,
    "model": pl.Utf8,
    "value": pl.Utf8,
    "source": pl.Utf8,
    "status": pl.Utf8,
}


class ParameterOverrideError(ValueError):
    """An overrides file the store refuses (names the file, line and field)."""


@dataclass(frozen=True)
class ModelIdentity:
    """``models/<id>/model.json``: who a model is, as the rows and parameters name it."""

    model_id: str
    label: str  # raw rows' `model` and parameters.csv `model`: "V28", "ESRD_V24"
    family: str  # members.model_family it scores: "CMS-HCC", "ESRD"
    name: str
    clinical_version: str  # `Clinical_Version` of its raw row
    model_text: str  # `Model` of its raw row (ESRD: replaced per segment by engine.rows)
    ra_variable_order: int  # position of "<version> ( ... )" in the active RA_Variable
    #: members.normalization_group -> parameters.csv normalization_factor `model`
    normalization_keys: Mapping[str, str]

    @classmethod
    def from_json(cls, data: dict) -> ModelIdentity:
        return cls(
            model_id=data["model_id"],
            label=data["label"],
            family=data["family"],
            name=data["name"],
            clinical_version=data["clinical_version"],
            model_text=data["model_text"],
            ra_variable_order=int(data["ra_variable_order"]),
            normalization_keys=dict(data["normalization_keys"]),
        )


class UnsupportedPaymentYear(LookupError):
    """A payment year with no bundled reference data (never scored with a default)."""

    def __init__(self, payment_year: object, supported: tuple[int, ...]):
        self.payment_year = payment_year
        self.supported = supported
        years = ", ".join(str(y) for y in supported)
        super().__init__(f"payment year {payment_year} is not supported; supported years: {years}")


def decimal_to_milli(column: str = "coefficient") -> pl.Expr:
    """Decimal string ("0.348", "-0.024", "1") -> Int64 thousandths, no float on the way."""
    text = pl.col(column).str.strip_chars()
    negative = text.str.starts_with("-")
    unsigned = text.str.strip_prefix("-")
    whole = unsigned.str.extract(r"^(\d+)", 1).cast(pl.Int64)
    fraction = unsigned.str.extract(r"\.(\d{1,3})$", 1).fill_null("").str.pad_end(3, "0")
    magnitude = whole * 1000 + fraction.cast(pl.Int64)
    return pl.when(negative).then(-magnitude).otherwise(magnitude)


def _to_milli(value: Decimal) -> int:
    milli = value * 1000
    if milli != milli.to_integral_value():
        raise ValueError(f"{value} has more than 3 decimals")
    return int(milli)


@dataclass(frozen=True)
class Factor:
    """One parameters.csv value with its provenance. ``value``/``milli`` are None when
    ``status == "missing"``: callers must refuse (error or warning), never default."""

    value: Decimal | None
    status: str
    source: str

    @property
    def milli(self) -> int | None:
        return None if self.value is None else _to_milli(self.value)

    @property
    def missing(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class ParameterRow:
    """One parameters.csv row as the reference block and ``GET /v1/reference`` show it."""

    parameter: str
    model: str
    value: str | None
    status: str
    source: str


@dataclass(frozen=True)
class YearParameters:
    """Typed parameters.csv rows of one payment year.

    ``blend_weights`` keys: model labels (``V28``, ``V24``, ``ESRD_V24``; absent = not in
    the blend). ``normalization`` keys: the models' normalization keys (``V28``, ``V24``,
    ``ESRD_V24_dialysis``, ``ESRD_V24_graft``). ``labels`` (model_id -> label) and
    ``normalization_keys`` (label -> group -> key) come from the year's model.json files.
    """

    payment_year: int
    blend_weights: dict[str, Factor]
    normalization: dict[str, Factor]
    coding_adjustment: Factor
    age_as_of: date
    collection_year: int
    labels: Mapping[str, str] = field(default_factory=dict)
    normalization_keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    rows: tuple[ParameterRow, ...] = ()

    @property
    def coding_adjustment_milli(self) -> int:
        return self.coding_adjustment.milli  # type: ignore[return-value]

    def blend_weight_milli(self, model: str) -> int:
        """Weight in thousandths for a model label or model_id (0 = not blended)."""
        factor = self.blend_weights.get(self.labels.get(model, model))
        return 0 if factor is None or factor.milli is None else factor.milli

    def normalization_factor(self, model: str, group: str | None = None) -> Factor | None:
        """Factor for a model label/model_id and the member's ``normalization_group``
        (``cms_hcc``, ``dialysis``, ``graft``; a model with one key needs none).
        None = no such factor this year."""
        label = self.labels.get(model, model)
        keys = self.normalization_keys.get(label, {})
        if group in keys:
            key = keys[group]
        elif len(keys) == 1:
            key = next(iter(keys.values()))
        else:
            key = label
        return self.normalization.get(key)

    def normalization_milli(self, model: str, group: str | None = None) -> int | None:
        factor = self.normalization_factor(model, group)
        return None if factor is None else factor.milli

    @property
    def caveats(self) -> list[ParameterRow]:
        """Rows whose status is not ``cms``/``corroborated`` (single-source, missing,
        operator): what every response of the year names in its ``reference`` block."""
        return [row for row in self.rows if row.status not in PUBLISHED_STATUSES]


@dataclass(frozen=True)
class ModelTables:
    model_id: str
    coefficients: pl.DataFrame  # segment, variable, coefficient, coefficient_milli
    variables: pl.DataFrame  # variable, bucket, kind, label
    hierarchies: pl.DataFrame  # parent_hcc, child_hcc
    groups: pl.DataFrame  # group, hcc
    interactions: pl.DataFrame  # interaction, term_1, term_2
    labels: pl.DataFrame  # hcc, label
    identity: ModelIdentity | None = None

    @property
    def label(self) -> str:
        return self.identity.label if self.identity else self.model_id


@dataclass(frozen=True)
class YearTables:
    payment_year: int
    release_id: str
    sha256: str  # digest over the year's file hashes (manifest payment_years[py].sha256)
    models_of_year: list[str]  # V28 first, e.g. ["cms_hcc_v28", "cms_hcc_v24", "esrd_v24"]
    mapping: dict[str, pl.DataFrame]  # model_id -> icd10, cc, age_min, age_max, sex
    mce_age: pl.DataFrame  # icd10, age_min, age_max
    models: dict[str, ModelTables]
    parameters: YearParameters
    files: list[str] = field(default_factory=list)
    #: every billable ICD-10-CM code the reference knows (``icd10``): a code outside
    #: every mapping but in here is ``no_hcc``, a code in neither is ``unknown_code``.
    icd10_codes: pl.DataFrame | None = None
    #: the codes not valid on every day of the collection year: ``code, valid_from,
    #: valid_to`` (Date, inclusive; null = open). A diagnosis with such a code whose
    #: ThruDOS falls outside the range is ``invalid_on_service_date``.
    dated_codes: pl.DataFrame | None = None
    #: warnings of the reference itself (forced parameter overrides)
    warnings: tuple[str, ...] = ()

    def models_for_family(self, family: str) -> list[str]:
        """``CMS-HCC`` -> the year's CMS-HCC models (V28 first); ``ESRD`` -> ["esrd_v24"]."""
        return [m for m in self.models_of_year if self.models[m].identity.family == family]

    @property
    def reference(self) -> dict:
        return {
            "payment_year": self.payment_year,
            "release_id": self.release_id,
            "sha256": self.sha256,
        }


def fiscal_year_dates(table: pl.DataFrame, collection_year: int) -> pl.DataFrame:
    """``dated_codes`` of a year from icd10cm/codes.csv: ICD-10-CM fiscal year N runs
    1 Oct N-1 to 30 Sep N; only codes whose range does not cover all of the year."""
    valid_from = pl.date(pl.col("first_fy").cast(pl.Int32) - 1, 10, 1)
    valid_to = pl.date(pl.col("last_fy").cast(pl.Int32), 9, 30)
    dated = table.select(
        "code",
        pl.when(pl.col("first_fy").is_not_null()).then(valid_from).alias("valid_from"),
        pl.when(pl.col("last_fy").is_not_null()).then(valid_to).alias("valid_to"),
    )
    return dated.filter(
        (pl.col("valid_from") > date(collection_year, 1, 1))
        | (pl.col("valid_to") < date(collection_year, 12, 31))
    )


class ReferenceStore:
    """Loads each payment year once; share one instance per process."""

    _default: ReferenceStore | None = None
    _default_lock = threading.Lock()

    def __init__(
        self,
        data_dir: Path | str | None = None,
        parameter_overrides: Path | str | None | bool = True,
    ):
        """``parameter_overrides``: a CSV path, None/False for none, or True (default)
        to read ``RAF_PARAMETER_OVERRIDES`` from the environment."""
        self.data_dir = Path(data_dir) if data_dir else DATA_DIR
        self._manifest = json.loads((self.data_dir / "manifest.json").read_text("utf-8"))
        self._lock = threading.RLock()
        self._years: dict[int, YearTables] = {}
        self._models: dict[str, ModelTables] = {}
        self._codes: pl.DataFrame | None = None
        if parameter_overrides is True:
            parameter_overrides = os.environ.get(OVERRIDES_ENV, "").strip() or None
        self.overrides_path = Path(parameter_overrides) if parameter_overrides else None
        base = self._csv("parameters.csv", PARAMETER_SCHEMA)
        self._parameters, self._override_rows, self.override_warnings = (
            apply_overrides(base, self.overrides_path, self.supported_years)
            if self.overrides_path
            else (base, pl.DataFrame(schema=PARAMETER_SCHEMA), ())
        )

    @classmethod
    def default(cls) -> ReferenceStore:
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    @property
    def manifest(self) -> dict:
        return self._manifest

    @property
    def supported_years(self) -> tuple[int, ...]:
        return tuple(sorted(int(y) for y in self._manifest["payment_years"]))

    def year(self, payment_year: int) -> YearTables:
        try:
            key = int(payment_year)
        except (TypeError, ValueError):
            raise UnsupportedPaymentYear(payment_year, self.supported_years) from None
        if key not in self.supported_years:
            raise UnsupportedPaymentYear(payment_year, self.supported_years)
        cached = self._years.get(key)
        if cached is not None:
            return cached
        with self._lock:
            if key not in self._years:
                self._years[key] = self._load_year(key)
            return self._years[key]

    def verify(self) -> list[str]:
        """Recompute every file hash; returns the mismatches (empty = all good)."""
        problems = []
        for entry in self._manifest["files"]:
            path = self.data_dir / entry["path"]
            if not path.exists():
                problems.append(f"{entry['path']}: missing")
                continue
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            if actual != entry["sha256"]:
                problems.append(f"{entry['path']}: sha256 {actual} != manifest {entry['sha256']}")
        return problems

    # -- loading

    def _csv(self, rel: str, schema: dict) -> pl.DataFrame:
        return pl.read_csv(self.data_dir / rel, schema=schema)

    def identity(self, model_id: str) -> ModelIdentity:
        return self._model(model_id).identity  # type: ignore[return-value]

    def _model(self, model_id: str) -> ModelTables:
        if model_id not in self._models:
            base = f"models/{model_id}"
            frames = {
                name: self._csv(f"{base}/{name}.csv", schema)
                for name, schema in MODEL_SCHEMAS.items()
            }
            coefficients = frames["coefficients"]
            too_precise = coefficients.filter(
                ~pl.col("coefficient").str.contains(r"^-?\d+(\.\d{1,3})?$")
            )
            if too_precise.height:
                raise ValueError(f"{model_id}: coefficients not 3-decimal: {too_precise}")
            frames["coefficients"] = coefficients.with_columns(
                decimal_to_milli("coefficient").alias("coefficient_milli")
            )
            identity = ModelIdentity.from_json(
                json.loads((self.data_dir / base / "model.json").read_text("utf-8"))
            )
            self._models[model_id] = ModelTables(model_id=model_id, identity=identity, **frames)
        return self._models[model_id]

    def _code_table(self) -> pl.DataFrame:
        if self._codes is None:
            self._codes = self._csv("icd10cm/codes.csv", CODE_SCHEMA)
        return self._codes

    def _year_parameters(self, payment_year: int, models: dict[str, ModelTables]) -> YearParameters:
        rows = self._parameters.filter(pl.col("payment_year") == payment_year).to_dicts()

        def factor(row: dict) -> Factor:
            value = row["value"]
            return Factor(Decimal(value) if value else None, row["status"], row["source"])

        by = {(r["parameter"], r["model"]): r for r in rows}
        identities = [m.identity for m in models.values() if m.identity is not None]
        return YearParameters(
            payment_year=payment_year,
            blend_weights={m: factor(r) for (p, m), r in by.items() if p == "blend_weight"},
            normalization={m: factor(r) for (p, m), r in by.items() if p == "normalization_factor"},
            coding_adjustment=factor(by[("coding_adjustment", "ALL")]),
            age_as_of=date.fromisoformat(by[("age_as_of", "ALL")]["value"]),
            collection_year=int(by[("collection_year", "ALL")]["value"]),
            labels={i.model_id: i.label for i in identities},
            normalization_keys={i.label: dict(i.normalization_keys) for i in identities},
            rows=tuple(
                ParameterRow(r["parameter"], r["model"], r["value"], r["status"], r["source"])
                for r in sorted(rows, key=lambda r: (r["parameter"], r["model"]))
            ),
        )

    def _load_year(self, payment_year: int) -> YearTables:
        info = self._manifest["payment_years"][str(payment_year)]
        models_of_year = list(info["models"])
        mapping = {
            model_id: self._csv(f"mappings/PY{payment_year}/{model_id}.csv", MAPPING_SCHEMA)
            for model_id in models_of_year
        }
        models = {model_id: self._model(model_id) for model_id in models_of_year}
        parameters = self._year_parameters(payment_year, models)
        release_id, digest = info["release_id"], info["sha256"]
        overrides = self._override_rows.filter(pl.col("payment_year") == payment_year)
        if overrides.height:
            # the year's answer depends on the operator's values: a release of its own
            canonical = overrides.sort("parameter", "model").write_csv(line_terminator="\n")
            digest = hashlib.sha256(f"{digest}\n{canonical}".encode()).hexdigest()
            release_id = f"{release_id.split('+')[0]}+{digest[:12]}"
        codes = self._code_table()
        return YearTables(
            payment_year=payment_year,
            release_id=release_id,
            sha256=digest,
            models_of_year=models_of_year,
            mapping=mapping,
            mce_age=self._csv(f"mappings/PY{payment_year}/mce_age.csv", MCE_SCHEMA),
            models=models,
            parameters=parameters,
            files=list(info["files"]),
            icd10_codes=codes.select(pl.col("code").alias("icd10")),
            dated_codes=fiscal_year_dates(codes, parameters.collection_year),
            warnings=tuple(w for y, w in self.override_warnings if y == payment_year),
        )


def _decimal_text(value: str, where: str) -> str:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ParameterOverrideError(f"{where}: value {value!r} is not a decimal number") from None
    if not number.is_finite() or number <= 0:
        raise ParameterOverrideError(f"{where}: value {value!r} must be a positive number")
    if (number * 1_000_000) != (number * 1_000_000).to_integral_value():
        raise ParameterOverrideError(f"{where}: value {value!r} has more than six decimals")
    return value.strip()


def apply_overrides(
    base: pl.DataFrame, path: Path, supported_years: tuple[int, ...]
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[tuple[int, str], ...]]:
    """``base`` parameters with the operator's rows of ``path`` applied.

    Returns (parameters, the accepted override rows, warnings as (year, text)).
    Refuses (``ParameterOverrideError``) a file without the parameters.csv columns,
    a row without ``source``, an unknown (year, parameter, model), a value that is not
    a positive decimal, and an override of a ``cms``/``corroborated`` value unless its
    ``force`` column says ``yes``.
    """
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ParameterOverrideError(f"{OVERRIDES_ENV}={path}: cannot read it ({exc})") from None
    frame = frame.rename({c: c.strip() for c in frame.columns})
    required = ["payment_year", "parameter", "model", "value", "source"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ParameterOverrideError(
            f"{OVERRIDES_ENV}={path}: missing column(s) {', '.join(missing)} "
            "(same columns as reference/data/parameters.csv)"
        )
    known = {(r["payment_year"], r["parameter"], r["model"]): r for r in base.to_dicts()}
    accepted, warnings = [], []
    for line, row in enumerate(frame.to_dicts(), start=2):
        where = f"{OVERRIDES_ENV}={path} line {line}"
        try:
            year = int((row["payment_year"] or "").strip())
        except ValueError:
            raise ParameterOverrideError(f"{where}: payment_year {row['payment_year']!r}") from None
        if year not in supported_years:
            raise ParameterOverrideError(f"{where}: payment year {year} is not supported")
        parameter, model = (row["parameter"] or "").strip(), (row["model"] or "").strip()
        current = known.get((year, parameter, model))
        if current is None or parameter in ("age_as_of", "collection_year"):
            raise ParameterOverrideError(
                f"{where}: PY{year} has no parameter {parameter} {model} an operator can set"
            )
        source = (row["source"] or "").strip()
        if not source:
            raise ParameterOverrideError(f"{where}: field source is required (cite the CMS figure)")
        value = _decimal_text(row["value"] or "", where)
        forced = (row.get("force") or "").strip().lower() in ("yes", "true", "1")
        name = f"PY{year} {parameter} {model}"
        if any(a[:3] == (year, parameter, model) for a in accepted):
            raise ParameterOverrideError(f"{where}: {name} is overridden twice")
        if current["status"] in PUBLISHED_STATUSES:
            if not forced:
                raise ParameterOverrideError(
                    f"{where}: {name} is {current['status']} ({current['value']}); an override "
                    "of a published value is refused unless its force column says yes"
                )
            warning = (
                f"{name}: operator value {value} replaces the {current['status']} value "
                f"{current['value']} (forced)"
            )
            warnings.append((year, warning))
        accepted.append((year, parameter, model, value, f"operator: {source}", "operator"))
    overrides = pl.DataFrame(accepted, schema=PARAMETER_SCHEMA, orient="row")
    keys = ["payment_year", "parameter", "model"]
    merged = pl.concat([base.join(overrides, on=keys, how="anti"), overrides]).sort(keys)
    return merged, overrides, tuple(warnings)
