"""Checks of a configuration against the machine: local paths readable or
writable, tables in folders of their own, models that can be found, and
prompt budgets that fit the engine's context. Each problem is one
`ConfigError` naming the field, raised before any Spark work starts.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from prox_spark.config.model import InputConfig, ModelConfig, ReportConfig
from prox_spark.config.sections import URI
from prox_spark.errors import ConfigError
from prox_spark.generation.engine import get_tokenizer
from prox_spark.generation.prompts import frame_tokens
from prox_spark.refs import TableRef, is_delta_dir

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
log = logging.getLogger(__name__)


def _is_local(path: str) -> bool:
    return not URI.match(path) or path.startswith("file:/")


def _local(path: str) -> Path:
    return Path(path[5:] if path.startswith("file:") else path)


def check_input_readable(inp: InputConfig, where: str = "input") -> None:
    """A local source path that does not exist, is unreadable, or (for
    format delta) is not a Delta table: ConfigError naming `where`.path."""
    if inp.ref.path is None or not _is_local(inp.ref.path):
        return
    path = _local(inp.ref.path)
    if not path.exists():
        raise ConfigError(f"{where}.path", f"{path} does not exist")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{where}.path", f"{path} is not readable")
    if inp.format == "delta" and not is_delta_dir(path):
        raise ConfigError(f"{where}.path", f"{path} is not a Delta table (no _delta_log)")


def check_output_location(ref: TableRef, where: str) -> None:
    """An output path that is a file, a non-empty non-Delta folder, or under
    an unwritable folder: ConfigError naming `where`.path."""
    if ref.path is None or not _is_local(ref.path):
        return
    path = _local(ref.path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where}.path", f"{path} is a file, not a Delta location")
    if path.is_dir() and any(path.iterdir()) and not is_delta_dir(path):
        raise ConfigError(
            f"{where}.path", f"{path} exists, is not empty and is not a Delta table"
        )
    parent = path.parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{where}.path", f"{parent} is a file, so {path} cannot be created "
                          "under it")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{where}.path", f"{parent} is not writable")


def check_report_folder(report: ReportConfig | None) -> None:
    """A report path that is an existing file: ConfigError on `report.path`."""
    if report is None or report.path is None or not _is_local(report.path):
        return
    if _local(report.path).exists() and not _local(report.path).is_dir():
        raise ConfigError("report.path", f"{report.path} is a file, not a folder")


def check_locations(source: TableRef, output: TableRef, metrics: TableRef,
                    report: ReportConfig | None) -> None:
    """Refuse a configuration whose tables or report folder share a location
    or lie inside one another: a Delta table in another's folder corrupts
    neither at once but breaks both (the outer table's reads see stray files,
    a later VACUUM deletes the inner one's)."""
    places = [("input", source), ("output", output), ("metrics", metrics),
              ("the output's claims table", output.sibling("_claims"))]
    if report is not None and report.path is not None:
        places.append(("report.path", TableRef(path=report.path)))
    for i, (name, ref) in enumerate(places):
        for other, ref2 in places[:i]:
            if ref.table is not None and ref.table == ref2.table:
                raise ConfigError(name, f"is the same table as {other} ({ref.table})")
            if ref.path is None or ref2.path is None:
                continue
            a, b = ref.path.rstrip("/") + "/", ref2.path.rstrip("/") + "/"
            if a == b:
                raise ConfigError(name, f"is the same location as {other} ({ref.path})")
            if a.startswith(b) or b.startswith(a):
                inner, outer = (name, other) if a.startswith(b) else (other, name)
                raise ConfigError(name, f"{inner} lies inside {outer} ({ref.path}, "
                                  f"{ref2.path}): give each table a folder of its own")


def check_model_available(name: str, where: str) -> None:
    """Fail with a helpful message when a model is neither a local directory
    nor downloadable (the hub is unreachable, or offline mode is on)."""
    hint = (
        f"Point the job at a local copy instead, e.g. `prox-spark run CONFIG "
        f"--{where.split('.')[0].replace('_', '-')} /path/to/model_dir` (`prox-spark plan` "
        "takes the same flag; a directory holding config.json, the weights and the "
        "tokenizer)."
    )
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(where, f"directory {path} has no config.json. {hint}")
        return
    if not _HUB_ID.match(name):
        raise ConfigError(where, f"{name!r} is neither a model directory nor a hub id. {hint}")
    try:
        # Imported here: the hub client is needed only for a hub id.
        from huggingface_hub import snapshot_download

        snapshot_download(name, allow_patterns=["config.json"],
                          local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1",
                          etag_timeout=10)
    except Exception as exc:
        raise ConfigError(
            where,
            f"cannot find model {name!r}: it is not a local directory and it could not be "
            f"fetched from the Hugging Face hub ({type(exc).__name__}). {hint}",
        ) from None


def prompt_frame(model: ModelConfig, where: str) -> int:
    """The prompt frame of the section's level, measured with the model's own
    tokenizer (`generation.prompts.frame_tokens`); 0, with a warning, when
    the tokenizer cannot be loaded here (the engine will say why when it
    starts)."""
    name = model.engine.tokenizer_name
    try:
        tokenizer = get_tokenizer(name)
    except Exception as exc:
        log.warning("%s: cannot load the tokenizer of %r to measure the prompt frame (%s); "
                    "the prompt budget is checked without it", where, name,
                    type(exc).__name__)
        return 0
    return frame_tokens("doc" if where == "doc_model" else "chunk", tokenizer)


def check_prompt_budget(model: ModelConfig, where: str, frame: int) -> None:
    """Every prompt the budgets allow, plus `max_new_tokens`, fits the
    engine's context. A doc prompt's `max_prompt_tokens` is the whole prompt
    (it must also hold the frame); a chunk's is its numbered lines' budget,
    to which the frame is added. `frame` 0: not measured yet (no tokenizer
    loaded), so only what holds for any frame is checked."""
    context, new = model.engine.max_model_len, model.max_new_tokens
    if where == "doc_model":
        if frame and model.max_prompt_tokens <= frame:
            raise ConfigError(f"{where}.max_prompt_tokens", (
                f"{model.max_prompt_tokens} cannot hold the prompt frame ({frame} tokens "
                "with this tokenizer) and any of the document"))
        longest, what = model.max_prompt_tokens, f"max_prompt_tokens ({model.max_prompt_tokens})"
    else:
        # A line shortened to the whole budget can take one token more after
        # "[doc]\n" than counted alone (the seam), hence the 1.
        longest = model.max_prompt_tokens + frame + (1 if frame else 0)
        what = (f"the lines' budget max_prompt_tokens ({model.max_prompt_tokens})"
                + (f" + the prompt frame ({frame} tokens with this tokenizer, plus 1 at the "
                   "seam)" if frame else ""))
    if longest + new > context:
        raise ConfigError(where, (
            f"{what} + max_new_tokens ({new}) = {longest + new} exceeds max_model_len "
            f"({context}), the engine's context: the longest prompts would be refused or "
            "their answers cut. Lower a budget or raise max_model_len"))
