"""The stage contract (`Stage`): one declaration per stage, read by the
registry, validation and fingerprints; and `status_expr`, the status rule
the rule stages share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from prox_spark.errors import MissingColumnError, StageContractError
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


@dataclass(frozen=True)
class BuildContext:
    """What a stage may need besides its YAML parameters, filled from the
    run: the model sections (objects with `engine`, `max_prompt_tokens`,
    `max_new_tokens`, `max_doc_chars`, `resources`), the chunk policy, the
    rows already refined (for dedup) and a tokenizer to count the tokens
    rule edits remove."""

    doc_model: Any = None
    chunk_model: Any = None
    policy: Any = None
    existing: Any = None
    tokenizer: str | None = None


class Stage:
    """The stage contract: a DataFrame -> DataFrame step declared in one place.

    A stage is a class (a dataclass for the built-ins) whose fields are its
    parameters, each with type, default, range and one-line doc
    (`Annotated[float, Range(0, 1), Doc("...")] = 0.8`, see `params`), and
    whose class attributes declare the rest:

    - `stage_name`: its YAML name (a user's stage is named by its import path);
    - `needs` / `adds`: the columns it reads and the columns it adds, both
      checked on every `df.transform(stage)` (`MissingColumnError`,
      `StageContractError`), as `pyspark.ml`'s `transformSchema` checks;
    - `config_section`: the YAML section a model stage takes its settings
      from (such a stage takes no parameters of its own);
    - `output_version`: what a release bumps when the stage's output changes
      for the same input and settings (part of its fingerprint; the package
      version is not);
    - `context_fields`: fields filled from the run (`BuildContext`), not YAML;
    - `source_columns`: parameters whose value names an extra source column.

    The registry, validation, fingerprints and the README's parameter list
    read this declaration (`stages.registry`). Subclasses implement
    `_transform`; `transform` (and `df.transform(stage)`) wraps it with the
    column checks, as `pyspark.ml.Transformer.transform` wraps `_transform`.

    Example::

        @dataclass
        class ShortDocs(Stage):
            adds: ClassVar[tuple[str, ...]] = ("is_short",)
            max_words: Annotated[int, Range(1), Doc("most words of a short doc")] = 50

            def _transform(self, df):
                return df.withColumn("is_short", F.size(F.split("text", " ")) <= self.max_words)
    """

    stage_name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = (ID, TEXT)
    adds: ClassVar[tuple[str, ...]] = ()
    config_section: ClassVar[str | None] = None
    output_version: ClassVar[int] = 1
    context_fields: ClassVar[tuple[str, ...]] = ()
    source_columns: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def build(cls, params: dict[str, Any], context: BuildContext) -> Stage:
        """The stage from validated YAML parameters and the run's context."""
        extra = {name: getattr(context, name) for name in cls.context_fields
                 if hasattr(context, name)}
        return cls(**params, **extra)

    def require(self, df: DataFrame, *more: str | None) -> None:
        """Raise `MissingColumnError` naming the first needed column `df` lacks."""
        for column in (*self.needs, *[m for m in more if m]):
            if column not in df.columns:
                raise MissingColumnError(
                    f"{type(self).__name__} needs a column {column!r}; the data has "
                    f"{', '.join(df.columns) or '(no columns)'}")

    def transform(self, df: DataFrame) -> DataFrame:
        """`df` through the stage, its declared columns checked before and after."""
        self.require(df)
        out = self._transform(df)
        missing = [c for c in self.adds if c not in out.columns]
        if missing:
            raise StageContractError(
                f"{type(self).__name__} declares that it adds {', '.join(missing)}, but its "
                f"output has no such column")
        return out

    def _transform(self, df: DataFrame) -> DataFrame:
        raise NotImplementedError

    def __call__(self, df: DataFrame) -> DataFrame:
        return self.transform(df)
