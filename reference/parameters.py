"""Adapter from ``YearTables.parameters`` (parameters.csv, typed) to the engine's
``engine.blend.BlendParameters`` (``engine/run.py`` imports ``blend_parameters_of``).

Values stay Decimal until the engine scales them; a ``missing`` factor (PY2025
ESRD) is passed as None, so the engine reports it instead of defaulting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference.store import YearTables

if TYPE_CHECKING:
    from engine.blend import BlendParameters


def blend_parameters_of(tables: YearTables, payment_year: int) -> BlendParameters:
    from engine.blend import BlendParameters

    params = tables.parameters
    if params.payment_year != payment_year:
        raise ValueError(f"tables are PY{params.payment_year}, asked for PY{payment_year}")
    cms_hcc_models = [tables.models[m].label for m in tables.models_for_family("CMS-HCC")]
    return BlendParameters.from_decimals(
        payment_year,
        cms_hcc_models,
        {label: factor.value for label, factor in params.blend_weights.items()},
        {key: factor.value for key, factor in params.normalization.items()},
        params.coding_adjustment.value,
        {model.label: model.identity for model in tables.models.values()},
    )
