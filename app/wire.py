"""Wire contract: msgspec Structs for the HTTP request and response bodies.

Field names, order and value formats are the seed's
(`../shared/seeds/002_b326aa90cf1b7c66.txt`), extensions per
`../shared/spec/api.md`. Requests are decoded straight from bytes with
`decode_request` (strict types: `"payment_year": "2025"` is a 400 naming
`$.payment_year`); responses are Structs that Litestar encodes with msgspec.

Membership fields: `MemberID`, `DOB`, `Gender` and `RAType` are required
strings; `Hospice`, `LTIMCAID`, `NEMCAID` and `OREC` may be omitted or null and
are then judged per member by `ratype.normalize` (blank flags count as N; a
missing OREC is a member error). `diagnoses` may be omitted (demographic-only).

Structs made of strings, numbers and lists of such are `gc=False` (never
tracked by the cycle collector: they cannot be part of a cycle). A 10k-member
request decodes ~90k memberships and diagnoses and a cold one builds ~30k
result rows; tracked, those allocations trigger collector passes over the whole
heap (10k-member decode 68 ms -> 25 ms untracked). `Diagnosis` is `order=True`
so a member's diagnoses sort for its cache key (`app.service.member_key`).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import Struct

from app.json_depth import check_json_depth
from app.summary import RosterSummary


class Membership(Struct, forbid_unknown_fields=False, gc=False):
    MemberID: str
    DOB: str
    Gender: str
    RAType: str
    Hospice: str | None = None
    LTIMCAID: str | None = None
    NEMCAID: str | None = None
    OREC: str | None = None
    # plan finance (`engine.finance`); numbers are read as their JSON text
    Enrollment_Months: int | str | None = None
    Enrollment_Start: str | None = None
    Enrollment_End: str | None = None
    County: str | None = None
    Monthly_Rate: float | str | None = None


class Diagnosis(Struct, forbid_unknown_fields=False, gc=False, order=True):
    MemberID: str
    FromDOS: str
    ThruDOS: str
    DxCode: str


class CountyRate(Struct, forbid_unknown_fields=False, gc=False):
    """One row of a rate table (`engine.finance.RateTable`); `payment_year` defaults to the
    request's."""

    county: str
    monthly_rate: float | str
    payment_year: int | None = None
    source: str | None = None


class RiskScoreRequest(Struct, forbid_unknown_fields=False):
    payment_year: int
    memberships: list[Membership]
    diagnoses: list[Diagnosis] = []
    rates: list[CountyRate] | None = None


class PaymentLine(Struct, omit_defaults=True, gc=False):
    """`?detail=true` itemization of the active row's dollars: one `RAF_*` bucket, or one
    model's HCC / interaction through the blend (`engine.finance`)."""

    Section: Literal["bucket", "hcc", "interaction"]
    Code: str
    RAF_Score: float
    MA_Payment: float
    Model: str | None = None


class HccDetail(Struct, gc=False):
    HCC: str
    Label: str | None
    Coefficient: float
    DxCodes: list[str]


class HierarchyDrop(Struct, gc=False):
    HCC: str
    Dropped_By: str | None
    Rule: str | None = None


class InteractionDetail(Struct, gc=False):
    Name: str
    Label: str | None
    Coefficient: float


class DroppedDiagnosis(Struct, gc=False):
    DxCode: str | None
    FromDOS: str | None
    ThruDOS: str | None
    Reason: str


class ResultRow(Struct, omit_defaults=True, gc=False):
    """One row of `results`, in the seed's field order; extensions last and only when present."""

    Payment_Year: int
    Member_Id: str
    BirthDate_Org: str
    BirthDate: str
    Age: int
    Age_Band: str
    Gender_Org: str
    Gender: str
    RAType_Org: str
    RAType: str
    Hospice_Org: str | None  # echo as sent: null when the field was omitted
    Hospice: str
    LTIMCAID_Org: str | None  # echo as sent: null when the field was omitted
    LTIMCAID: str
    NEMCAID_Org: str | None  # echo as sent: null when the field was omitted
    NEMCAID: str
    OREC_Org: str | None  # echo as sent: null when the field was omitted
    OREC: str
    Originally_Disabled: str
    Originally_ESRD: str
    RA_Variable: str
    RAF_Demographic: float
    RAF_Demographic_Interaction_With_Medicaid_Or_OREC: float
    RAF_Disease: float
    RAF_Disease_Count: float
    RAF_Disease_Interaction_With_Disease: float
    RAF_Disease_Interaction_With_Disability_Or_NonAged: float
    RAF_Total: float
    Model: str
    Clinical_Version: str
    Active_Score: int
    Warnings: list[str] | None = None
    # plan finance, on the active row only (`engine.finance.OUTPUT_FIELDS`)
    Enrollment_Months: int | None = None
    Monthly_Rate: float | None = None
    Rate_Source: str | None = None
    MA_Payment_Monthly: float | None = None
    MA_Payment: float | None = None
    MA_Payment_Detail: list[PaymentLine] | None = None
    HCCs: list[HccDetail] | None = None
    Hierarchy_Dropped: list[HierarchyDrop] | None = None
    Interactions: list[InteractionDetail] | None = None
    Dropped_Diagnoses: list[DroppedDiagnosis] | None = None


class ErrorItem(Struct, omit_defaults=True, gc=False):
    """A member that could not be scored (`MemberID` set) or a request-level problem."""

    field: str
    message: str
    MemberID: str | None = None


class DataWarning(Struct, gc=False):
    """A data-quality warning about the batch as a whole (`app.quality`): `code` is stable
    (`outside_collection_year`, `invalid_dates`, `unknown_code`, `no_diagnosis_used`, ...),
    `message` says what was seen and what the year expects, `count` is the number of input
    rows concerned."""

    code: str
    message: str
    count: int


class ReferenceInfo(Struct):
    payment_year: int
    release_id: str | None
    sha256: str | None


class CacheCounts(Struct):
    hits: int
    misses: int


class RiskScoreResponse(Struct, omit_defaults=True):
    """The answer; `summary` only with `?summary=true` (`app.summary.RosterSummary`)."""

    status: Literal["success", "partial"]
    message: str
    cache_status: Literal["Cache hit", "Cache miss"]
    count: int
    results: list[ResultRow]
    timestamp: str
    member_count: int  # membership rows received
    members_scored: int  # members with a score; the other rows are in `errors`
    errors: list[ErrorItem]
    warnings: list[DataWarning]
    diagnoses_summary: dict[str, int]
    reference: ReferenceInfo
    cache: CacheCounts
    summary: RosterSummary | None = None


class FailureResponse(Struct, omit_defaults=True):
    """Every non-200 answer: `status` "failure", a message, and what was wrong."""

    status: Literal["failure"]
    message: str
    errors: list[ErrorItem]
    request_id: str | None = None


class HealthResponse(Struct):
    status: Literal["ok"]
    payment_years: list[int]


class ParameterValue(Struct):
    parameter: str
    model: str
    value: str | None
    status: str
    source: str


class PaymentYearReference(Struct):
    payment_year: int
    release_id: str | None
    sha256: str | None
    models: list[str]
    blend_weights: dict[str, str | None]
    normalization_factors: dict[str, str | None]
    coding_adjustment: str | None
    parameters: list[ParameterValue]
    files: dict[str, str]


class ReferenceResponse(Struct):
    supported_payment_years: list[int]
    payment_years: list[PaymentYearReference]


_REQUEST_DECODER = msgspec.json.Decoder(RiskScoreRequest)


def decode_request(body: bytes) -> RiskScoreRequest:
    """Strict decode from bytes; raises msgspec.DecodeError / msgspec.ValidationError.

    Nesting beyond `app.json_depth.MAX_JSON_DEPTH` is a `JsonTooDeep` (a DecodeError)
    before msgspec recurses into it (skipping an unknown field recurses).
    """
    check_json_depth(body)
    return _REQUEST_DECODER.decode(body)
