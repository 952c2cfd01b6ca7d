"""Rewrite the README's stage parameter and run settings tables from the
declarations (the stages' parameters; the config sections' fields).

    python scripts/stage_table.py          # rewrite README.md in place
    python scripts/stage_table.py --check  # exit 1 if README.md is out of date

`tests/test_stage_registry.py` loads this file to check that the README's
tables are the ones it renders.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from prox_spark.config.keys import LIMIT_KEYS, SCALARS, SPARK_SETTINGS, documented
from prox_spark.config.model import InputConfig, ModelConfig, PipelineConfig, ReportConfig, hints
from prox_spark.generation.engine import CHUNK_MAX_NEW_TOKENS, DOC_MAX_NEW_TOKENS, EngineConfig
from prox_spark.generation.prompts import CHUNK_MAX_TOKENS, DOC_MAX_TOKENS
from prox_spark.params import describe_hint, doc_of
from prox_spark.program import ChunkPolicy
from prox_spark.resources import TaskResources
from prox_spark.stages.registry import stage_names, stage_spec

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_START = "<!-- stage parameters: written by scripts/stage_table.py; do not edit -->"
TABLE_END = "<!-- end of stage parameters -->"
SETTINGS_START = "<!-- run settings: written by scripts/stage_table.py; do not edit -->"
SETTINGS_END = "<!-- end of run settings -->"


def parameter_table() -> str:
    """Every built-in stage's parameters as a Markdown table (the README's
    list, between `TABLE_START` and `TABLE_END`), read from the declarations."""
    rows = [TABLE_START, "", "| stage | parameter | type | default | range | meaning |",
            "|---|---|---|---|---|---|"]
    for name in stage_names():
        spec = stage_spec(name)
        if spec.model is not None:
            rows.append(f"| `{name}` | (its `{spec.model}` section) | | | | {spec.doc} |")
        for p in spec.params:
            kind, bounds = describe_hint(p.hint)
            default = json.dumps(p.default)
            rows.append(f"| `{name}` | `{p.name}` | {kind} | `{default}` | {bounds} | "
                        f"{p.doc} |")
    return "\n".join([*rows, "", TABLE_END])


# Defaults that depend on the model section (doc, chunk).
_PER_MODEL = {"max_new_tokens": (DOC_MAX_NEW_TOKENS, CHUNK_MAX_NEW_TOKENS),
              "max_prompt_tokens": (DOC_MAX_TOKENS, CHUNK_MAX_TOKENS)}


def _setting_rows(prefix: str, cls: type, names: tuple[str, ...] | None = None) -> list[str]:
    """One row per declared field of `cls` (all of them, or `names`)."""
    declared = hints(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    rows = []
    for name in names or tuple(defaults):
        kind, bounds = describe_hint(declared[name])
        if name in _PER_MODEL:
            default = "`{}` (doc), `{}` (chunk)".format(*_PER_MODEL[name])
        elif name == "model" or defaults[name] is dataclasses.MISSING:
            default = "required"
        else:
            default = f"`{json.dumps(defaults[name])}`"
        rows.append(f"| `{prefix}{name}` | {kind} | {default} | {bounds} | "
                    f"{doc_of(declared[name])} |")
    return rows


def settings_table() -> str:
    """The YAML settings declared with a type, range and doc (top level,
    `spark`, `input`, `report`, `policy`, the model sections) as a Markdown
    table: the README's list between `SETTINGS_START` and `SETTINGS_END`,
    read from the same declarations `parse_config` checks against."""
    rows = [SETTINGS_START, "", "| setting | type | default | range | meaning |",
            "|---|---|---|---|---|",
            *_setting_rows("", PipelineConfig, SCALARS),
            *_setting_rows("spark.", PipelineConfig, SPARK_SETTINGS),
            *_setting_rows("input.", InputConfig, documented(InputConfig)),
            *_setting_rows("report.", ReportConfig),
            *_setting_rows("policy.", ChunkPolicy),
            *_setting_rows("<model>.", ModelConfig, LIMIT_KEYS),
            *_setting_rows("<model>.", EngineConfig),
            *_setting_rows("<model>.resources.", TaskResources)]
    return "\n".join([*rows, "", SETTINGS_END])


def main(argv: list[str]) -> int:
    """Rewrite README.md's tables (`--check`: only say whether they are current)."""
    text = README.read_text()
    new = text
    for first, last, table in ((TABLE_START, TABLE_END, parameter_table()),
                               (SETTINGS_START, SETTINGS_END, settings_table())):
        start, end = new.index(first), new.index(last) + len(last)
        new = new[:start] + table + new[end:]
    if "--check" in argv:
        if new != text:
            print("README.md's stage parameter or run settings table is out of date: "
                  "run python scripts/stage_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
