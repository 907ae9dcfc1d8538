"""Per-member cache (`app.cache`, `app.service`): hits, misses, identity, one engine call."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.settings import Settings
from engine.run import score_batch as real_score_batch

URL = "/v1/risk-scores"


class CountingScorer:
    """The real `score_batch`, recording which members each call received."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, memberships, diagnoses, payment_year, store, detail=False) -> Any:
        self.calls.append(memberships["MemberID"].to_list())
        return real_score_batch(memberships, diagnoses, payment_year, store, detail=detail)


@pytest.fixture
def scorer() -> CountingScorer:
    return CountingScorer()


@pytest.fixture
def cached_client(make_client, scorer):
    return make_client(score_batch=scorer)


def without_timestamp(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("timestamp", "cache_status", "cache")}


def test_second_identical_request_is_a_cache_hit_with_the_same_answer(
    cached_client, scorer, seed_request
) -> None:
    first = cached_client.post(URL, json=seed_request).json()
    second = cached_client.post(URL, json=seed_request).json()
    assert first["cache_status"] == "Cache miss"
    assert second["cache_status"] == "Cache hit"
    assert second["cache"] == {"hits": 2, "misses": 0}
    assert second["results"] == first["results"]
    assert second["errors"] == first["errors"]
    assert scorer.calls == [["M00912", "M00913"]]  # no engine call for the second


def test_cached_answer_has_the_same_diagnoses_summary(cached_client, seed_request) -> None:
    first = cached_client.post(URL, json=seed_request).json()
    second = cached_client.post(URL, json=seed_request).json()
    assert without_timestamp(second) == without_timestamp(first)


def test_one_new_member_is_one_hit_and_one_miss(cached_client, scorer, seed_request) -> None:
    one = copy.deepcopy(seed_request)
    one["memberships"] = one["memberships"][:1]
    cached_client.post(URL, json=one)
    seed_request["memberships"][1]["MemberID"] = "M09999"  # new member
    body = cached_client.post(URL, json=seed_request).json()
    assert body["cache"] == {"hits": 1, "misses": 1}
    assert body["cache_status"] == "Cache miss"
    assert scorer.calls[-1] == ["M09999"]  # only the miss went to the engine, in one call
    assert [r["Member_Id"] for r in body["results"]] == ["M00912"] * 3 + ["M09999"] * 3


def test_cached_and_fresh_answers_are_identical(make_client, seed_request) -> None:
    warm = make_client()
    warm.post(URL, json=seed_request)
    cached = warm.post(URL, json=seed_request).json()
    fresh = make_client().post(URL, json=seed_request).json()
    assert cached["cache_status"] == "Cache hit" and fresh["cache_status"] == "Cache miss"
    assert cached["results"] == fresh["results"]


def test_a_changed_diagnosis_is_a_miss(cached_client, seed_request) -> None:
    cached_client.post(URL, json=seed_request)
    seed_request["diagnoses"][1]["DxCode"] = "E119"
    body = cached_client.post(URL, json=seed_request).json()
    assert body["cache"] == {"hits": 1, "misses": 1}  # M00913 unchanged, M00912 re-scored


def test_diagnosis_order_does_not_matter(cached_client, seed_request) -> None:
    cached_client.post(URL, json=seed_request)
    seed_request["diagnoses"].reverse()
    assert cached_client.post(URL, json=seed_request).json()["cache"] == {"hits": 2, "misses": 0}


def test_detail_and_year_are_part_of_the_key(cached_client, seed_request) -> None:
    cached_client.post(URL, json=seed_request)
    assert cached_client.post(URL + "?detail=true", json=seed_request).json()["cache"]["hits"] == 0
    seed_request["payment_year"] = 2024
    assert cached_client.post(URL, json=seed_request).json()["cache"]["hits"] == 0


def test_member_errors_are_cached_too(cached_client, scorer, seed_request) -> None:
    seed_request["memberships"][0]["Gender"] = "X"
    first = cached_client.post(URL, json=seed_request).json()
    second = cached_client.post(URL, json=seed_request).json()
    assert second["cache_status"] == "Cache hit"
    assert second["errors"] == first["errors"] and second["status"] == "partial"
    assert len(scorer.calls) == 1


def test_repeated_member_ids_bypass_the_cache(cached_client, scorer, seed_request) -> None:
    seed_request["memberships"].append(dict(seed_request["memberships"][0]))  # identical repeat
    first = cached_client.post(URL, json=seed_request).json()
    second = cached_client.post(URL, json=seed_request).json()
    assert second["cache"] == {"hits": 1, "misses": 2}
    assert second["results"] == first["results"]
    assert [r["Member_Id"] for r in second["results"]].count("M00912") == 3  # scored once


def test_cache_size_zero_disables_caching(make_client, seed_request) -> None:
    client = make_client(Settings(cache_size=0))
    client.post(URL, json=seed_request)
    assert client.post(URL, json=seed_request).json()["cache"] == {"hits": 0, "misses": 2}


def test_cache_is_bounded(make_client, seed_request) -> None:
    client = make_client(Settings(cache_size=1))
    client.post(URL, json=seed_request)
    body = client.post(URL, json=seed_request).json()
    assert body["cache"]["hits"] <= 1
