"""Rewrite the README's stage parameter and run settings tables from the
declarations (the stages' parameters; the config sections' fields).

    python scripts/stage_table.py          # rewrite README.md in place
    python scripts/stage_table.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from prox_spark.config import SETTINGS_END, SETTINGS_START, settings_table
from prox_spark.stages.registry import TABLE_END, TABLE_START, parameter_table

README = Path(__file__).resolve().parent.parent / "README.md"


def main(argv: list[str]) -> int:
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
