"""The straightforward chunking rule of docs section 4, one `encode` per line.

Kept deliberately plain: it is the yardstick `chunk_document` must match byte
for byte (tests) and beat on speed (benchmarks/chunking_throughput.py).
"""

from __future__ import annotations


def naive_chunks(text: str, tokenizer, max_tokens: int = 1500) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    total = 0
    for i, line in enumerate(text.split("\n")):
        numbered = f"[{i:03d}]{line}"
        count = len(tokenizer.encode(numbered))
        if current and total + count > max_tokens:
            chunks.append("\n".join(current))
            current, total = [], 0
        current.append(numbered)
        total += count
    if current:
        chunks.append("\n".join(current))
    return chunks
