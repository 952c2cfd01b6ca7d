"""Model outputs shaped to make a parser slow, for tests and benchmarks.

Each shape grows with `n` (number of repeated calls or fragments); a parser
linear in the program's length takes time proportional to `n` on all of them.
"""

from __future__ import annotations


def hostile_programs(n: int) -> dict[str, str]:
    """Name -> program text of about `n` repetitions (1 MB string: `50 * n` chars)."""
    return {
        "calls on one line": "remove_lines(line_start=0, line_end=1) " * n,
        "unclosed normalize( on one line": "normalize(" * n,
        "unclosed strings on one line": 'normalize("' * n,
        "triple quotes across lines": 'normalize("""x\n' * n,
        "triple quotes on one line": "normalize('''" * n,
        "long string argument": 'normalize(source_str="' + "a" * (50 * n) + '", target_str="")',
        "bare names on one line": "remove_lines " * n,
        "bare names after a comment": "keep_chunk()  # " + "drop_doc " * n,
        "bare names, one per line": "drop_doc\n" * n,
        "calls and bare names on one line": "keep_chunk() drop_doc " * n,
        "long number": "remove_lines(" + "1" * (50 * n) + "x",
        "long blank before no call": "drop_doc" + " " * (50 * n) + "x",
    }
