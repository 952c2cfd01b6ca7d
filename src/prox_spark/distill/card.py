"""The model card of a trained refiner: ``README.md`` for people and
``prox_card.json`` (the same facts) for programs, written by `train` and
given its evaluation section by `evaluate`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"
CARD_JSON = "prox_card.json"


def write_model_card(model_dir: str | Path, info: Mapping[str, Any]) -> Path:
    """Write the model card: ``README.md`` for people, ``prox_card.json`` (the
    same facts) for programs. Returns the README's path.

    Known keys of `info`: teacher, sft_table, sft_version (or
    sft_table_version), tasks, base_model, architecture, train_examples,
    examples, skipped_examples, steps, processes, train_tokens,
    losses ([step, loss] pairs, shown as a table of at most 12 rows),
    resumed_from, config, evaluation (task -> metric -> value, see
    `update_model_card`). Other keys are listed as they are.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    card = {k: _plain(v) for k, v in info.items()}
    (model_dir / CARD_JSON).write_text(
        json.dumps(card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    readme = model_dir / CARD_FILE
    readme.write_text(_render_card(model_dir, card), encoding="utf-8")
    return readme


def update_model_card(model_dir: str | Path, evaluation: Mapping[str, Any]) -> Path:
    """Add (or replace) the evaluation section of an existing model card.

    `evaluation`: what `EvaluateResult.figures` returns (``tables``: title,
    columns, rows with None for "n/a"; ``verdict``; ``warnings``), rendered
    as those tables, or any other mapping such as ``{"doc": {"f1": 0.83},
    "examples": 12}``, listed metric by metric; dataclasses are read as
    mappings. The other facts of ``prox_card.json`` are kept.
    """
    path = Path(model_dir) / CARD_JSON
    card = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    card["evaluation"] = _plain(evaluation)
    return write_model_card(model_dir, card)


def _plain(value: Any) -> Any:
    """`value` as JSON-ready mappings and lists (dataclasses read as mappings)."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _fmt(value: Any) -> str:
    """`value` as one Markdown table cell."""
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


_SHOWN = ("teacher", "sft_table", "sft_version", "sft_table_version", "tasks", "base_model",
          "train_examples", "examples", "skipped_examples", "steps", "processes", "train_tokens",
          "resumed_from")
_SECTIONS = ("architecture", "config", "losses", "evaluation")


def _render_card(model_dir: Path, card: Mapping[str, Any]) -> str:
    """The README: the card's facts, architecture, losses, evaluation and use."""
    rows = []
    for key in _SHOWN:
        if key in card:
            value = card[key]
            if key == "base_model" and value is None:
                value = "none (trained from scratch)"
            rows.append((key.replace("_", " "), value))
    rows += [(k.replace("_", " "), v) for k, v in sorted(card.items())
             if k not in _SHOWN and k not in _SECTIONS and not isinstance(v, dict)]
    lines = [
        "---", "library_name: transformers", "tags: [prox, prox-spark, refiner]", "---", "",
        f"# ProX refiner `{model_dir.name}`", "",
        "A refining model for prox-spark: it reads a ProX document or chunk prompt and "
        "writes a program (`drop_doc()`, `remove_lines(...)`, `normalize(...)`). "
        "Trained with `prox-spark train` (transformers' Trainer, loss on the program only).",
        "", "| | |", "|---|---|",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in rows if v is not None]
    arch = card.get("architecture")
    if isinstance(arch, dict):
        lines += ["", "## Architecture", "", "| | |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {_fmt(v)} |" for k, v in arch.items()
                  if v is not None]
    losses = card.get("losses") or []
    if losses:
        lines += ["", "## Training loss", "", "| step | loss |", "|---:|---:|"]
        lines += [f"| {int(s)} | {float(v):.4f} |" for s, v in _sample(losses, 12)]
    lines += ["", "## Evaluation against the teacher (eval split)", ""]
    lines += _evaluation_lines(card.get("evaluation"))
    lines += ["", "## Use", "", "```python",
              "from prox_spark.generation.engine import EngineConfig",
              "from prox_spark.stages import ChunkRefiner, DocRefiner",
              "",
              f'engine = EngineConfig(model="{model_dir}")',
              "refined = df.transform(DocRefiner(engine)).transform(ChunkRefiner(engine))",
              "```", ""]
    return "\n".join(lines)


def _evaluation_lines(evaluation: Any) -> list[str]:
    """The card's evaluation section: the tables `prox-spark evaluate` wrote
    (a missing measure is "n/a"), its warnings and verdict; any other
    mapping is listed metric by metric."""
    if not isinstance(evaluation, dict) or not evaluation:
        return ["Not evaluated yet: `prox-spark evaluate` adds the figures here."]
    if isinstance(evaluation.get("tables"), list):
        lines = []
        for table in evaluation["tables"]:
            columns = table["columns"]
            lines += [f"### {table['title']}", "", "| " + " | ".join(columns) + " |",
                      "|---" + "|---:" * (len(columns) - 1) + "|"]
            lines += ["| " + " | ".join([str(row[0]), *(_figure(v) for v in row[1:])]) + " |"
                      for row in table["rows"]]
            lines.append("")
        lines += [f"> {w}" for w in evaluation.get("warnings") or []]
        lines += ["", f"**{evaluation.get('verdict', '')}**", "",
                  "The paper column is the ProX paper's 0.3B refiners, shown only beside "
                  "the same measure."]
        return lines
    lines = []
    for task, scores in evaluation.items():
        if isinstance(scores, dict):
            lines += ["", f"### {task}", "", "| metric | value |", "|---|---:|"]
            lines += [f"| {k.replace('_', ' ')} | {_figure(v)} |" for k, v in scores.items()]
            lines.append("")
        else:
            lines.append(f"- {task.replace('_', ' ')}: {_figure(scores)}")
    return lines


def _figure(value: Any) -> str:
    """A score as a cell; a missing one is "n/a"."""
    return "n/a" if value is None else _fmt(value)


def _sample(points: Sequence[Sequence[Any]], limit: int) -> list[Sequence[Any]]:
    """At most `limit` points, evenly spread, the first and last included."""
    if len(points) <= limit:
        return list(points)
    picks = sorted({round(i * (len(points) - 1) / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picks]
