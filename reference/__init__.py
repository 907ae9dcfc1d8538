"""Pinned CMS reference data (mappings, models, parameters) and its loader.

``reference.build`` regenerates ``reference/data/`` from the peer wheels;
``reference.store`` loads it. See docs/ARCHITECTURE.md "Reference data".
"""

from reference.store import (
    Factor,
    ModelIdentity,
    ModelTables,
    ParameterOverrideError,
    ReferenceStore,
    UnsupportedPaymentYear,
    YearParameters,
    YearTables,
)

__all__ = [
    "Factor",
    "ModelIdentity",
    "ModelTables",
    "ParameterOverrideError",
    "ReferenceStore",
    "UnsupportedPaymentYear",
    "YearParameters",
    "YearTables",
]
