"""Loader for the pinned reference data in ``reference/data/`` (see docs/ARCHITECTURE.md).

``ReferenceStore`` is created once per process; ``store.year(py)`` parses a payment
year's files on first use and returns the cached ``YearTables`` afterwards (models
are year-independent and parsed once for all years). Thread-safe.

Dtypes: ICD-10 codes ``Utf8``; ``cc``/``hcc``/``parent_hcc``/``child_hcc``/``age_min``/
``age_max`` ``Int16`` (null = unbounded); ``sex`` ``Utf8`` ``M``/``F``/null;
``coefficient`` the source decimal string; ``coefficient_milli`` ``Int64`` thousandths.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

DATA_DIR = Path(__file__).resolve().parent / "data"

# model_id (file layout) -> model label used in parameters.csv and response rows
MODEL_LABELS = {"cms_hcc_v28": "V28", "cms_hcc_v24": "V24", "esrd_v24": "ESRD_V24"}
MODEL_FAMILY = {"cms_hcc_v28": "CMS-HCC", "cms_hcc_v24": "CMS-HCC", "esrd_v24": "ESRD"}

MAPPING_SCHEMA = {
    "icd10": pl.Utf8,
    "cc": pl.Int16,
    "age_min": pl.Int16,
    "age_max": pl.Int16,
    "sex": pl.Utf8,
}
MCE_SCHEMA = {"icd10": pl.Utf8, "age_min": pl.Int16, "age_max": pl.Int16}
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
class YearParameters:
    """Typed parameters.csv rows of one payment year.

    ``blend_weights`` keys: ``V28``, ``V24``, ``ESRD_V24`` (absent = not in the blend).
    ``normalization`` keys: ``V28``, ``V24``, ``ESRD_V24_dialysis``, ``ESRD_V24_graft``.
    """

    payment_year: int
    blend_weights: dict[str, Factor]
    normalization: dict[str, Factor]
    coding_adjustment: Factor
    age_as_of: date
    collection_year: int

    @property
    def coding_adjustment_milli(self) -> int:
        return self.coding_adjustment.milli  # type: ignore[return-value]

    def blend_weight_milli(self, model: str) -> int:
        """Weight in thousandths for a model label or model_id (0 = not blended)."""
        factor = self.blend_weights.get(MODEL_LABELS.get(model, model))
        return 0 if factor is None or factor.milli is None else factor.milli

    def normalization_factor(self, model: str, group: str | None = None) -> Factor | None:
        """Factor for a model label/model_id; ESRD needs ``group`` ``dialysis`` or ``graft``
        (the members frame's ``normalization_group``). None = no such factor this year."""
        label = MODEL_LABELS.get(model, model)
        if label == "ESRD_V24" and group in ("dialysis", "graft"):
            label = f"ESRD_V24_{group}"
        return self.normalization.get(label)

    def normalization_milli(self, model: str, group: str | None = None) -> int | None:
        factor = self.normalization_factor(model, group)
        return None if factor is None else factor.milli


@dataclass(frozen=True)
class ModelTables:
    model_id: str
    coefficients: pl.DataFrame  # segment, variable, coefficient, coefficient_milli
    variables: pl.DataFrame  # variable, bucket, kind, label
    hierarchies: pl.DataFrame  # parent_hcc, child_hcc
    groups: pl.DataFrame  # group, hcc
    interactions: pl.DataFrame  # interaction, term_1, term_2
    labels: pl.DataFrame  # hcc, label

    @property
    def label(self) -> str:
        return MODEL_LABELS[self.model_id]


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

    def models_for_family(self, family: str) -> list[str]:
        """``CMS-HCC`` -> the year's CMS-HCC models (V28 first); ``ESRD`` -> ["esrd_v24"]."""
        return [m for m in self.models_of_year if MODEL_FAMILY[m] == family]

    @property
    def reference(self) -> dict:
        return {
            "payment_year": self.payment_year,
            "release_id": self.release_id,
            "sha256": self.sha256,
        }


class ReferenceStore:
    """Loads each payment year once; share one instance per process."""

    _default: ReferenceStore | None = None
    _default_lock = threading.Lock()

    def __init__(self, data_dir: Path | str | None = None):
        self.data_dir = Path(data_dir) if data_dir else DATA_DIR
        self._manifest = json.loads((self.data_dir / "manifest.json").read_text("utf-8"))
        self._lock = threading.RLock()
        self._years: dict[int, YearTables] = {}
        self._models: dict[str, ModelTables] = {}
        self._parameters: pl.DataFrame | None = None

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
            self._models[model_id] = ModelTables(model_id=model_id, **frames)
        return self._models[model_id]

    def _year_parameters(self, payment_year: int) -> YearParameters:
        if self._parameters is None:
            self._parameters = self._csv("parameters.csv", PARAMETER_SCHEMA)
        rows = self._parameters.filter(pl.col("payment_year") == payment_year).to_dicts()

        def factor(row: dict) -> Factor:
            value = row["value"]
            return Factor(Decimal(value) if value else None, row["status"], row["source"])

        by = {(r["parameter"], r["model"]): r for r in rows}
        return YearParameters(
            payment_year=payment_year,
            blend_weights={m: factor(r) for (p, m), r in by.items() if p == "blend_weight"},
            normalization={m: factor(r) for (p, m), r in by.items() if p == "normalization_factor"},
            coding_adjustment=factor(by[("coding_adjustment", "ALL")]),
            age_as_of=date.fromisoformat(by[("age_as_of", "ALL")]["value"]),
            collection_year=int(by[("collection_year", "ALL")]["value"]),
        )

    def _load_year(self, payment_year: int) -> YearTables:
        info = self._manifest["payment_years"][str(payment_year)]
        models_of_year = list(info["models"])
        mapping = {
            model_id: self._csv(f"mappings/PY{payment_year}/{model_id}.csv", MAPPING_SCHEMA)
            for model_id in models_of_year
        }
        return YearTables(
            payment_year=payment_year,
            release_id=info["release_id"],
            sha256=info["sha256"],
            models_of_year=models_of_year,
            mapping=mapping,
            mce_age=self._csv(f"mappings/PY{payment_year}/mce_age.csv", MCE_SCHEMA),
            models={model_id: self._model(model_id) for model_id in models_of_year},
            parameters=self._year_parameters(payment_year),
            files=list(info["files"]),
        )
