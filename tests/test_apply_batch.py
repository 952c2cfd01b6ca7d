"""The applier's batch helper without Spark: why a program failed is kept."""

from __future__ import annotations

import pandas as pd

from prox_spark.program import DEFAULT_CHUNK_POLICY
from prox_spark.stages.apply import apply_batch

DOC = "\n".join(f"Line {i} has enough words in it to be kept by the policy." for i in range(6))


def test_program_errors_are_stored_per_row():
    out = apply_batch(
        pd.Series([DOC, DOC, None]),
        pd.Series(["keep_doc()", "keep_doc()", None]),
        pd.Series([["remove_lines(line_start=0, line_end=0)"],
                   ["remove_lines(line_start=40, line_end=41)\nremove_lines"], None]),
        DEFAULT_CHUNK_POLICY, None,
    )
    assert list(out["status"]) == ["edited", "reverted", "dropped"]
    assert out["program_errors"][0] is None
    messages = out["program_errors"][1]
    assert len(messages) == 2
    assert "starts past the last line" in " ".join(messages)
    assert "names a function but holds no call" in " ".join(messages)
