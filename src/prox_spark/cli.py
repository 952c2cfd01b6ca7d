"""`prox-spark run | plan | report | annotate | train | evaluate | ablate`: the command line.

Exit codes: 0 success, 1 the job failed (the cause is printed), 2 the
configuration is wrong (nothing was written), 3 concurrent writers kept
winning the commit of a batch (committed batches are kept; run again),
130 interrupted (Ctrl-C; committed batches are kept; run again), 143
stopped by SIGTERM (a scheduler cancelling the job; the same).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prox_spark import __version__
from prox_spark.ablate import load_ablate_config, plan_ablation, run_ablation
from prox_spark.config import FORMATS, OVERRIDES, PipelineConfig, load_config
from prox_spark.distill.annotate import annotate
from prox_spark.distill.jobs import evaluate, train
from prox_spark.distill.section import distill_config
from prox_spark.errors import ConfigError, describe, exit_code
from prox_spark.generation.logs import VERBOSE_ENV, route_library_output
from prox_spark.io.delta import table_exists
from prox_spark.refs import TableRef, is_delta_dir
from prox_spark.report.page import NoRunError, write_report
from prox_spark.run.dry_run import dry_run
from prox_spark.run.job import run_pipeline, session_for
from prox_spark.session import get_spark, persistent_ref


def _job_options(cmd: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The config file and the options that override where its job reads,
    writes and which models it uses (`run` and `plan` share them)."""
    cmd.add_argument("config", help="YAML file, e.g. conf/local.yaml")
    cmd.add_argument("--input", help="source table path (overrides input.path)")
    cmd.add_argument("--input-format", choices=FORMATS, help="overrides input.format")
    cmd.add_argument("--output", help="refined Delta table path (overrides output.path)")
    cmd.add_argument("--doc-model", help="doc-level model directory or hub id")
    cmd.add_argument("--chunk-model", help="chunk-level model directory or hub id")
    return cmd


def _spark_conf_option(cmd: argparse.ArgumentParser, more: str = "") -> None:
    cmd.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                     help=f"a Spark setting for a local session (repeatable{more})")


def _run_parsers(sub: Any) -> None:
    """`run` and `plan`: the refinement job and its dry run."""
    run = _job_options(sub.add_parser("run", help="run the refinement job of a YAML config"))
    # --limit N and --all contradict each other: argparse refuses the pair
    # (exit 2, naming both) before anything is read or written.
    amount = run.add_mutually_exclusive_group()
    amount.add_argument("--limit", type=int,
                        help="refine at most N of the pending documents (those not yet refined)")
    run.add_argument("--commit-every", type=int,
                     help="commit to the refined table every N documents (overrides "
                          "commit_every)")
    amount.add_argument("--all", action="store_true",
                        help="refine every pending document even without a GPU (see "
                             "cpu_sample)")
    _spark_conf_option(run, "; adds to spark.conf")
    plan = _job_options(sub.add_parser(
        "plan", help="what `run` would do (documents, model answers vs stored output reused, "
                     "prompt tokens), writing nothing"))
    plan_amount = plan.add_mutually_exclusive_group()
    plan_amount.add_argument("--limit", type=int, help="as for run")
    plan_amount.add_argument("--all", action="store_true", help="as for run")
    plan.add_argument("--commit-every", type=int, help="as for run (the batches line)")
    plan.add_argument("--prompt-tokens-per-second", type=float,
                      help="one GPU's prompt-token throughput for the GPU-hour figures "
                           "(default: a stated 300,000; see prox_spark.run.dry_run)")
    _spark_conf_option(plan)


def _report_parser(sub: Any) -> None:
    """`report`: a past run's HTML report, from the tables alone."""
    report = sub.add_parser("report", help="write the HTML report of a past run again")
    report.add_argument("output", help="the refined Delta table's path (metrics next to it), "
                                       "or the path of its metrics table")
    report.add_argument("--run", type=int, help="run number, 1 = the first (default: the last)")
    report.add_argument("--sample", type=int, default=3, help="documents shown per status")
    report.add_argument("--seed", type=int, default=0, help="seed of the document sample")
    report.add_argument("--out", help="the HTML file (default: <output>_reports/<run time>.html)")


def _refiner_parsers(sub: Any) -> None:
    """`annotate`, `train`, `evaluate` (making a refiner) and `ablate`."""
    for name, text in (
        ("annotate", "label a sample of the input with the distill teacher into the SFT table"),
        ("train", "fine-tune the student refiner on the SFT table (distill.student)"),
        ("evaluate", "score the student against its teacher on the SFT table's eval split"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("config", help="YAML file with a distill: section, e.g. "
                                        "conf/starter.yaml")
        _spark_conf_option(cmd)
        if name == "evaluate":
            cmd.add_argument("--model", help="the model to score (default: "
                                             "distill.student.output_dir)")
    ablate = sub.add_parser(
        "ablate", help="train token-matched proxy models on each variant of a corpus and "
                       "compare them (the YAML's ablate: section)")
    ablate.add_argument("config", help="YAML file with an ablate: section, e.g. "
                                       "conf/ablate.yaml")
    ablate.add_argument("--plan", action="store_true",
                        help="print what would be trained (documents, tokens, parameters, "
                             "FLOPs, time), writing nothing")
    _spark_conf_option(ablate)


def build_parser() -> argparse.ArgumentParser:
    """The `prox-spark` argument parser: one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="prox-spark", description="Refine a text corpus the ProX way on Spark."
    )
    parser.add_argument("--version", action="version", version=f"prox-spark {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parsers(sub)
    _report_parser(sub)
    _refiner_parsers(sub)
    for cmd in sub.choices.values():
        cmd.add_argument("--verbose", action="store_true",
                         help="show what vLLM, torch, transformers and Spark say while they set "
                              "up and work (default: only their errors; the rest goes to the "
                              "engine log, PROX_SPARK_ENGINE_LOG)")
    return parser


def ablate_main(args: argparse.Namespace) -> int:
    """`prox-spark ablate CONFIG [--plan]`: proxy-model ablations."""
    try:
        config = load_ablate_config(args.config, spark_conf=_spark_conf(args.spark_conf))
        if args.plan:
            print(plan_ablation(config).render())
            return 0
        _install_handlers()
        print(run_ablation(config).render())
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if _INTERRUPTED:
            raise KeyboardInterrupt from None
        return _failed("ablate", exc)
    return 0


def _failed(command: str, exc: Exception, hint: str = "") -> int:
    """Say in one line on stderr why `command` failed (`hint` follows a
    failure that is not the user's to fix); the exit code from
    `errors.exit_code` (the traceback goes to the debug log)."""
    code = exit_code(exc)
    if code == 1:
        logging.getLogger(__name__).debug("%s failed", command, exc_info=True)
    print(describe(command, exc) + (hint if code == 1 else ""), file=sys.stderr)
    return code


def distill_main(args: argparse.Namespace) -> int:
    """`prox-spark annotate | train | evaluate CONFIG`: making a refiner."""
    try:
        overrides = {"spark_conf": _spark_conf(args.spark_conf)}
        config = load_config(args.config, overrides, check_models=False)
        if config.distill is None:
            raise ConfigError("distill", f"{args.config} has no `distill:` section")
        distill_config(config)  # its errors before a session starts
        if args.command == "annotate":
            print(annotate(config).render())
        elif args.command == "train":
            result = train(config)
            print(f"trained {result.model_dir}: {result.steps} steps, final loss "
                  f"{result.losses[-1][1] if result.losses else float('nan'):.4f}, "
                  f"{result.train_tokens:,} tokens in {result.seconds:.0f} s"
                  + (f" (resumed from {result.resumed_from})" if result.resumed_from else ""))
        else:
            print(evaluate(config, model=args.model).render())
    except Exception as exc:
        return _failed(args.command, exc)
    return 0


METRICS_SUFFIX = "_metrics"


def refined_table_of(path: Path) -> Path:
    """The refined table that `prox-spark report PATH` means: PATH itself, or,
    when PATH is the metrics table `<refined>_metrics` (and has no metrics
    table of its own), `<refined>`.

    Raises ConfigError (field `output`) when neither is a Delta table.
    """
    path = path.expanduser().resolve()
    if is_delta_dir(path.with_name(path.name + METRICS_SUFFIX)):
        return path
    if path.name.endswith(METRICS_SUFFIX) and is_delta_dir(path):
        refined = path.with_name(path.name.removesuffix(METRICS_SUFFIX))
        if is_delta_dir(refined):
            return refined
        raise ConfigError("output", f"{path} looks like a metrics table, but its refined "
                                    f"table {refined} is not a Delta table")
    if not is_delta_dir(path):
        raise ConfigError("output", f"{path} is not a Delta table")
    return path


def report_main(args: argparse.Namespace) -> int:
    """`prox-spark report OUTPUT`: the report of a run, from the tables alone."""
    try:
        output = str(refined_table_of(Path(args.output)))
    except ConfigError as exc:
        print(f"prox-spark: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.sample < 0:
        print("prox-spark: configuration error: --sample: must be 0 or more", file=sys.stderr)
        return 2
    spark = get_spark("prox-spark-report")
    try:
        path = write_report(spark, TableRef(path=output), TableRef(path=f"{output}_metrics"),
                            run=args.run, sample=args.sample, seed=args.seed, path=args.out)
    except NoRunError as exc:
        print(f"prox-spark: configuration error: --run: {exc}", file=sys.stderr)
        return 2
    print(f"run report: {path}")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config overrides `run` and `plan` take as flags (see `config.OVERRIDES`)."""
    return {key: getattr(args, key) for key in OVERRIDES}


def _spark_conf(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().startswith("spark."):
            raise ConfigError("--spark-conf", f"expected spark.KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv`; returns the exit code (see the module doc)."""
    _INTERRUPTED.clear()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        signum = _INTERRUPTED[0] if _INTERRUPTED else signal.SIGINT
        what = "stopped by SIGTERM" if signum == signal.SIGTERM else "interrupted"
        print(f"prox-spark: {what}; batches committed before are kept (run again to "
              "resume)", file=sys.stderr)
        return 128 + int(signum)
    finally:
        _restore_handlers()


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        # Read in this process and in the processes it starts (the local
        # session's Python workers, training processes), which inherit it.
        os.environ[VERBOSE_ENV] = "1"
    route_library_output()
    logging.basicConfig(level=logging.INFO, format="[prox-spark] %(message)s", stream=sys.stderr)
    # py4j's connection chatter (and its tracebacks when Ctrl-C cuts a call)
    # is not the run's; its failures reach us as exceptions.
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    if args.command == "report":
        return report_main(args)
    if args.command in ("annotate", "train", "evaluate"):
        return distill_main(args)
    if args.command == "plan":
        return plan_main(args)
    if args.command == "ablate":
        return ablate_main(args)
    try:
        config = _job_config(args)
    except ConfigError as exc:
        return _failed("run", exc)
    try:
        # A scheduler cancelling the job sends SIGTERM: the same clean end as
        # Ctrl-C, from before the session starts (its temporary folder is
        # removed at exit, which a default-handled SIGTERM would skip).
        _install_handlers()
        spark = session_for(config)
        # PySpark's own Ctrl-C handler calls into the JVM from inside a JVM
        # call and breaks the connection; a plain KeyboardInterrupt ends the
        # run cleanly (a batch commit is atomic, committed batches stay).
        # Starting the session put PySpark's handler in place: ours again.
        _install_handlers()
        summary = run_pipeline(config, spark)
    except Exception as exc:
        if _INTERRUPTED and exit_code(exc) == 1:
            # py4j turns a KeyboardInterrupt inside a JVM call into its own
            # network error; the run was interrupted all the same.
            raise KeyboardInterrupt from None
        return _failed("the job", exc, " (batches committed before the failure are kept; "
                       "run again to resume)")
    print(summary.render())
    _print_tables(config)
    return 0


def _job_config(args: argparse.Namespace) -> PipelineConfig:
    """The config `run` and `plan` use: the file with the command line's
    overrides. A `distill:` section is checked too (distill parses its own
    section), so a typo there is refused now, not at the next `annotate`."""
    overrides = {**_overrides(args), "spark_conf": _spark_conf(args.spark_conf)}
    config = load_config(args.config, overrides)
    if config.distill is not None:
        distill_config(config)
    return config


def plan_main(args: argparse.Namespace) -> int:
    """`prox-spark plan CONFIG`: a dry run (see `prox_spark.run.dry_run`)."""
    rate = args.prompt_tokens_per_second
    try:
        if rate is not None and not 0 < rate < float("inf"):
            raise ConfigError("--prompt-tokens-per-second", "must be a positive, finite number")
        config = _job_config(args)
        print(dry_run(config, tokens_per_second=rate).render())
    except Exception as exc:
        return _failed("plan", exc)
    return 0


_INTERRUPTED: list[int] = []
_PREVIOUS: dict[int, Any] = {}


def _interrupt(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: remember which (see `main`, `_main`) and raise
    KeyboardInterrupt. A SIGTERM after the first signal (schedulers repeat
    it during their grace period) is ignored, so the clean end is not cut."""
    repeat = bool(_INTERRUPTED)
    _INTERRUPTED.append(signum)
    if repeat and signum == signal.SIGTERM:
        return
    raise KeyboardInterrupt


def _install_handlers() -> None:
    """`_interrupt` for SIGINT and SIGTERM for the run, keeping the handlers
    they replace for `_restore_handlers` (a caller's process, e.g. a notebook
    or a test calling `main`, gets its own back)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        _PREVIOUS.setdefault(signum, signal.getsignal(signum))
        signal.signal(signum, _interrupt)


def _restore_handlers() -> None:
    for signum, handler in _PREVIOUS.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    _PREVIOUS.clear()


def _print_tables(config: PipelineConfig) -> None:
    """Where the run's tables are, naming only tables that exist."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    for what, ref in (("refined table", config.output), ("metrics table", config.metrics)):
        if spark is not None:
            ref = persistent_ref(spark, ref)
            if not table_exists(spark, ref):
                print(f"{what}: none written")
                continue
        print(f"{what}: {ref}")


if __name__ == "__main__":
    raise SystemExit(main())
