"""Train one proxy: a Llama-architecture causal LM from scratch on a packed
sample, with transformers' `Trainer`, on one process or as DDP processes
under Spark's `TorchDistributor` (as `distill.train` does).

The recipe is the same for every (variant, seed): the init seed and the data
order (a permutation of the sample's sequences) come from the seed alone, so
two variants with the same seed differ only in their text. A checkpoint is
saved at every evaluation point (a step whose tokens reach the next multiple
of `eval_every_tokens`, and the last step); each carries `prox_point.json`
(step, training tokens, mean training loss since the previous point, training
seconds so far), written after the checkpoint itself. A killed proxy resumes
from its last complete checkpoint. The proxy's folder is named by its
fingerprint, so a checkpoint of other data or another recipe is never resumed.

Layout of a proxy's folder::

    checkpoints/checkpoint-N/   Trainer checkpoints, one per evaluation point
    done.json                   written by rank 0 once the last step is saved
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prox_spark.ablate.config import ProxyModel, ProxyTraining, llama_config
from prox_spark.distill.train import PadCollator, resume_point, torch_distributor
from prox_spark.generation.logs import route_library_output

CHECKPOINTS = "checkpoints"
POINT_FILE = "prox_point.json"
DONE_FILE = "done.json"
_KEEP_ON_STRIP = ("model.safetensors", "config.json", "generation_config.json", POINT_FILE,
                  "trainer_state.json")


@dataclass(frozen=True)
class ProxyJob:
    """One proxy model to train: its folder, data, tokenizer and budget, as
    plain values (TorchDistributor pickles it for its worker processes)."""

    folder: str
    data_path: str
    tokenizer_dir: str
    tokens: int
    seed: int
    model: ProxyModel
    train: ProxyTraining


def tokens_per_step(model: ProxyModel, train: ProxyTraining) -> int:
    """Training tokens per optimizer step (all processes)."""
    return model.seq_len * train.batch_size * train.num_processes


def schedule(tokens: int, model: ProxyModel, train: ProxyTraining) -> list[tuple[int, int]]:
    """The evaluation points as (step, training tokens seen), the last step
    included. A point is the first step whose tokens reach a multiple of
    `eval_every_tokens`.

    >>> from prox_spark.ablate.config import ProxyModel, ProxyTraining
    >>> schedule(1000, ProxyModel(seq_len=100), ProxyTraining(batch_size=2, eval_every_tokens=300))
    [(2, 400), (3, 600), (5, 1000)]
    """
    per_step = tokens_per_step(model, train)
    total = -(-tokens // per_step)
    steps = set()
    if train.eval_every_tokens is not None:
        mark = train.eval_every_tokens
        while mark < tokens:
            steps.add(-(-mark // per_step))
            mark += train.eval_every_tokens
    steps.add(total)
    return [(s, min(s * per_step, tokens)) for s in sorted(x for x in steps if x <= total)]


def train_proxy(job: ProxyJob) -> None:
    """Train (or finish training) the proxy of `job`; returns once its
    `done.json` exists. Raises RuntimeError when training ended without it."""
    folder = Path(job.folder)
    if (folder / DONE_FILE).is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    if job.train.num_processes == 1:
        proxy_process(job)
    else:
        torch_distributor(job.train.num_processes, job.train.local_mode,
                          job.train.use_gpu).run(proxy_process, job)
    if not (folder / DONE_FILE).is_file():
        raise RuntimeError(f"training of the proxy in {folder} ended without {DONE_FILE}")


def points(folder: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """The complete evaluation points of a proxy: (checkpoint dir, point), by step."""
    base = Path(folder) / CHECKPOINTS
    if not base.is_dir():
        return []
    found = []
    for path in base.iterdir():
        point_file = path / POINT_FILE
        if path.is_dir() and point_file.is_file():
            found.append((path, json.loads(point_file.read_text(encoding="utf-8"))))
    return sorted(found, key=lambda item: int(item[1]["step"]))


def strip_optimizer_states(folder: str | Path) -> None:
    """Keep only the weights and the point of every checkpoint of a finished
    proxy (optimizer and scheduler states are 2-3x the model and only a
    resumed run reads them)."""
    for path, _ in points(folder):
        for item in path.iterdir():
            if item.name not in _KEEP_ON_STRIP:
                if item.is_dir():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)


class _Sequences:
    """The packed sample as `seq_len` sequences (the last may be shorter), a
    map-style dataset for `Trainer`; every token is a label (pretraining)."""

    def __init__(self, path: str, seq_len: int) -> None:
        self.ids = np.load(path, mmap_mode="r")
        self.seq_len = seq_len

    def __len__(self) -> int:
        return -(-len(self.ids) // self.seq_len)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        chunk = [int(x) for x in self.ids[i * self.seq_len:(i + 1) * self.seq_len]]
        return {"input_ids": chunk, "labels": chunk}


def _callback(job: ProxyJob, plan: list[tuple[int, int]]) -> Any:
    """A `TrainerCallback` that saves a checkpoint at each evaluation point
    and writes its `prox_point.json`."""
    from transformers import TrainerCallback

    tokens_at = dict(plan)

    class EvaluationPoints(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.before = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()
            done = [p for _, p in points(job.folder) if p["step"] <= state.global_step]
            self.before = float(done[-1]["train_seconds"]) if done else 0.0

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            if state.global_step in tokens_at:
                control.should_save = True
            return control

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not state.is_world_process_zero or state.global_step not in tokens_at:
                return
            previous = max((s for s in tokens_at if s < state.global_step), default=0)
            losses = [e["loss"] for e in state.log_history
                      if "loss" in e and previous < e["step"] <= state.global_step
                      and math.isfinite(e["loss"])]
            point = {"step": state.global_step, "tokens": tokens_at[state.global_step],
                     "loss": sum(losses) / len(losses) if losses else None,
                     "train_seconds": self.before + time.perf_counter() - self.started}
            target = Path(args.output_dir) / f"checkpoint-{state.global_step}" / POINT_FILE
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(point), encoding="utf-8")
            tmp.replace(target)

    return EvaluationPoints()


def proxy_process(job: ProxyJob) -> None:
    """Train in this process (one of `num_processes` under TorchDistributor).
    Rank 0 writes `done.json` at the end. Module-level, so it pickles."""
    route_library_output()
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    folder = Path(job.folder)
    tokenizer = AutoTokenizer.from_pretrained(job.tokenizer_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
        tokenizer.eos_token_id
    torch.manual_seed(job.seed)
    model = LlamaForCausalLM(llama_config(job.model, len(tokenizer), tokenizer.bos_token_id,
                                          tokenizer.eos_token_id, pad))
    plan = schedule(job.tokens, job.model, job.train)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    args = TrainingArguments(
        output_dir=str(folder / CHECKPOINTS),
        max_steps=plan[-1][0],
        per_device_train_batch_size=job.train.batch_size,
        learning_rate=job.train.learning_rate,
        weight_decay=job.train.weight_decay,
        lr_scheduler_type="cosine",
        warmup_steps=job.train.warmup_ratio,
        save_strategy="no",
        logging_steps=1,
        seed=job.seed,
        data_seed=job.seed,
        use_cpu=not job.train.use_gpu,
        ddp_backend="gloo" if distributed and not job.train.use_gpu else None,
        ddp_find_unused_parameters=False,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, data_collator=PadCollator(pad),
                      train_dataset=_Sequences(job.data_path, job.model.seq_len),
                      callbacks=[_callback(job, plan)])
    trainer.remove_callback(PrinterCallback)  # a line per step; the run logs its points
    trainer.train(resume_from_checkpoint=resume_point(folder / CHECKPOINTS, POINT_FILE))
    if trainer.is_world_process_zero():
        (folder / DONE_FILE).write_text(json.dumps({"steps": trainer.state.global_step}),
                                        encoding="utf-8")
