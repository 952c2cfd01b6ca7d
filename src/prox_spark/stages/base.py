"""The stage contract: a callable that maps a DataFrame to a DataFrame."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Columns the stages read and write.
ID = "id"
TEXT = "text"
DOC_PROGRAM = "doc_program"
DOC_ERROR = "doc_error"
DOC_STATUS = "doc_status"
CHUNK_PROGRAMS = "chunk_programs"
CHUNK_ERROR = "chunk_error"
REFINED_TEXT = "refined_text"
RESULT_COLUMNS = (
    "status", "errors", "program_errors", "lines_removed", "normalizations",
    "words_before", "words_after", "tokens_before", "tokens_after",
)


class Stage:
    """Base class: subclasses implement `transform`; `df.transform(stage)` works.

    Like `pyspark.ml.Transformer._transform`, without the Params machinery.
    """

    def transform(self, df: DataFrame) -> DataFrame:
        raise NotImplementedError

    def __call__(self, df: DataFrame) -> DataFrame:
        return self.transform(df)
