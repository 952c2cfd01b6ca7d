"""Teach a tiny Llama to answer a few fixed prompts with fixed programs.

A few hundred CPU steps make a 2-layer model reproduce its training pairs
under greedy decoding, which gives an honest end-to-end check of prompt
format -> engine -> program -> interpreter without the released models.

    >>> train_tiny_refiner("/tmp/refiner", [(prompt, "drop_doc()")])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prox_spark.testing.tiny_llama import build_tiny_llama, is_tiny_model

TRAINING_VERSION = 3
# Greedy decoding reproduces a pair when, fed the pair itself, the model
# ranks every completion token first; the margin (in logits) keeps that true
# under vLLM's slightly different arithmetic.
STOP_MARGIN = 3.0


def pairs_key(pairs: Sequence[tuple[str, str]], steps: int) -> str:
    """A short stable key for a training set, to cache the trained model."""
    blob = json.dumps([TRAINING_VERSION, steps, list(pairs)], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def train_tiny_refiner(
    path: str | Path,
    pairs: Sequence[tuple[str, str]],
    *,
    steps: int = 300,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> Path:
    """Build and train a tiny model at `path` so that, greedily decoded, the
    prompt of each pair (BOS + prompt) is answered with its completion + EOS.

    Trains for at most `steps` steps and stops as soon as every completion
    token is the model's first choice by `STOP_MARGIN` logits (teacher
    forcing, read off the training step's own logits: no extra pass), which
    is what greedy decoding needs. Returns at once when `path` already holds
    a model trained by this function.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    path = Path(path)
    if is_tiny_model(path) and (path / "trained.json").is_file():
        return path
    corpus = [p + c for p, c in pairs]
    build_tiny_llama(path, corpus, seed=seed)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = LlamaForCausalLM.from_pretrained(str(path), torch_dtype=torch.float32)
    backend = tok.backend_tokenizer
    rows, labels = [], []
    for prompt, completion in pairs:
        p_ids = [tok.bos_token_id, *backend.encode(prompt, add_special_tokens=False).ids]
        c_ids = [*backend.encode(completion, add_special_tokens=False).ids, tok.eos_token_id]
        rows.append(p_ids + c_ids)
        labels.append([-100] * len(p_ids) + c_ids)
    width = max(len(r) for r in rows)
    input_ids = torch.tensor([r + [tok.pad_token_id or 0] * (width - len(r)) for r in rows])
    label_ids = torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    loss_value = float("nan")
    done = 0
    while done < steps:
        done += 1
        optimizer.zero_grad()
        out = model(input_ids=input_ids, attention_mask=mask, labels=label_ids)
        out.loss.backward()
        optimizer.step()
        loss_value = float(out.loss)
        if _learned(out.logits.detach(), label_ids):
            break
    model.save_pretrained(str(path), safe_serialization=True)
    (path / "trained.json").write_text(json.dumps({"steps": done, "max_steps": steps,
                                                   "final_loss": loss_value}))
    return path


def _learned(logits: Any, labels: Any) -> bool:
    """Whether each label token (shifted: position t predicts t+1) leads the
    logits at its position by `STOP_MARGIN`."""
    import torch

    logits, labels = logits[:, :-1, :], labels[:, 1:]
    where = labels != -100
    target = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, labels.clamp(min=0).unsqueeze(-1), float("-inf")).amax(-1)
    return bool(torch.all((target - others)[where] > STOP_MARGIN))
