"""The `ablate:` section of a YAML file, validated into dataclasses.

Every problem is one `ConfigError` naming the setting (the CLI exits 2 and
writes nothing): fewer than two variants, a repeated variant name, a source
that is not there, `tokens` or `seq_len` out of range, a model shape that
cannot be built, a task file with a malformed line or a `gold` out of range.
Whether a variant or the reference can be read and is not empty, and whether
a `table:` variant is a prox-spark output, is checked when Spark reads them
(`ablate.data`).

    >>> cfg = load_ablate_config("conf/ablate.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any

from prox_spark.config import (
    InputConfig,
    as_mapping,
    check_input_readable,
    check_output_location,
    parse_input,
    parse_table_ref,
    read_yaml,
)
from prox_spark.errors import ConfigError
from prox_spark.params import Doc, Range, value_problem
from prox_spark.refs import TableRef

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TASK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# The FineWeb / ProX "early signal" tasks (lighteval's names, as lm-eval spells them).
EARLY_SIGNAL_TASKS = ("hellaswag", "winogrande", "piqa", "social_iqa", "openbookqa",
                      "arc_easy", "arc_challenge", "commonsense_qa", "mmlu")
MAX_TOKENS = 10 ** 13


@dataclass(frozen=True)
class Variant:
    """One corpus to train proxies on: a source read like `input:` (`source`),
    or a prox-spark refined table whose kept rows' final text is read (`table`)."""

    name: str
    source: InputConfig | None = None
    table: TableRef | None = None


@dataclass(frozen=True)
class ProxyModel:
    """The proxies' shape: a Llama-architecture causal LM trained from scratch
    (all heads are key/value heads; the MLP is `intermediate_size` wide,
    default 4 x hidden_size)."""

    hidden_size: Annotated[int, Range(8, 65_536), Doc("hidden size")] = 256
    layers: Annotated[int, Range(1, 512), Doc("decoder layers")] = 4
    heads: Annotated[int, Range(1, 1024), Doc("attention heads (must divide hidden_size)")] = 4
    seq_len: Annotated[int, Range(16, 131_072), Doc(
        "training sequence length in tokens (documents are packed into it)")] = 512
    intermediate_size: Annotated[int | None, Range(1, 1_000_000), Doc(
        "MLP size (null: 4 x hidden_size)")] = None
    vocab_size: Annotated[int, Range(320, 1_000_000), Doc(
        "most tokens of the BPE tokenizer trained when `tokenizer` is null")] = 8192


@dataclass(frozen=True)
class ProxyTraining:
    """The training recipe, identical for every proxy. `batch_size` is per
    process (sequences per optimizer step = batch_size x num_processes).
    `eval_every_tokens`: training tokens between evaluations (null: only at
    the end)."""

    batch_size: Annotated[int, Range(1, 65_536), Doc("sequences per step and process")] = 16
    learning_rate: Annotated[float, Range(0, 1, open_low=True), Doc("peak learning rate")] = 1e-3
    warmup_ratio: Annotated[float, Range(0, 0.9), Doc(
        "share of steps with a linear warm-up; then cosine decay")] = 0.05
    weight_decay: Annotated[float, Range(0, 1), Doc("AdamW weight decay")] = 0.1
    num_processes: Annotated[int, Range(1, 4096), Doc(
        "training processes (> 1: Spark's TorchDistributor)")] = 1
    local_mode: Annotated[bool, Doc(
        "TorchDistributor on the driver (false: barrier tasks on the executors)")] = True
    use_gpu: Annotated[bool, Doc("train on GPUs")] = False
    eval_every_tokens: Annotated[int | None, Range(1, MAX_TOKENS), Doc(
        "training tokens between evaluations (null: only at the end)")] = 500_000


@dataclass(frozen=True)
class TaskFile:
    """A local multiple-choice task: JSONL lines {"query", "choices", "gold"}."""

    name: str
    path: str
    examples: int


@dataclass(frozen=True)
class ProxyEval:
    """What each proxy is scored on at every evaluation point."""

    reference: InputConfig | None = None
    tasks: tuple[str, ...] = ()
    tasks_defaulted: bool = False
    task_files: tuple[TaskFile, ...] = ()
    limit: Annotated[int, Range(1, 10_000_000), Doc(
        "examples per task (and reference documents) scored")] = 1000
    batch_size: Annotated[int, Range(1, 4096), Doc("sequences per evaluation batch")] = 16


@dataclass(frozen=True)
class AblateConfig:
    """A whole ablation: variants (the first is the baseline), the token
    budget per variant, seeds, tokenizer, proxy shape and recipe, evaluation.
    Results go to the Delta table `output`; checkpoints, samples and the
    tokenizer to `work_dir`; the HTML report to `report_path`."""

    output: TableRef
    work_dir: str
    variants: tuple[Variant, ...]
    tokens: Annotated[int, Range(1, MAX_TOKENS), Doc("training tokens per variant")]
    seeds: tuple[int, ...] = (0,)
    tokenizer: str | None = None
    allow_repeat: Annotated[bool, Doc(
        "repeat a variant with fewer tokens than `tokens` (the report gives the epochs)")] = False
    model: ProxyModel = field(default_factory=ProxyModel)
    train: ProxyTraining = field(default_factory=ProxyTraining)
    eval: ProxyEval = field(default_factory=ProxyEval)
    partitions: Annotated[int, Range(1, 100_000), Doc(
        "Spark partitions the variants are read into")] = 2
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        return self.variants[0].name

    @property
    def report_path(self) -> Path:
        """`<output>_report.html` beside a path output, else in `work_dir`."""
        if self.output.path is not None and "://" not in self.output.path:
            return Path(self.output.path.rstrip("/") + "_report.html")
        return Path(self.work_dir) / "report.html"


TOP_KEYS = ("output", "work_dir", "variants", "tokens", "seeds", "tokenizer", "allow_repeat",
            "model", "train", "eval", "partitions")


def _fields_of(cls: type, raw: Any, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys of `raw` that are fields of `cls`, each checked against its
    declared type and range; an unknown key is an error naming it."""
    section = as_mapping(raw, where)
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in fields(cls) if f.name not in skip]
    out = {}
    for key, value in section.items():
        if key not in names:
            raise ConfigError(f"{where}.{key}", f"unknown key; expected one of {', '.join(names)}")
        if value is None:
            continue
        why = value_problem(value, hints[key])
        if why is not None:
            raise ConfigError(f"{where}.{key}", why)
        out[key] = value
    return out


def _variants(raw: Any, check_paths: bool) -> tuple[Variant, ...]:
    where = "ablate.variants"
    if not isinstance(raw, list):
        raise ConfigError(where, "expected a list of variants ({name, input} or {name, table})")
    if len(raw) < 2:
        raise ConfigError(where, f"needs two or more variants (the first is the baseline), "
                                 f"got {len(raw)}")
    out: list[Variant] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        section = as_mapping(item, at)
        unknown = set(section) - {"name", "input", "table"}
        if unknown:
            raise ConfigError(f"{at}.{sorted(unknown)[0]}",
                              "unknown key; expected name and one of input, table")
        name = section.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{at}.name", f"{name!r} is not a variant name (letters, digits, "
                                            "_ . -; at most 64)")
        if any(v.name == name for v in out):
            raise ConfigError(f"{at}.name", f"{name!r} is the name of an earlier variant too")
        if ("input" in section) == ("table" in section):
            raise ConfigError(at, f"variant {name!r}: give exactly one of `input` (a source) "
                                  "or `table` (a prox-spark refined table)")
        if "input" in section:
            source = parse_input(section["input"], f"{at}.input")
            if check_paths:
                check_input_readable(source, f"{at}.input")
            out.append(Variant(name, source=source))
        else:
            ref = parse_table_ref(section["table"], f"{at}.table")
            if check_paths and ref.path is not None and not Path(ref.path).is_dir():
                raise ConfigError(f"{at}.table.path", f"{ref.path} does not exist")
            out.append(Variant(name, table=ref))
    return tuple(out)


def _seeds(raw: Any) -> tuple[int, ...]:
    where = "ablate.seeds"
    if raw is None:
        return (0,)
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2 ** 31
                       for s in raw)):
        raise ConfigError(where, f"expected a non-empty list of seeds (integers 0 to 2^31-1), "
                                 f"got {raw!r}")
    if len(set(raw)) != len(raw):
        raise ConfigError(where, f"{raw!r} repeats a seed")
    return tuple(raw)


def _model(raw: Any) -> ProxyModel:
    model = ProxyModel(**_fields_of(ProxyModel, raw, "ablate.model"))
    if model.hidden_size % model.heads:
        raise ConfigError("ablate.model.heads", f"must divide hidden_size ({model.hidden_size}), "
                                                f"got {model.heads}")
    if (model.hidden_size // model.heads) % 2:
        raise ConfigError("ablate.model.heads", f"head size hidden_size/heads = "
                          f"{model.hidden_size // model.heads} must be even (rotary embeddings)")
    return model


def check_task_file(path: str, where: str) -> int:
    """Count the examples of a local multiple-choice JSONL file, refusing a
    line that is not {"query": str, "choices": [2+ str], "gold": int index}
    (ConfigError naming the file and line)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(where, f"{path} does not exist or is not a file")
    count = 0
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(where, f"{path} is not UTF-8 text ({exc.reason})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(where, f"{path} line {number}: not JSON ({exc.msg})") from None
        problem = _mc_problem(item)
        if problem:
            raise ConfigError(where, f"{path} line {number}: {problem}")
        count += 1
    if not count:
        raise ConfigError(where, f"{path} holds no example")
    return count


def _mc_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "expected an object with query, choices and gold"
    missing = [k for k in ("query", "choices", "gold") if k not in item]
    if missing:
        return f"missing {', '.join(missing)}"
    if not isinstance(item["query"], str) or not item["query"].strip():
        return "query must be a non-empty string"
    choices = item["choices"]
    if (not isinstance(choices, list) or len(choices) < 2
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        return "choices must be a list of two or more non-empty strings"
    gold = item["gold"]
    if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(choices):
        return f"gold must be an index into choices (0 to {len(choices) - 1}), got {gold!r}"
    return None


def _eval(raw: Any, check_paths: bool) -> ProxyEval:
    where = "ablate.eval"
    section = as_mapping(raw, where)
    numbers = _fields_of(ProxyEval, {k: v for k, v in section.items()
                                     if k in ("limit", "batch_size")}, where)
    unknown = set(section) - {"reference", "tasks", "task_files", "limit", "batch_size"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown key; expected one of "
                          "reference, tasks, task_files, limit, batch_size")
    reference = None
    if section.get("reference") is not None:
        reference = parse_input(section["reference"], f"{where}.reference")
        if check_paths:
            check_input_readable(reference, f"{where}.reference")
    raw_tasks = section.get("tasks")
    defaulted = raw_tasks is None
    tasks = EARLY_SIGNAL_TASKS if defaulted else raw_tasks
    if not isinstance(tasks, list | tuple) or not all(
            isinstance(t, str) and _TASK.match(t) for t in tasks):
        raise ConfigError(f"{where}.tasks", f"expected a list of lm-eval task names, got "
                                            f"{raw_tasks!r}")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"{where}.tasks", f"{list(tasks)!r} names a task twice")
    files_raw = section.get("task_files") or []
    if not isinstance(files_raw, list) or not all(isinstance(p, str) for p in files_raw):
        raise ConfigError(f"{where}.task_files", f"expected a list of JSONL paths, got "
                                                 f"{files_raw!r}")
    files: list[TaskFile] = []
    for i, path in enumerate(files_raw):
        at = f"{where}.task_files[{i}]"
        resolved = str(Path(path).expanduser().resolve())
        name = re.sub(r"[^A-Za-z0-9_]+", "_", Path(path).stem).strip("_") or f"task_{i}"
        if name in tasks or any(f.name == name for f in files) or name in (
                "reference", "train", "aggregate"):
            raise ConfigError(at, f"its task name {name!r} (from the file name) is taken; "
                                  "rename the file")
        count = check_task_file(resolved, at) if check_paths else 0
        files.append(TaskFile(name, resolved, count))
    return ProxyEval(reference, tuple(tasks), defaulted, tuple(files), **numbers)


def parse_ablate(raw: Any, *, check_paths: bool = True,
                 spark_conf: Mapping[str, str] | None = None) -> AblateConfig:
    """Validate the `ablate:` section of a configuration mapping."""
    top = as_mapping(raw, "config")
    if "ablate" not in top:
        raise ConfigError("ablate", "the configuration has no `ablate:` section")
    section = as_mapping(top["ablate"], "ablate")
    unknown = set(section) - set(TOP_KEYS)
    if unknown:
        raise ConfigError(f"ablate.{sorted(unknown)[0]}",
                          f"unknown key; expected one of {', '.join(TOP_KEYS)}")
    for key in ("output", "variants", "tokens"):
        if section.get(key) is None:
            raise ConfigError(f"ablate.{key}", "is required")
    output = parse_table_ref(section["output"], "ablate.output")
    if check_paths:
        check_output_location(output, "ablate.output")
    work_dir = section.get("work_dir")
    if work_dir is None:
        if output.path is None or "://" in output.path:
            raise ConfigError("ablate.work_dir", "is required when ablate.output is not a local "
                                                 "path (checkpoints and samples go there)")
        work_dir = output.path.rstrip("/") + "_work"
    elif not isinstance(work_dir, str) or not work_dir.strip() or "\x00" in work_dir:
        raise ConfigError("ablate.work_dir", f"{work_dir!r} is not a valid path")
    work_dir = str(Path(work_dir).expanduser().resolve())
    if output.path is not None and (work_dir + "/").startswith(output.path.rstrip("/") + "/"):
        raise ConfigError("ablate.work_dir", "lies inside ablate.output: give it a folder of "
                                             "its own")
    scalars = _fields_of(AblateConfig, {k: section[k] for k in ("tokens", "allow_repeat",
                                                                 "partitions") if k in section},
                         "ablate")
    tokenizer = section.get("tokenizer")
    if tokenizer is not None:
        if not isinstance(tokenizer, str) or not tokenizer.strip():
            raise ConfigError("ablate.tokenizer", f"expected a tokenizer directory, got "
                                                  f"{tokenizer!r}")
        tokenizer = str(Path(tokenizer).expanduser().resolve())
        if check_paths and not (Path(tokenizer) / "tokenizer.json").is_file() and not (
                Path(tokenizer) / "tokenizer_config.json").is_file():
            raise ConfigError("ablate.tokenizer", f"{tokenizer} holds no tokenizer "
                                                  "(tokenizer.json or tokenizer_config.json)")
    model = _model(section.get("model"))
    train = ProxyTraining(**_fields_of(ProxyTraining, section.get("train"), "ablate.train"))
    if scalars["tokens"] < model.seq_len:
        raise ConfigError("ablate.tokens", f"{scalars['tokens']:,} is less than one sequence "
                                           f"(model.seq_len = {model.seq_len})")
    config = AblateConfig(
        output=output, work_dir=work_dir, variants=_variants(section["variants"], check_paths),
        seeds=_seeds(section.get("seeds")), tokenizer=tokenizer, model=model, train=train,
        eval=_eval(section.get("eval"), check_paths), spark_conf=dict(spark_conf or {}),
        **scalars)
    check_buildable(config.model)
    return config


def check_buildable(model: ProxyModel) -> int:
    """Build the proxy's shape on torch's meta device (no memory) and return
    its parameter count; ConfigError naming `ablate.model` when transformers
    refuses it."""
    try:
        return parameter_count(model, model.vocab_size)
    except Exception as exc:
        raise ConfigError("ablate.model", f"transformers cannot build this Llama shape: "
                                          f"{type(exc).__name__}: {exc}") from None


def llama_config(model: ProxyModel, vocab_size: int, bos: int = 1, eos: int = 2,
                 pad: int = 0) -> Any:
    """The `LlamaConfig` of a proxy with a tokenizer of `vocab_size` tokens."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=model.hidden_size,
        intermediate_size=model.intermediate_size or 4 * model.hidden_size,
        num_hidden_layers=model.layers, num_attention_heads=model.heads,
        num_key_value_heads=model.heads, max_position_embeddings=model.seq_len,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=True,
        dtype="float32")


def parameter_count(model: ProxyModel, vocab_size: int) -> int:
    """Parameters of the proxy (embeddings included; input and output
    embeddings are tied, so counted once)."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        built = LlamaForCausalLM(llama_config(model, vocab_size))
    return sum(p.numel() for p in built.parameters())


def load_ablate_config(path: str | Path, *, check_paths: bool = True,
                       spark_conf: Mapping[str, str] | None = None) -> AblateConfig:
    """Read a YAML file and validate its `ablate:` section (other sections,
    such as a refining job's, are ignored). Relative paths are taken relative
    to the current directory."""
    return parse_ablate(read_yaml(path), check_paths=check_paths, spark_conf=spark_conf)
