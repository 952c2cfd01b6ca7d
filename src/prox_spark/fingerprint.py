"""What decides a refined row, as short hashes: one per stage, and one for
the row (all stages plus the interpreter's policy).

A stage's fingerprint covers what its declaration (`stages.base.Stage`, read
through `stages.registry`) says decides its output: its YAML name, its
`output_version` (bumped by a release only when the stage's results change),
its effective parameters and, for a model stage, its config section's model,
the engine settings that change its output and the prompt format. The
package version is not part of any fingerprint: upgrading prox-spark to a
release that changed no output version re-runs nothing.

    >>> from prox_spark.config import parse_config
    >>> raw = {"input": {"path": "in.jsonl"}, "output": {"path": "out"},
    ...        "stages": ["gopher_quality"]}
    >>> sorted(stage_fingerprints(parse_config(raw, check_models=False, check_paths=False)))
    ['gopher_quality']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from prox_spark.config import ModelConfig, PipelineConfig
from prox_spark.stages.apply import OUTPUT_VERSION as INTERPRETER_OUTPUT_VERSION
from prox_spark.stages.registry import MODEL_STAGES, stage_spec

PROMPT_FORMAT_VERSION = "llama2-chat/prox-v1"
# The key of the interpreter's own entry in `stage_fingerprints`: the chunk
# policy and the interpreter's output version (no model).
APPLY = "apply"

__all__ = ["APPLY", "MODEL_STAGES", "PROMPT_FORMAT_VERSION", "fingerprint",
           "stage_fingerprints"]


def _hash(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _model_part(model: ModelConfig | None, *, chunk: bool) -> Any:
    # Only the chunk model splits documents, so only it has max_doc_chars.
    if model is None:
        return None
    e = model.engine
    return [PROMPT_FORMAT_VERSION, e.model, e.tokenizer_name, e.dtype, e.max_model_len, e.seed,
            model.max_new_tokens, model.max_prompt_tokens,
            model.max_doc_chars if chunk else None]


def stage_fingerprints(config: PipelineConfig) -> dict[str, str]:
    """Stage name -> a 16-hex-digit hash of what decides that stage's output
    for a given input text (see the module docstring). Includes `APPLY`
    (the chunk policy) when `prox_chunk` runs. A stage listed twice gets
    `name#2`."""
    out: dict[str, str] = {}
    for item in config.stages:
        spec = stage_spec(item.name)
        part = [item.name, spec.output_version, spec.effective(item.params)]
        if spec.model is not None:
            part.append(_model_part(getattr(config, spec.model),
                                    chunk=spec.model == "chunk_model"))
        key, n = item.name, 1
        while key in out:
            n += 1
            key = f"{item.name}#{n}"
        out[key] = _hash(part)
    if "prox_chunk" in out:
        out[APPLY] = _hash([INTERPRETER_OUTPUT_VERSION, asdict(config.policy)])
    return out


def fingerprint(config: PipelineConfig) -> str:
    """A short hash of everything that decides a row's result, as it takes
    effect: the configured stages in order, each by its fingerprint
    (`stage_fingerprints`). A row stored with this fingerprint and the same
    content hash is not refined again."""
    return _hash(list(stage_fingerprints(config).items()))
