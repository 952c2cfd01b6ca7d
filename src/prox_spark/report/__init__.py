"""The HTML run report: `page` (gather a run's figures and samples from the
tables, render one self-contained page, write it), `svg` (its bar charts) and
`diff` (a document's text with what its programs did marked).

`prox_spark.report` was one module before it became this package, so the
public names of `page` stay importable from here.
"""

from __future__ import annotations

from prox_spark.report.page import (
    FAILED,
    FIGURES,
    MODEL_STAGES,
    NoRunError,
    ReportData,
    gather,
    render,
    report_path,
    versions,
    write_report,
)

__all__ = [
    "FAILED",
    "FIGURES",
    "MODEL_STAGES",
    "NoRunError",
    "ReportData",
    "gather",
    "render",
    "report_path",
    "versions",
    "write_report",
]
