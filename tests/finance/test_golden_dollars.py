"""Golden dollars: members priced by hand with `decimal`, cents exact.

Active scores are the seed's (`app/examples/seed_response.json`: M00912
0.517435, M00913 0.549109); the money rule is `engine.finance`: monthly =
round-half-away-from-zero at the cent of active x rate, payment = monthly x months.
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings, SettingsError
from tests.api.conftest import SEED_REQUEST

M00912_ACTIVE = Decimal("0.517435")
M00913_ACTIVE = Decimal("0.549109")
CENT = Decimal("0.01")
FINANCE_KEYS = {"Enrollment_Months", "Monthly_Rate", "Rate_Source", "MA_Payment_Monthly",
                "MA_Payment", "MA_Payment_Detail"}


def expected(active: Decimal, rate: str, months: int) -> tuple[Decimal, Decimal]:
    monthly = (active * Decimal(rate)).quantize(CENT, rounding=ROUND_HALF_UP)  # half away from 0
    return monthly, monthly * months


def dollars(value: float) -> Decimal:
    """The wire float as the decimal it prints as (two decimals, exact)."""
    return Decimal(repr(value)).quantize(CENT)


def active_rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["Member_Id"]: r for r in body["results"] if r["Active_Score"] == 1}


def post(client, request: dict[str, Any], query: str = "") -> dict[str, Any]:
    response = client.post(f"/v1/risk-scores{query}", json=request)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def priced_request() -> dict[str, Any]:
    request = copy.deepcopy(SEED_REQUEST)
    # partial year, member rate: 6 months at $3,000.00 (0.517435 x 3000 = 1552.305: a half cent)
    request["memberships"][0].update(Enrollment_Months=6, Monthly_Rate=3000)
    # county rate, enrollment span: 2025-03-15..2025-08-31 is April-August, 5 months
    request["memberships"][1].update(County="01001", Enrollment_Start="2025-03-15",
                                     Enrollment_End="2025-08-31")
    request["rates"] = [{"county": "01001", "monthly_rate": "1100.50", "source": "plan bid 2025"}]
    return request


def test_partial_year_member_rate_cents_exact(client, priced_request) -> None:
    row = active_rows(post(client, priced_request))["M00912"]
    monthly, payment = expected(M00912_ACTIVE, "3000.00", 6)
    assert monthly == Decimal("1552.31")  # half away from zero, not to even (1552.30)
    assert (row["Enrollment_Months"], row["Monthly_Rate"], row["Rate_Source"]) == (
        6, 3000.0, "Monthly_Rate")
    assert dollars(row["MA_Payment_Monthly"]) == monthly
    assert dollars(row["MA_Payment"]) == payment == Decimal("9313.86")


def test_county_rate_and_enrollment_span(client, priced_request) -> None:
    row = active_rows(post(client, priced_request))["M00913"]
    monthly, payment = expected(M00913_ACTIVE, "1100.50", 5)
    assert (row["Enrollment_Months"], row["Rate_Source"]) == (5, "plan bid 2025")
    assert dollars(row["MA_Payment_Monthly"]) == monthly == Decimal("604.29")
    assert dollars(row["MA_Payment"]) == payment == Decimal("3021.45")


def test_member_rate_overrides_county_rate(client, priced_request) -> None:
    priced_request["memberships"][1]["Monthly_Rate"] = "1234.57"
    row = active_rows(post(client, priced_request))["M00913"]
    monthly, payment = expected(M00913_ACTIVE, "1234.57", 5)
    assert row["Rate_Source"] == "Monthly_Rate" and row["Monthly_Rate"] == 1234.57
    assert dollars(row["MA_Payment_Monthly"]) == monthly == Decimal("677.91")
    assert dollars(row["MA_Payment"]) == payment


def test_detail_itemizes_buckets_and_hcc_lines(client, priced_request) -> None:
    body = post(client, priced_request, "?detail=true")
    row = active_rows(body)["M00912"]
    lines = {(item["Section"], item.get("Model"), item["Code"]): item
             for item in row["MA_Payment_Detail"]}
    # buckets of the seed's active row: demographic 0.233416, disease 0.28402
    for code, score in (("RAF_Demographic", "0.233416"), ("RAF_Disease", "0.28402")):
        item = lines[("bucket", None, code)]
        assert Decimal(repr(item["RAF_Score"])) == Decimal(score)
        assert dollars(item["MA_Payment"]) == expected(Decimal(score), "3000.00", 6)[1]
    # lines: each model's HCC through its normalization, coding adjustment and weight
    # (reference/data/parameters.csv PY2025: V28 1.045 x 0.67, V24 1.153 x 0.33, coding 0.059)
    for model, hcc, coefficient, factor, weight in (
        ("V28", "HCC137", "0.348", "1.045", "0.67"), ("V24", "HCC55", "0.275", "1.153", "0.33")
    ):
        adjusted = (Decimal(coefficient) / Decimal(factor) * (1 - Decimal("0.059"))).quantize(
            Decimal("0.000001"), rounding=ROUND_HALF_UP)
        score = (adjusted * Decimal(weight)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        item = lines[("hcc", model, hcc)]
        assert Decimal(repr(item["RAF_Score"])) == score
        assert dollars(item["MA_Payment"]) == expected(score, "3000.00", 6)[1]
    # the raw rows and the other fields are untouched by pricing
    raw = [r for r in body["results"] if r["Active_Score"] == 0]
    assert all(not FINANCE_KEYS & r.keys() for r in raw)


def test_seed_request_has_no_finance_fields(client) -> None:
    body = post(client, copy.deepcopy(SEED_REQUEST), "?detail=true")
    assert len(body["results"]) == 6
    assert all(not FINANCE_KEYS & r.keys() for r in body["results"])
    assert "summary" not in body


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"Enrollment_Months": 13}, "Enrollment_Months", "from 0 to 12"),
        ({"Enrollment_Months": "six"}, "Enrollment_Months", "whole number"),
        ({"Enrollment_Start": "2025-02-30"}, "Enrollment_Start", "not a date"),
        ({"Enrollment_Start": "2025-06-01", "Enrollment_End": "2025-05-31"}, "Enrollment_End",
         "before Enrollment_Start"),
        ({"Enrollment_Months": 12, "Enrollment_Start": "2025-07-01"}, "Enrollment_Months",
         "disagrees"),
        ({"County": "1001"}, "County", "5-digit"),
        ({"Monthly_Rate": "-5"}, "Monthly_Rate", "dollar amount"),
        ({"Monthly_Rate": "12.345"}, "Monthly_Rate", "two decimals"),
        ({"Monthly_Rate": "$1,000"}, "Monthly_Rate", "dollar amount"),
        ({"Monthly_Rate": 1e9}, "Monthly_Rate", "100000"),
    ],
)
def test_bad_finance_values_are_member_errors(client, fields, field, fragment) -> None:
    request = copy.deepcopy(SEED_REQUEST)
    request["memberships"][0].update(fields)
    body = post(client, request)
    assert body["status"] == "partial"
    assert [(e["MemberID"], e["field"]) for e in body["errors"]] == [("M00912", field)]
    assert fragment in body["errors"][0]["message"]
    assert [r["Member_Id"] for r in body["results"]] == ["M00913"] * 3


def test_bad_rate_table_is_a_400_naming_the_row(client) -> None:
    request = copy.deepcopy(SEED_REQUEST)
    request["memberships"][0]["County"] = "01001"
    request["rates"] = [{"county": "01001", "monthly_rate": "900"},
                        {"county": "01001", "monthly_rate": "12.345"}]
    response = client.post("/v1/risk-scores", json=request)
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["errors"]]
    assert "$.rates[1].monthly_rate" in fields and "$.rates[1].county" in fields  # and repeated


def test_county_without_rate_is_scored_and_warned(client) -> None:
    request = copy.deepcopy(SEED_REQUEST)
    request["memberships"][0]["County"] = "99999"
    row = active_rows(post(client, request))["M00912"]
    assert "MA_Payment" not in row
    assert any("County 99999 has no rate" in w for w in row["Warnings"])


def test_cache_keys_include_the_rates(client, priced_request) -> None:
    first = active_rows(post(client, priced_request))["M00913"]
    priced_request["rates"][0]["monthly_rate"] = "1200.00"
    second = post(client, priced_request)
    assert second["cache"]["hits"] == 0
    assert active_rows(second)["M00913"]["MA_Payment"] != first["MA_Payment"]
    third = post(client, priced_request)
    assert third["cache"]["hits"] == 2 and active_rows(third) == active_rows(second)


def test_configured_rates_file(make_client, tmp_path: Path) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text("payment_year,county,monthly_rate,source\n2025,01001,1000.00,ratebook\n")
    client = make_client(Settings(rates_path=str(rates)))
    request = copy.deepcopy(SEED_REQUEST)
    request["memberships"][1]["County"] = "01001"
    row = active_rows(post(client, request))["M00913"]
    _monthly, payment = expected(M00913_ACTIVE, "1000.00", 12)
    assert row["Rate_Source"] == "ratebook" and dollars(row["MA_Payment"]) == payment
    # the request's own table wins over the configured one
    request["rates"] = [{"county": "01001", "monthly_rate": "1100.50"}]
    row = active_rows(post(client, request))["M00913"]
    assert dollars(row["MA_Payment"]) == expected(M00913_ACTIVE, "1100.50", 12)[1]


def test_bad_configured_rates_stop_the_start(make_client, tmp_path: Path) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text("payment_year,county,monthly_rate\n2025,01001,lots\n")
    with pytest.raises(SettingsError, match="line 2: monthly_rate lots"):
        make_client(Settings(rates_path=str(rates)))


def test_a_rate_row_without_source_names_the_file_not_its_path(make_client, tmp_path) -> None:
    rates = tmp_path / "plan-rates.csv"
    rates.write_text("payment_year,county,monthly_rate\n2025,01001,1000.00\n")
    client = make_client(Settings(rates_path=str(rates)))
    request = copy.deepcopy(SEED_REQUEST)
    request["memberships"][1]["County"] = "01001"
    row = active_rows(post(client, request))["M00913"]
    assert row["Rate_Source"] == "plan-rates.csv"


def test_rows_of_one_member_with_different_finance_values_are_one_error_per_row(client) -> None:
    request = copy.deepcopy(SEED_REQUEST)
    twin = {**request["memberships"][0], "Monthly_Rate": "900.00"}
    request["memberships"][0]["Monthly_Rate"] = "1000.00"
    request["memberships"].append(twin)
    body = post(client, request)
    assert [(e["MemberID"], e["field"]) for e in body["errors"]] == [("M00912", "MemberID")] * 2
    assert all("different Monthly_Rate" in e["message"] for e in body["errors"])
    assert {r["Member_Id"] for r in body["results"]} == {"M00913"}
    # the same values twice are still one member, the repeat named in errors (issue 12)
    request["memberships"][-1]["Monthly_Rate"] = "1000.00"
    body = post(client, request)
    assert [e["message"].split(" (")[0] for e in body["errors"]] == [
        "identical duplicate of memberships[0]"
    ]
    assert active_rows(body)["M00912"]["Monthly_Rate"] == 1000.0
