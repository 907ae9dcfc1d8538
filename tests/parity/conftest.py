"""Session caches for the parity tests: each population, peer run and our run once."""

from __future__ import annotations

from functools import cache

import pytest

from tests.parity import population as popmod

# (payment_year, model, peer) -> counts, filled by test_parity, printed at the end.
SUMMARY: dict[tuple[int, str, str], dict] = {}

CMS_N = 5000
ESRD_N = 2200


@cache
def cms_population(payment_year: int) -> popmod.Population:
    return popmod.generate_cms_hcc(payment_year, n=CMS_N)


@cache
def esrd_population(payment_year: int = 2026) -> popmod.Population:
    return popmod.generate_esrd(payment_year, n=ESRD_N)


@cache
def hccinfhir_rows(payment_year: int):
    from tests.parity.peers import run_hccinfhir

    models = ["V28", "V24"] if payment_year in (2024, 2025) else ["V28"]
    return run_hccinfhir(cms_population(payment_year), models)


@cache
def hccinfhir_esrd_rows(payment_year: int):
    from tests.parity.peers import run_hccinfhir_esrd

    return run_hccinfhir_esrd(esrd_population(payment_year))


@cache
def risk_compose_v28_rows():
    from tests.parity.peers import run_risk_compose_v28

    return run_risk_compose_v28(cms_population(2026))


@cache
def risk_compose_esrd_rows():
    from tests.parity.peers import run_risk_compose_esrd

    return run_risk_compose_esrd(esrd_population(2026))


@cache
def _store():
    from tests.parity.ours import find_store

    return find_store()


@cache
def our_rows(kind: str, payment_year: int):
    from tests.parity.ours import run_ours

    pop = cms_population(payment_year) if kind == "cms_hcc" else esrd_population(payment_year)
    return run_ours(pop, _store())


def require_engine():
    from tests.parity.ours import find_score_raw

    if find_score_raw() is None:
        pytest.skip("engine.score_raw is not available yet")
    if _store() is None:
        pytest.skip("reference.store.ReferenceStore is not available yet")


def pytest_terminal_summary(terminalreporter):
    if not SUMMARY:
        return
    tr = terminalreporter
    tr.section("peer parity (members: agree / adjudicated / unexplained)")
    for (py, model, peer), c in sorted(SUMMARY.items()):
        rules = ", ".join(f"{k} {v}" for k, v in sorted(c["rules"].items())) or "-"
        tr.write_line(
            f"PY{py} {model:8s} vs {peer:12s}: {c['members']} members, {c['agree']} agree, "
            f"{c['adjudicated']} adjudicated ({rules}), {c['unexplained']} unexplained"
        )
