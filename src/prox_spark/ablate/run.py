"""`prox-spark ablate CONFIG`: token-matched proxy models on each variant of
a corpus, scored along training, in a Delta results table and an HTML report.

    >>> summary = run_ablation("conf/ablate.yaml")  # doctest: +SKIP
    >>> print(plan_ablation("conf/ablate.yaml").render())  # doctest: +SKIP

The steps, each resumable: sample every variant (`ablate.data`), train or
reuse the shared tokenizer, then for each (variant, seed) train a proxy
(`ablate.proxy`; a finished one is never trained again), score each of its
checkpoints with lm-eval (`ablate.evaluate`), write the rows
(`ablate.results`) and finally the report (`ablate.report`). A proxy is
trained by one run at a time (a lock file in its folder); a second run waits
for it, then finds its rows written.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prox_spark.ablate import report, stats
from prox_spark.ablate.config import AblateConfig, load_ablate_config, parameter_count
from prox_spark.ablate.data import (
    VariantStats,
    reference_documents,
    reference_jsonl,
    sample_variant,
    save_sample,
    texts_for_tokenizer,
    variant_documents,
    without_reference,
)
from prox_spark.ablate.evaluate import REFERENCE_TASK, Suite
from prox_spark.ablate.proxy import (
    DONE_FILE,
    ProxyJob,
    points,
    schedule,
    strip_optimizer_states,
    tokens_per_step,
    train_proxy,
)
from prox_spark.ablate.results import measured_flops_per_second, read_rows, write_rows
from prox_spark.distill.tokenizer import build_tokenizer
from prox_spark.errors import ConfigError
from prox_spark.session import job_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# Training throughput assumed by the plan before this cluster has trained a
# proxy: 6 x 7M parameters x 3,500 tokens/s, a 7M-parameter Llama on 2 CPU
# cores (judging-data.md, measured 2026-11). A GPU is 100-1000x this.
DEFAULT_FLOPS_PER_SECOND = 1.5e11
TOKENIZER_CHARS_PER_TOKEN = 4
TOKENIZER_MAX_CHARS = 50_000_000


@dataclass(frozen=True)
class Proxy:
    """One (variant, seed): its training folder and fingerprints."""

    variant: str
    seed: int
    folder: str
    data_path: str
    train_fingerprint: str
    fingerprint: str
    epochs: float


@dataclass
class AblationPlan:
    """What an ablation trains, before it trains: per variant what it holds
    and what is sampled, the proxy size, steps, FLOPs and the time they take
    at `flops_per_second` (`measured` says whether this cluster measured it)."""

    config: AblateConfig
    variants: list[VariantStats]
    parameters: int
    vocab_size: int
    steps: int
    evaluation_points: int
    tasks: tuple[str, ...]
    flops_per_second: float
    measured: bool

    @property
    def flops_per_variant(self) -> float:
        """6 x parameters x tokens x seeds (Kaplan et al.'s training FLOPs)."""
        return 6.0 * self.parameters * self.config.tokens * len(self.config.seeds)

    def render(self) -> str:
        c = self.config
        hours = self.flops_per_variant * len(self.variants) / self.flops_per_second / 3600
        lines = [
            f"ablation plan: {len(self.variants)} variants x {len(c.seeds)} seeds "
            f"({', '.join(map(str, c.seeds))}); baseline {c.baseline!r}",
            f"proxy: Llama {c.model.layers} layers, hidden {c.model.hidden_size}, "
            f"{c.model.heads} heads, seq_len {c.model.seq_len}, vocab {self.vocab_size:,}: "
            f"{self.parameters:,} parameters",
            f"training: {c.tokens:,} tokens per proxy = {self.steps:,} steps of "
            f"{tokens_per_step(c.model, c.train):,} tokens; {self.evaluation_points} evaluation "
            f"points; tasks: {', '.join(self.tasks) or '(none)'}",
        ]
        for v in self.variants:
            repeat = f", repeated {v.epochs:.2f} epochs" if v.epochs > 1 else \
                f", {v.epochs:.1%} of what it holds"
            lines.append(
                f"  {v.name}: {v.documents:,} documents, {v.tokens:,} tokens available "
                f"({v.skipped:,} records not used: error rows, no text or not in the corpus; "
                f"{v.excluded:,} in the reference set excluded); sampled "
                f"{v.sampled_documents:,} documents, {v.sampled_tokens:,} tokens{repeat}; "
                f"{self.flops_per_variant:.3g} training FLOPs")
        source = "measured on this cluster" if self.measured else \
            "a stated default for 2 CPU cores; no proxy trained here yet"
        lines.append(f"total: {self.flops_per_variant * len(self.variants):.3g} FLOPs, about "
                     f"{_duration(hours)} at {self.flops_per_second:.3g} FLOP/s ({source}); "
                     "evaluation not included")
        return "\n".join(lines)


@dataclass
class AblationSummary:
    """What a run did: the plan, proxies trained, reused, or trained by an
    earlier run and only scored now (`scored`), rows written,
    the final comparison lines and the report's path."""

    plan: AblationPlan
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    scored: list[str] = field(default_factory=list)
    evaluated_points: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None
    comparison: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [self.plan.render(),
                 f"proxies trained: {', '.join(self.trained) or 'none'}; reused (finished "
                 f"before): {', '.join(self.reused) or 'none'}; "
                 + (f"trained before, only scored now: {', '.join(self.scored)}; "
                    if self.scored else "")
                 + f"checkpoints evaluated: {self.evaluated_points}",
                 *self.comparison,
                 f"results table: {self.plan.config.output} ({len(self.rows)} rows of this "
                 "ablation)"]
        if self.report:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


def _duration(hours: float) -> str:
    if hours < 1 / 3600:
        return "under a second"
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _config(config: AblateConfig | str | Path) -> AblateConfig:
    return config if isinstance(config, AblateConfig) else load_ablate_config(config)


def _spark(config: AblateConfig) -> SparkSession:
    return job_session("prox-spark-ablate", config.partitions, config.spark_conf)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Prepared:
    """The shared inputs of a plan or a run: reference, tokenizer, samples."""

    def __init__(self, spark: SparkSession, config: AblateConfig, folder: Path) -> None:
        self.spark, self.config, self.folder = spark, config, folder
        self.reference: DataFrame | None = None
        if config.eval.reference is not None:
            self.reference = reference_documents(spark, config.eval.reference).cache()
        self.tokenizer_dir = self._tokenizer()
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer_dir))
        if self.tokenizer.eos_token_id is None:
            raise ConfigError("ablate.tokenizer", f"{self.tokenizer_dir}: the tokenizer has no "
                                                  "EOS token (documents are separated by it)")
        self.samples: list[tuple[Path, str, VariantStats]] = []
        for index, variant in enumerate(config.variants):
            array, stats = sample_variant(spark, config, index, self.tokenizer, self.reference)
            path, digest = save_sample(array, folder / "samples", variant.name)
            self.samples.append((path, digest, stats))
            log.info("variant %s: %s tokens sampled from %s documents", variant.name,
                     f"{stats.sampled_tokens:,}", f"{stats.sampled_documents:,}")

    def _tokenizer(self) -> Path:
        config = self.config
        if config.tokenizer is not None:
            return Path(config.tokenizer)
        chars = min(config.tokens * TOKENIZER_CHARS_PER_TOKEN, TOKENIZER_MAX_CHARS)
        corpus: list[str] = []
        for index, variant in enumerate(config.variants):
            docs, _ = variant_documents(self.spark, variant, f"ablate.variants[{index}]")
            texts = texts_for_tokenizer(without_reference(docs, self.reference), chars)
            if not texts:  # found before the tokenizer is trained, not after
                raise ConfigError(f"ablate.variants[{index}]", f"variant {variant.name!r} "
                                  "holds no document with text (outside the reference set)")
            corpus += texts
        key = _digest([config.model.vocab_size, hashlib.sha256(
            "\x00".join(corpus).encode("utf-8", "replace")).hexdigest()])[:12]
        path = self.folder / f"tokenizer-{key}"
        if not (path / "tokenizer.json").is_file():
            log.info("training the shared BPE tokenizer (at most %s tokens) on %s documents",
                     f"{config.model.vocab_size:,}", f"{len(corpus):,}")
            tmp = self.folder / f".tokenizer-{key}.{os.getpid()}.tmp"
            build_tokenizer(tmp, corpus, config.model.vocab_size)
            try:
                tmp.replace(path)
            except OSError:  # another run put the same tokenizer there first
                shutil.rmtree(tmp, ignore_errors=True)
        return path


def _plan(config: AblateConfig, prepared: _Prepared, suite_names: Sequence[str],
          rows: Sequence[Mapping[str, Any]]) -> AblationPlan:
    vocab = len(prepared.tokenizer)
    measured = measured_flops_per_second(rows)
    return AblationPlan(
        config=config, variants=[s for _, _, s in prepared.samples],
        parameters=parameter_count(config.model, vocab), vocab_size=vocab,
        steps=schedule(config.tokens, config.model, config.train)[-1][0],
        evaluation_points=len(schedule(config.tokens, config.model, config.train)),
        tasks=tuple(suite_names), flops_per_second=measured or DEFAULT_FLOPS_PER_SECOND,
        measured=measured is not None)


def plan_ablation(config: AblateConfig | str | Path,
                  spark: SparkSession | None = None) -> AblationPlan:
    """What `run_ablation` would train, writing nothing (a tokenizer trained
    for the plan lives in a temporary folder)."""
    config = _config(config)
    suite = Suite(config.eval, "reference.jsonl" if config.eval.reference else None)
    spark = spark or _spark(config)
    rows = read_rows(spark, config.output)
    with tempfile.TemporaryDirectory(prefix="prox-ablate-plan-") as tmp:
        prepared = _Prepared(spark, config, Path(tmp))
        return _plan(config, prepared, suite.names, rows)


def run_ablation(config: AblateConfig | str | Path,
                 spark: SparkSession | None = None) -> AblationSummary:
    """Run (or resume) an ablation; returns its summary. Raises ConfigError
    for a setting that cannot work (nothing written), RuntimeError when a
    proxy's training or evaluation fails (finished proxies and written rows
    are kept: run again to resume)."""
    config = _config(config)
    work = Path(config.work_dir)
    reference_path = str(work / "reference.jsonl") if config.eval.reference else None
    suite = Suite(config.eval, reference_path)
    spark = spark or _spark(config)
    created = _first_missing(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        prepared = _Prepared(spark, config, work)
    except ConfigError:
        if created is not None:  # a setting found wrong while reading: leave nothing behind
            shutil.rmtree(created, ignore_errors=True)
        raise
    if prepared.reference is not None and reference_path is not None:
        reference_jsonl(prepared.reference, config.eval.limit, Path(reference_path))
    eval_key = _eval_key(config, suite, reference_path)
    proxies = _proxies(config, prepared, eval_key)
    rows = read_rows(spark, config.output, [p.fingerprint for p in proxies])
    summary = AblationSummary(_plan(config, prepared, suite.names, read_rows(spark,
                                                                           config.output)))
    expected = _expected_keys(config, suite.names)
    for proxy in proxies:
        label = f"{proxy.variant}/seed {proxy.seed}"
        if _complete(rows, proxy.fingerprint, expected):
            summary.reused.append(label)
            continue
        with _lock(Path(proxy.folder)):
            rows = read_rows(spark, config.output, [p.fingerprint for p in proxies])
            if _complete(rows, proxy.fingerprint, expected):
                summary.reused.append(label)
                continue
            trained_before = (Path(proxy.folder) / DONE_FILE).is_file()
            summary.evaluated_points += _train_and_score(
                spark, config, prepared, suite, proxy, summary.plan.parameters, rows, expected)
            (summary.scored if trained_before else summary.trained).append(label)
    summary.rows = read_rows(spark, config.output, [p.fingerprint for p in proxies])
    summary.report, summary.comparison = _report(config, summary, suite.skipped_tasks)
    return summary


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (None: all do)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _eval_key(config: AblateConfig, suite: Suite, reference_path: str | None) -> str:
    files = [_file_digest(Path(f.path)) for f in config.eval.task_files]
    reference = _file_digest(Path(reference_path)) if reference_path else None
    return _digest([suite.names, files, reference, config.eval.limit])


def _proxies(config: AblateConfig, prepared: _Prepared, eval_key: str) -> list[Proxy]:
    tokenizer_hash = _digest(json.loads(prepared.tokenizer.backend_tokenizer.to_str()))
    recipe = {"model": asdict(config.model), "tokens": config.tokens,
              "train": {k: v for k, v in asdict(config.train).items()
                        if k not in ("local_mode", "use_gpu")}}
    out = []
    for path, digest, sample in prepared.samples:
        for seed in config.seeds:
            train_fp = _digest([digest, tokenizer_hash, recipe, seed])
            folder = (Path(config.work_dir) / "proxies" / sample.name
                      / f"seed-{seed}-{train_fp[:16]}")
            out.append(Proxy(sample.name, seed, str(folder), str(path), train_fp,
                             _digest([train_fp, eval_key])[:32], sample.epochs))
    return out


def _expected_keys(config: AblateConfig, names: Sequence[str]) -> set[tuple[int, str, str]]:
    metrics = []
    for name in names:
        metrics += [(name, "bits_per_byte")] if name == REFERENCE_TASK else \
            [(name, "acc"), (name, "acc_norm")]
    metrics.append(("train", "loss"))
    return {(tokens, task, metric) for _, tokens in schedule(config.tokens, config.model,
                                                             config.train)
            for task, metric in metrics}


def _complete(rows: Sequence[Mapping[str, Any]], fingerprint: str,
              expected: set[tuple[int, str, str]]) -> bool:
    have = {(r["tokens"], r["task"], r["metric"]) for r in rows
            if r["fingerprint"] == fingerprint}
    return expected <= have


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


@contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """Hold the proxy's lock file (another run training it is waited for)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another run is training the proxy in %s; waiting for it", folder)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _train_and_score(spark: SparkSession, config: AblateConfig, prepared: _Prepared,
                     suite: Suite, proxy: Proxy, parameters: int,
                     rows: Sequence[Mapping[str, Any]],
                     expected: set[tuple[int, str, str]]) -> int:
    """Train the proxy (resuming), then score every checkpoint whose rows
    are missing; returns the checkpoints scored."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    log.info("proxy %s/seed %d: training %s tokens in %s", proxy.variant, proxy.seed,
             f"{config.tokens:,}", proxy.folder)
    train_proxy(ProxyJob(proxy.folder, proxy.data_path, str(prepared.tokenizer_dir),
                         config.tokens, proxy.seed, config.model, config.train))
    found = points(proxy.folder)
    planned = schedule(config.tokens, config.model, config.train)
    if [p["step"] for _, p in found] != [s for s, _ in planned]:
        raise RuntimeError(f"proxy {proxy.folder}: checkpoints at steps "
                           f"{[p['step'] for _, p in found]}, expected {[s for s, _ in planned]}")
    have = {(r["tokens"], r["task"], r["metric"]) for r in rows
            if r["fingerprint"] == proxy.fingerprint}
    scored = 0
    for checkpoint, point in found:
        wanted = {k for k in expected if k[0] == point["tokens"]}
        if wanted <= have:
            continue
        with _quiet_transformers():  # tied lm_head: "missing keys" is expected
            model = AutoModelForCausalLM.from_pretrained(str(checkpoint))
        model.eval()
        scores = suite.score(model, prepared.tokenizer, config.model.seq_len)
        final = point["step"] == planned[-1][0]
        base = {"variant": proxy.variant, "seed": proxy.seed, "fingerprint": proxy.fingerprint,
                "tokens": int(point["tokens"]), "step": int(point["step"]), "final": final,
                "epochs": proxy.epochs, "parameters": parameters,
                "train_seconds": float(point["train_seconds"])}
        out = [{**base, "task": s.task, "metric": s.metric, "value": float(s.value),
                "stderr": s.stderr, "examples": s.examples, "chance": s.chance}
               for s in scores]
        loss = point.get("loss")
        out.append({**base, "task": "train", "metric": "loss",
                    "value": float(loss) if loss is not None and math.isfinite(loss) else None,
                    "stderr": None, "examples": None, "chance": None})
        write_rows(spark, config.output, out)
        scored += 1
        log.info("proxy %s/seed %d: %s tokens scored (%s)", proxy.variant, proxy.seed,
                 f"{point['tokens']:,}", ", ".join(f"{s.task} {s.metric} {s.value:.4f}"
                                                   for s in scores))
    strip_optimizer_states(proxy.folder)
    log.info("proxy %s/seed %d done in %.0f s", proxy.variant, proxy.seed,
             time.perf_counter() - started)
    return scored


def _report(config: AblateConfig, summary: AblationSummary,
            skipped: Sequence[str] = ()) -> tuple[str | None, list[str]]:
    variants = [v.name for v in config.variants]
    rows = summary.rows + stats.aggregate_rows(summary.rows)
    epochs = {v.name: v.epochs for v in summary.plan.variants}
    lines = []
    for task, metric in (("aggregate", "centered_acc"), (REFERENCE_TASK, "bits_per_byte")):
        if not any(r["task"] == task and r["metric"] == metric for r in rows):
            continue
        for c in stats.compare(rows, variants, task, metric):
            if c.diff is None:
                lines.append(f"{task} {metric}: {c.variant} (baseline) {c.mean:.4f}")
            else:
                verdict = "within noise" if c.within_noise else (
                    "better" if c.better else "worse")
                repeated = (f" (its sample repeated {epochs[c.variant]:.1f} times)"
                            if epochs.get(c.variant, 0) > 1 else "")
                lines.append(f"{task} {metric}: {c.variant} {c.mean:.4f}, {c.diff:+.4f} vs the "
                             f"baseline (95% interval {c.low:+.4f} to {c.high:+.4f}): {verdict}"
                             f"{repeated}")
    meta = {
        "title": f"prox-spark ablation: {', '.join(variants)}",
        "output": str(config.output), "tokens": config.tokens, "seeds": list(config.seeds),
        "model": {**asdict(config.model), "vocab_size": summary.plan.vocab_size,
                  "intermediate_size": config.model.intermediate_size
                  or 4 * config.model.hidden_size},
        "parameters": summary.plan.parameters,
        "epochs": {v.name: v.epochs for v in summary.plan.variants},
        "notes": _notes(summary.plan, skipped),
        "settings": {"train": asdict(config.train), "tokens": config.tokens,
                     "seeds": list(config.seeds), "eval_limit": config.eval.limit,
                     "tasks": list(summary.plan.tasks), "work_dir": config.work_dir},
    }
    path = report.write_report(config.report_path, summary.rows, variants, meta)
    return str(path), lines


def _notes(plan: AblationPlan, skipped: Sequence[str] = ()) -> list[str]:
    seeds = len(plan.config.seeds)
    notes = [f"Each proxy has {plan.parameters:,} parameters and sees "
             f"{plan.config.tokens:,} tokens. " + (
                 f"Intervals combine the spread over {seeds} seeds (Student's t) with the "
                 "sampling error over examples." if seeds > 1 else
                 "One seed: intervals hold the sampling error over examples only, not the "
                 "seed-to-seed noise; run two or more seeds before trusting a difference.")]
    repeated = [f"{v.name} ({v.epochs:.1f} times)" for v in plan.variants if v.epochs > 1]
    if repeated:
        notes.append("Repeated samples (allow_repeat): " + ", ".join(repeated) + ". A variant "
                     "that saw its text many times is not compared on equal terms.")
    if plan.parameters < 100_000_000 or plan.config.tokens < 1_000_000_000:
        notes.append("At this size bits per byte on clean reference text separates a noisy "
                     "corpus from a clean one; benchmark accuracy stays near chance. The "
                     "ProX and FineWeb ablations use 0.3-1.8B-parameter proxies and 10-30B "
                     "tokens for accuracy differences of about 1-2 points.")
    if skipped:
        notes.append(f"Not run: the default early-signal tasks ({', '.join(skipped)}) need "
                     "the Hugging Face hub, which could not be reached.")
    return notes
