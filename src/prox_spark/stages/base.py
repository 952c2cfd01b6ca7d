"""The stage contract: a callable that maps a DataFrame to a DataFrame."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prox_spark.errors import MissingColumnError
from prox_spark.program.results import DROPPED, EDITED, KEPT
from prox_spark.schema import ID, TEXT

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame



def status_expr(dropped: Column, changed: Column, prior: Column | None = None) -> Column:
    """`decide_status` as a Spark expression, for stages that edit after the
    interpreter or before it: a drop wins; a change turns a kept row into
    an edited one; otherwise the row keeps its `prior` status (kept if none)."""
    from pyspark.sql import functions as F

    if prior is None:
        return F.when(dropped, F.lit(DROPPED)).when(changed, F.lit(EDITED)).otherwise(KEPT)
    return (F.when(dropped, F.lit(DROPPED))
            .when(changed & (prior == F.lit(KEPT)), F.lit(EDITED)).otherwise(prior))


class Stage:
    """Base class: subclasses implement `transform`; `df.transform(stage)` works.

    Like `pyspark.ml.Transformer._transform`, without the Params machinery.
    `needs` names the columns a stage reads; `require` checks them (and any
    more, such as a `priority` column) before a UDF is built, as
    `pyspark.ml`'s `transformSchema` does.
    """

    needs: tuple[str, ...] = (ID, TEXT)

    def require(self, df: DataFrame, *more: str | None) -> None:
        """Raise `MissingColumnError` naming the first needed column `df` lacks."""
        for column in (*self.needs, *[m for m in more if m]):
            if column not in df.columns:
                raise MissingColumnError(
                    f"{type(self).__name__} needs a column {column!r}; the data has "
                    f"{', '.join(df.columns) or '(no columns)'}")

    def transform(self, df: DataFrame) -> DataFrame:
        raise NotImplementedError

    def __call__(self, df: DataFrame) -> DataFrame:
        return self.transform(df)
