"""Rewrite the README's stage parameter table from the stage declarations.

    python scripts/stage_table.py          # rewrite README.md in place
    python scripts/stage_table.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from prox_spark.stages.registry import TABLE_END, TABLE_START, parameter_table

README = Path(__file__).resolve().parent.parent / "README.md"


def main(argv: list[str]) -> int:
    text = README.read_text()
    start, end = text.index(TABLE_START), text.index(TABLE_END) + len(TABLE_END)
    new = text[:start] + parameter_table() + text[end:]
    if "--check" in argv:
        if new != text:
            print("README.md's stage parameter table is out of date: "
                  "run python scripts/stage_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
