"""Supervised fine-tuning of a refiner on (prompt, completion) examples.

transformers' `Trainer` does the training (loss on the completion only); on
one process, or as `num_processes` DDP processes under Spark's
`TorchDistributor` (gloo on CPU, NCCL on GPU). Checkpoints land every
`save_steps` in ``output_dir/checkpoints`` (the last two kept) and a rerun of
the same call resumes from the last complete one; a call with other examples
or settings refuses them (`CheckpointMismatch`) unless `overwrite`. The final model directory
is what `DocRefiner` / `ChunkRefiner` and vLLM load as is: weights,
tokenizer (BOS/EOS set, one BOS added on encode), generation config, and a
model card (``README.md`` plus the machine-readable ``prox_card.json``).

Layout of `output_dir`::

    config.json, model.safetensors, generation_config.json, tokenizer files
    README.md, prox_card.json        the model card
    tokenizer/                       the from-scratch tokenizer (reused if present)
    checkpoints/checkpoint-N/        Trainer checkpoints
    checkpoints/prox_fingerprint.json  what they were trained on (examples, settings)
    training/                        tokenized examples, rank 0's result

Example::

    result = train_sft(pairs, TrainConfig(output_dir="out/refiner", max_steps=500))
    DocRefiner(EngineConfig(model=result.model_dir))
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from prox_spark.distill.card import write_model_card
from prox_spark.distill.config import TrainConfig
from prox_spark.distill.tokenizer import build_tokenizer
from prox_spark.errors import CheckpointMismatch
from prox_spark.generation.logs import record_event, route_library_output, verbose
from prox_spark.session import get_spark

TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
WORK_DIR = "training"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_TRAINER_STATE = "trainer_state.json"  # written last into a checkpoint
FINGERPRINT_FILE = "prox_fingerprint.json"  # in checkpoints/: what they were trained on
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a run produced.

    `steps`: optimizer steps reached (the checkpoint's count included on
    resume); `losses`: (step, mean training loss since the previous entry);
    `train_tokens`: non-padding tokens seen by all processes; `seconds`: wall
    time of this call's training; `resumed_from`: the checkpoint directory a
    rerun started from; `skipped_examples`: examples over `max_seq_tokens`.
    """

    model_dir: str
    steps: int
    losses: tuple[tuple[int, float], ...]
    train_tokens: int
    seconds: float
    resumed_from: str | None
    skipped_examples: int = 0


@dataclass(frozen=True)
class _Job:
    """Everything a training process needs; plain values, so it pickles for
    TorchDistributor's worker processes."""

    config: TrainConfig
    tokenizer_dir: str
    data_path: str
    result_path: str
    resume_from: str | None


def train_sft(
    examples: Sequence[tuple[str, str]],
    config: TrainConfig,
    *,
    tokenizer_corpus: Iterable[str] = (),
    card: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune a causal LM to answer each prompt with its completion.

    `examples`: (prompt, completion) strings, the prompt exactly as
    `prox_spark.generation.prompts` builds it (no BOS). Each is tokenized as the engine
    will see it (`example_ids`): one BOS + prompt, then completion + EOS; the
    loss covers the completion and EOS only. From scratch, the tokenizer is
    ``output_dir/tokenizer`` when it exists (e.g. trained by annotate to
    measure the prompts), else trained there on the examples plus
    `tokenizer_corpus`. `card`: extra model-card facts (teacher, sft_table,
    sft_version, ...), see `write_model_card`.

    Raises ValueError for no examples, a malformed one, none fitting
    `max_seq_tokens`, or (naming base_model) a base tokenizer without BOS or
    EOS. With `num_processes` > 1 it needs pyspark and uses the active Spark
    session (a local one is started for local_mode when none is active).
    """
    pairs = _checked_examples(examples)
    out = Path(config.output_dir)
    tokenizer, tokenizer_dir = _student_tokenizer(pairs, config, tokenizer_corpus)
    work = out / WORK_DIR
    data_path, kept, skipped, resume = _training_data(pairs, tokenizer, config, work)
    raw = _finished(resume, config, out)
    if raw is None:
        raw = _train(config, tokenizer_dir, data_path, work, resume)
    result = TrainResult(
        model_dir=str(out), steps=raw["steps"],
        losses=tuple((int(s), float(v)) for s, v in raw["losses"]),
        train_tokens=raw["train_tokens"], seconds=raw["seconds"], resumed_from=resume,
        skipped_examples=skipped)
    write_model_card(out, {
        **(card or {}),
        "base_model": config.base_model,
        "architecture": raw["architecture"],
        "examples": kept,
        "skipped_examples": skipped,
        "steps": result.steps,
        "processes": raw["world_size"],
        "train_tokens": result.train_tokens,
        "losses": [list(p) for p in result.losses],
        "resumed_from": resume,
        "config": {f.name: getattr(config, f.name) for f in fields(config)},
    })
    return result


def _training_data(pairs: Sequence[tuple[str, str]], tokenizer: Any, config: TrainConfig,
                   work: Path) -> tuple[Path, int, int, str | None]:
    """The tokenized examples written into `work` (data path, examples kept,
    examples skipped as too long) and the checkpoint to resume from.

    Raises ValueError, leaving the directory as it was, when no example fits
    `max_seq_tokens` or the checkpoints were trained on something else."""
    work.mkdir(parents=True, exist_ok=True)
    fresh, kept, skipped = _write_examples(pairs, tokenizer, config.max_seq_tokens, work)
    try:
        if not kept:
            raise ValueError(
                f"no example fits TrainConfig.max_seq_tokens={config.max_seq_tokens}")
        resume = _resumable(work.parent / CHECKPOINTS_DIR,
                            training_fingerprint(fresh, config, kept), config)
    except ValueError:
        fresh.unlink(missing_ok=True)  # a refused call leaves the directory as it was
        raise
    return fresh.replace(work / "examples.jsonl"), kept, skipped, resume


def _train(config: TrainConfig, tokenizer_dir: Path, data_path: Path, work: Path,
           resume: str | None) -> dict[str, Any]:
    """Run the training processes; rank 0's result (see `train_process`)."""
    result_path = work / "result.json"
    result_path.unlink(missing_ok=True)
    job = _Job(config, str(tokenizer_dir), str(data_path), str(result_path), resume)
    if config.num_processes == 1:
        train_process(job)
    else:
        _distributor(config).run(train_process, job)
    if not result_path.is_file():
        raise RuntimeError(f"training finished without rank 0's result in {result_path}")
    return dict(json.loads(result_path.read_text(encoding="utf-8")))


def _finished(resume: str | None, config: TrainConfig, out: Path) -> dict[str, Any] | None:
    """The result of a training already complete, or None: `resume` holds the
    last step (`max_steps`) and `out` its saved model. A rerun then trains
    nothing (Trainer, resumed at its last step, would take one more)."""
    if resume is None or config.epochs is not None or not (out / "config.json").is_file():
        return None
    state = json.loads((Path(resume) / _TRAINER_STATE).read_text(encoding="utf-8"))
    if int(state.get("global_step", 0)) < config.max_steps:
        return None
    arch = json.loads((out / "config.json").read_text(encoding="utf-8"))
    return {
        "steps": int(state["global_step"]),
        "losses": [[e["step"], e["loss"]] for e in state.get("log_history", [])
                   if "loss" in e and math.isfinite(e["loss"])],
        "train_tokens": int(state.get("num_input_tokens_seen") or 0),
        "seconds": 0.0,
        "world_size": config.num_processes,
        "architecture": {k: arch.get(k) for k in (
            "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "intermediate_size", "vocab_size")},
    }


def _checked_examples(examples: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = list(examples)
    if not pairs:
        raise ValueError("train_sft: no examples to train on")
    for i, pair in enumerate(pairs):
        if (not isinstance(pair, tuple | list) or len(pair) != 2
                or not all(isinstance(x, str) for x in pair)):
            raise ValueError(f"examples[{i}] must be a (prompt, completion) pair of strings")
        if not pair[1].strip():
            raise ValueError(f"examples[{i}] has an empty completion")
    return [(p, c) for p, c in pairs]


# Settings that change neither the examples seen nor the weights reached.
_NOT_TRAINING = ("output_dir", "save_steps", "local_mode", "overwrite")


def training_fingerprint(data_path: Path, config: TrainConfig, examples: int
                         ) -> dict[str, Any]:
    """What a checkpoint was trained on: the SHA-256 of the tokenized examples
    (ids and prompt lengths, so a new tokenizer counts too) and every
    setting that changes the result (all of `TrainConfig` but where it is
    written, how often it is saved, and where the processes run)."""
    digest = hashlib.sha256(data_path.read_bytes()).hexdigest()
    settings = {f.name: getattr(config, f.name) for f in fields(config)
                if f.name not in _NOT_TRAINING}
    return {"examples": digest, "example_count": examples, "settings": settings}


def _resumable(folder: Path, fingerprint: dict[str, Any], config: TrainConfig) -> str | None:
    """The checkpoint to resume: the last complete one, when it was trained on
    exactly these examples and settings. Records the fingerprint for the
    checkpoints this run writes.

    Raises `CheckpointMismatch` (naming `output_dir` and what differs) for
    checkpoints of other examples or settings, unless `config.overwrite`,
    which removes them and starts afresh.
    """
    resume = resume_point(folder)
    record = folder / FINGERPRINT_FILE
    if resume is not None:
        try:
            before = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        differs = _differences(before, fingerprint)
        if differs and not config.overwrite:
            raise CheckpointMismatch(
                "distill.student.output_dir",
                f"{config.output_dir} holds checkpoints trained on other {differs}; resuming "
                "them would keep weights that never saw these examples. Use another "
                "output_dir, or set distill.student.overwrite: true (TrainConfig.overwrite) "
                "to start afresh")
        if differs:
            log.warning("%s: checkpoints of other %s removed (overwrite: true); training "
                        "afresh", config.output_dir, differs)
            shutil.rmtree(folder)
            resume = None
    folder.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(fingerprint, indent=2, sort_keys=True, default=str),
                   encoding="utf-8")
    tmp.replace(record)
    return resume


def _differences(before: Any, now: dict[str, Any]) -> str:
    """What differs between two fingerprints, in words ("" when nothing)."""
    if not isinstance(before, dict):
        return "or unrecorded examples and settings (written before checkpoints were " \
               "fingerprinted)"
    parts = []
    if before.get("examples") != now["examples"]:
        parts.append(f"examples ({before.get('example_count', '?')} then, "
                     f"{now['example_count']} now, different content)")
    old = before.get("settings") or {}
    changed = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in now["settings"].items()
               if json.dumps(old.get(k), default=str) != json.dumps(v, default=str)]
    if changed:
        parts.append(f"settings ({'; '.join(changed)})")
    return " and ".join(parts)


def resume_point(folder: Path, marker: str = _TRAINER_STATE) -> str | None:
    """The last complete checkpoint in `folder` (holding `marker`, a file
    written last into a checkpoint: by default the trainer state), after
    removing newer ones a killed run left half-written."""
    if not folder.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), p) for p in folder.iterdir()
         if p.is_dir() and (m := _CHECKPOINT.match(p.name))),
        reverse=True)
    for _, path in found:
        if (path / marker).is_file() and (path / _TRAINER_STATE).is_file():
            return str(path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def _student_tokenizer(pairs: Sequence[tuple[str, str]], config: TrainConfig,
                       corpus: Iterable[str]) -> tuple[Any, Path]:
    from transformers import AutoTokenizer  # heavy (torch): kept out of import time

    if config.base_model is not None:
        path = Path(config.base_model)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        missing = [name for name in ("bos", "eos")
                   if getattr(tokenizer, f"{name}_token_id") is None]
        if missing:
            raise ValueError(
                f"base_model {config.base_model!r}: its tokenizer has no "
                f"{' and no '.join(m.upper() for m in missing)} token; the refiner's prompts "
                "start with one BOS and its programs end with EOS")
        return tokenizer, path
    path = Path(config.output_dir) / TOKENIZER_DIR
    if not (path / "tokenizer.json").is_file():
        texts = [*corpus, *(p for p, _ in pairs), *(c for _, c in pairs)]
        build_tokenizer(path, texts, config.vocab_size)
    return AutoTokenizer.from_pretrained(str(path)), path


def example_ids(prompt: str, completion: str, tokenizer: Any) -> tuple[list[int], int]:
    """Token ids of one example and the length of its prompt part.

    The prompt part is exactly what `Engine.encode` sends vLLM: one BOS, then
    the prompt without special tokens, special-token text inside it read as
    text. Then the completion (no specials) and EOS, which the model learns
    to write. Raises ValueError when the tokenizer has no BOS or EOS.
    """
    from tokenizers import Tokenizer

    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ValueError("the tokenizer needs a BOS and an EOS token")
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.encode_special_tokens = True
    prompt_ids = [bos, *backend.encode(prompt, add_special_tokens=False).ids]
    completion_ids = [*backend.encode(completion, add_special_tokens=False).ids, eos]
    return prompt_ids + completion_ids, len(prompt_ids)


def _write_examples(pairs: Sequence[tuple[str, str]], tokenizer: Any, max_tokens: int,
                    work: Path) -> tuple[Path, int, int]:
    path = work / "examples.jsonl.new"  # examples.jsonl once the call is accepted
    kept = skipped = 0
    with path.open("w", encoding="utf-8") as fh:
        for prompt, completion in pairs:
            ids, prompt_len = example_ids(prompt, completion, tokenizer)
            if len(ids) > max_tokens:
                skipped += 1
                continue
            fh.write(json.dumps({"ids": ids, "prompt": prompt_len}) + "\n")
            kept += 1
    return path, kept, skipped


def _distributor(config: TrainConfig) -> Any:
    return torch_distributor(config.num_processes, config.local_mode, config.use_gpu)


def torch_distributor(num_processes: int, local_mode: bool, use_gpu: bool) -> Any:
    """Spark's `TorchDistributor` for `num_processes` processes, on the
    active session (a local one is started for `local_mode` when none is
    active). Raises ValueError when barrier tasks are asked for without a
    session."""
    from pyspark.ml.torch.distributor import TorchDistributor
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is None:
        if not local_mode:
            raise ValueError("TrainConfig.local_mode=False runs the processes as Spark tasks "
                             "and needs an active Spark session")
        get_spark("prox-spark-train")
    return TorchDistributor(num_processes=num_processes, local_mode=local_mode,
                            use_gpu=use_gpu)


class _Examples:
    """The tokenized examples as a map-style dataset for `Trainer`."""

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as fh:
            self.rows = [json.loads(line) for line in fh]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        row = self.rows[i]
        ids, n = row["ids"], row["prompt"]
        return {"input_ids": ids, "labels": [-100] * n + ids[n:]}


@dataclass(frozen=True)
class PadCollator:
    """Right-pads a batch: `input_ids` with `pad_id`, `labels` with -100,
    `attention_mask` 0 on padding. Returns int64 tensors of shape
    (batch, longest example)."""

    pad_id: int

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids, labels, mask = [], [], []
        for r in rows:
            pad = width - len(r["input_ids"])
            ids.append(r["input_ids"] + [self.pad_id] * pad)
            labels.append(r["labels"] + [-100] * pad)
            mask.append([1] * len(r["input_ids"]) + [0] * pad)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                "attention_mask": torch.tensor(mask)}


def _build_model(config: TrainConfig, tokenizer: Any) -> Any:
    import torch
    from transformers import (  # heavy (torch): kept out of import time
        AutoModelForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
    )

    if config.base_model is not None:
        return AutoModelForCausalLM.from_pretrained(config.base_model, dtype=torch.float32)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.unk_token_id
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size or 2 * config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        max_position_embeddings=config.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
        tie_word_embeddings=False,
        dtype="float32",
    )
    torch.manual_seed(config.seed)
    return LlamaForCausalLM(llama)


log = logging.getLogger(__name__)
PROGRESS_LINES = 4


def _progress() -> Any:
    """A `TrainerCallback` in place of Trainer's printed log dicts (one line
    per logging step): each log entry (loss, learning rate, tokens seen) goes
    to the engine log as a `train_log` event, and rank 0 logs a progress line
    at each quarter of the steps."""
    from transformers import TrainerCallback  # heavy (torch): kept out of import time

    class Progress(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.shown = 0

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            record_event("train_log", step=state.global_step, **logs)
            due = state.global_step * PROGRESS_LINES // max(state.max_steps, 1)
            if "loss" in logs and due > self.shown and state.global_step < state.max_steps:
                self.shown = due
                log.info("trained %d of %d steps, loss %.4f", state.global_step, state.max_steps,
                         float(logs["loss"]))

    return Progress()


def train_process(job: _Job) -> dict[str, Any] | None:
    """Train in this process (one of `num_processes` under TorchDistributor,
    which provides the torch.distributed environment `Trainer` picks up).

    Rank 0 saves the final model and tokenizer into `output_dir` and writes
    its result JSON to `job.result_path`, which it also returns; other ranks
    return None. Module-level, so TorchDistributor can pickle it.
    """
    route_library_output()
    from transformers import (  # heavy (torch): kept out of import time
        AutoTokenizer,
        GenerationConfig,
        Trainer,
    )
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    if not verbose():
        hf_logging.disable_progress_bar()  # "Writing model shards" at every save
    config = job.config
    out = Path(config.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(job.tokenizer_dir)
    model = _build_model(config, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad)
    args = _training_arguments(config, out)
    trainer = Trainer(model=model, args=args, data_collator=PadCollator(pad),
                      train_dataset=_Examples(job.data_path), processing_class=tokenizer,
                      callbacks=[_progress()])
    trainer.remove_callback(PrinterCallback)  # disable_tqdm makes Trainer print its logs
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=job.resume_from)
    seconds = time.perf_counter() - started
    if not trainer.is_world_process_zero():
        return None
    trainer.save_model(str(out))
    _declare_bos(out)
    result = _run_result(trainer, model, args.world_size, seconds)
    tmp = Path(job.result_path + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(job.result_path)
    return result


def _training_arguments(config: TrainConfig, out: Path) -> Any:
    """transformers' `TrainingArguments` for `config`: checkpoints in
    ``out/checkpoints``, gloo for DDP on CPU, logs through our callback."""
    from transformers import TrainingArguments  # heavy (torch): kept out of import time

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS_DIR),
        max_steps=config.max_steps if config.epochs is None else -1,
        num_train_epochs=config.epochs or 1.0,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=max(1, config.max_steps // 100) if config.epochs is None else 10,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not config.use_gpu,
        ddp_backend="gloo" if distributed and not config.use_gpu else None,
        ddp_find_unused_parameters=False,  # every weight of a causal LM takes part
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def _run_result(trainer: Any, model: Any, world_size: int, seconds: float) -> dict[str, Any]:
    """Rank 0's result of a finished training: steps, finite losses, tokens
    seen, time, processes and the model's architecture."""
    state = trainer.state
    return {
        "steps": state.global_step,
        "losses": [[e["step"], e["loss"]] for e in state.log_history
                   if "loss" in e and math.isfinite(e["loss"])],
        "train_tokens": int(state.num_input_tokens_seen),
        "seconds": seconds,
        "world_size": world_size,
        "architecture": {k: getattr(model.config, k, None) for k in (
            "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "intermediate_size", "vocab_size")},
    }


def _declare_bos(model_dir: Path) -> None:
    """Declare in the saved tokenizer config that encoding adds one BOS and no
    EOS, as the engine sends prompts and as the model was trained
    (transformers 5 does not write these keys itself)."""
    path = model_dir / "tokenizer_config.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["add_bos_token"] = True
    settings["add_eos_token"] = False
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
