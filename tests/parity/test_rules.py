"""The adjudication rules themselves: they must accept only the difference they predict."""

from __future__ import annotations

import pytest

from tests.parity.peers import BUCKETS
from tests.parity.rules import Ctx, explain, repeated_peer_bugs

pytest.importorskip("risk_compose")  # the CMS crosswalk and hierarchy tables ship in its wheel


def _row(total, hccs, **buckets):
    row = dict.fromkeys(BUCKETS, 0)
    row.update(buckets, total=total, hccs=hccs)
    return row


def _ctx(peer, model, codes, ours, theirs, *, segment="CNA", age=70, orec="0", sex="F"):
    diff = {f for f in ["total", *BUCKETS] if ours[f] != theirs[f]}
    if set(ours["hccs"]) != set(theirs["hccs"]):
        diff.add("hccs")
    member = {"MemberID": "X", "OREC": orec, "Gender": sex, "RAType": "CN"}
    return Ctx(2026, model, peer, member, age, sex, segment, codes, ours, theirs, diff)


# Z95.812 maps to V28 CC223 only; I50.21 to CC225 (CMS PY2026 crosswalk).
def test_heart_patch_rule_accepts_exactly_the_dropped_cc223():
    ours = _row(500, [], demographic=500)
    theirs = _row(1800, [223], demographic=500, disease=1300)
    assert explain(_ctx("risk_compose", "V28", ["Z95812"], ours, theirs)) == ["RC-V28-HEART-PATCH"]


def test_heart_patch_rule_rejects_an_extra_difference():
    ours = _row(900, [48], demographic=500, disease=400)  # an HCC the peer lacks, not a 223 child
    theirs = _row(1800, [223], demographic=500, disease=1300)
    assert explain(_ctx("risk_compose", "V28", ["Z95812"], ours, theirs)) == []
    ours = _row(600, [], demographic=600)  # a demographic difference is never the heart patch
    assert explain(_ctx("risk_compose", "V28", ["Z95812"], ours, theirs)) == []


def test_heart_patch_rule_does_not_apply_with_a_partner_cc():
    # CC223 with CC225 before hierarchies: CMS keeps 223 (and 223 then removes 225)
    ours = _row(500, [], demographic=500)
    theirs = _row(1800, [223], demographic=500, disease=1300)
    assert explain(_ctx("risk_compose", "V28", ["Z95812", "I5021"], ours, theirs)) == []


def test_agreeing_with_the_peer_on_a_lone_cc223_is_a_failure():
    same = _row(1800, [223], demographic=500, disease=1300)
    assert repeated_peer_bugs(_ctx("risk_compose", "V28", ["Z95812"], same, same)) == ["RC-V28-HEART-PATCH"]


def test_rules_are_peer_specific():
    ours = _row(500, [], demographic=500)
    theirs = _row(1800, [223], demographic=500, disease=1300)
    assert explain(_ctx("hccinfhir", "V28", ["Z95812"], ours, theirs)) == []


def test_ne_orec_rule_needs_a_zero_peer_score():
    ours = _row(1100, [], demographic_interaction=1100)
    ctx = _ctx("hccinfhir", "V24", [], ours, _row(0, []), segment="NE", age=66, orec="2")
    assert explain(ctx) == ["HI-NE-OREC-ESRD-BAND"]
    ctx = _ctx("hccinfhir", "V24", [], ours, _row(900, [], demographic_interaction=900),
               segment="NE", age=66, orec="2")
    assert explain(ctx) == []
    ctx = _ctx("hccinfhir", "V24", [], ours, _row(0, []), segment="NE", age=66, orec="1")
    assert explain(ctx) == []
