"""RAType normalizer: standardize memberships and route each member to its model and segment.

See ``ratype/normalizer.py`` (rules and CMS sources) and ``ratype/codes.csv`` (one row per
MMR RA factor type code).
"""

from ratype.normalizer import ERRORS_SCHEMA, MEMBERS_SCHEMA, MEMBERSHIP_FIELDS, normalize
from ratype.tables import age_band_table, code_table

__all__ = [
    "ERRORS_SCHEMA",
    "MEMBERSHIP_FIELDS",
    "MEMBERS_SCHEMA",
    "age_band_table",
    "code_table",
    "normalize",
]
