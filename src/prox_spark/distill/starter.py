"""Is a config's refiner reachable? The test `scripts/main.sh` runs before it
falls back to the starter refiner (`scripts/build_starter.sh`).

    python -m prox_spark.distill.starter --reachable conf/local.yaml

Exit 0 when every model the config names is a local model directory or can
be fetched from the Hugging Face hub, 1 (with the reason on stderr) when
not, 2 when the config itself is wrong. Only the main job's script falls
back; `prox-spark run` never does: an unreachable model in a production
config stays a configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from prox_spark.config import ConfigError, load_config


def reachable(config_path: str) -> str | None:
    """None when the config's models can be loaded, else why not. Every
    other problem of the config is a `ConfigError` first, so a typo is named
    before a fallback is built."""
    load_config(config_path, check_paths=False, check_models=False)
    try:
        load_config(config_path, check_paths=False)
    except ConfigError as exc:
        if exc.field.endswith(".model"):
            return str(exc)
        raise
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """The `--reachable CONFIG` command line; its exit code (0, 1 or 2)."""
    parser = argparse.ArgumentParser(prog="python -m prox_spark.distill.starter")
    parser.add_argument("--reachable", metavar="CONFIG", required=True,
                        help="exit 0 when the config's models can be loaded, else 1")
    args = parser.parse_args(argv)
    try:
        why = reachable(args.reachable)
    except ConfigError as exc:
        print(f"prox-spark: configuration error: {exc}", file=sys.stderr)
        return 2
    if why is not None:
        print(f"[main] {why.split('. Point')[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
