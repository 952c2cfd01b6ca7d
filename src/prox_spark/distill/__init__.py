"""Make your own refiner: teacher labels, checked programs, fine-tuning, evaluation.

The other half of ProX (issue 16): a teacher labels a sample of documents, every
label becomes a program that is checked by executing it, a small model is
fine-tuned on the survivors, and the student is scored against the teacher.
"""

from __future__ import annotations

from prox_spark.distill.annotate import annotate
from prox_spark.distill.jobs import EvaluateResult, evaluate, train
from prox_spark.distill.summary import AnnotateSummary

__all__ = ["AnnotateSummary", "EvaluateResult", "annotate", "evaluate", "train"]
