"""Each quality filter's keep/drop decision agrees with datatrove's on >= 99%
of a varied corpus; agreement per filter is printed (run with -s to see it)."""

from __future__ import annotations

import pytest
from tests.rules.corpus import corpus

from prox_spark.rules import c4_quality, fineweb_quality, gopher_quality, gopher_repetition

datatrove = pytest.importorskip("datatrove")


@pytest.fixture(scope="module")
def docs() -> list[str]:
    texts = corpus()
    assert len(texts) >= 1000
    return texts


def _datatrove_filters():
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {
        "gopher_quality": (GopherQualityFilter(), gopher_quality),
        "gopher_repetition": (GopherRepetitionFilter(), gopher_repetition),
        "c4_quality": (C4QualityFilter(), c4_quality),
        "fineweb_quality": (FineWebQualityFilter(), fineweb_quality),
    }


def _theirs(flt, text: str) -> tuple[bool, str | None]:
    from datatrove.data import Document

    try:
        out = flt.filter(Document(text=text, id="x"))
    except ZeroDivisionError:
        return False, "datatrove crashed (division by zero)"
    if isinstance(out, tuple):
        return bool(out[0]), out[1]
    return bool(out), None


@pytest.mark.parametrize("name", ["gopher_quality", "gopher_repetition", "c4_quality",
                                  "fineweb_quality"])
def test_agreement_with_datatrove(docs, name):
    theirs_filter, ours = _datatrove_filters()[name]
    agree = same_reason = 0
    disagreements = []
    for text in docs:
        keep_theirs, reason_theirs = _theirs(theirs_filter, text)
        result = ours(text)
        if keep_theirs == (not result.dropped):
            agree += 1
            same_reason += reason_theirs == result.reason
        else:
            disagreements.append((reason_theirs, result.reason, text[:80]))
    share = agree / len(docs)
    print(f"\n{name}: keep/drop agreement {agree}/{len(docs)} = {share:.2%}; "
          f"same reason code {same_reason}/{agree}")
    for d in disagreements[:5]:
        print("   datatrove:", d[0], "| ours:", d[1], "|", repr(d[2]))
    assert share >= 0.99


def test_known_answer_examples_get_the_same_codes_from_datatrove():
    from datatrove.pipeline.filters import FineWebQualityFilter
    from tests.rules.test_reason_codes import FINEWEB_CASES, GOPHER_CASES, REPETITION_CASES

    filters = _datatrove_filters()
    for cases, name in ((GOPHER_CASES, "gopher_quality"),
                        (REPETITION_CASES, "gopher_repetition")):
        for text, code in cases:
            assert _theirs(filters[name][0], text) == (False, code)
    for text, code in FINEWEB_CASES:
        flt = FineWebQualityFilter(short_line_thr=10.0) if code == "list_ratio" else \
            filters["fineweb_quality"][0]
        assert _theirs(flt, text) == (False, code)
