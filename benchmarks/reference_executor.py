"""A re-creation, for comparison only, of the *algorithm* the public reference
executor uses (docs section 3): arguments split on "," and "=", the call ended
by the first ")", ranges merged. It has the defects prox-spark avoids; it is
here as the speed baseline of `interpreter_throughput.py`, nothing more."""

from __future__ import annotations


def reference_chunk(text: str, program: str) -> str:
    lines = text.split("\n")
    ranges = []
    errors = 0
    for line in program.split("\n"):
        if line.startswith("normalize("):
            body = line[len("normalize("): line.find(")")]
            parts = [p.split("=")[-1].strip().strip('"') for p in body.split(",")]
            if len(parts) == 2:
                text = text.replace(parts[0], parts[1])
                lines = text.split("\n")
            else:
                errors += 1
        elif line.startswith("remove_lines("):
            body = line[len("remove_lines("): line.find(")")]
            try:
                a, b = (int(p.split("=")[-1]) for p in body.split(","))
                ranges.append((a, b))
            except ValueError:
                errors += 1
    if errors >= 2:
        return text
    drop: set[int] = set()
    for a, b in ranges:
        drop.update(range(a, min(b, len(lines) - 1) + 1))
    refined = "\n".join(line for i, line in enumerate(lines) if i not in drop)
    before = len(text.split())
    after = len(refined.split())
    if after / before <= 0.05 or after <= 10:
        return ""
    return refined
