"""Generated web-like documents and chunk programs for benchmarks (deterministic)."""

from __future__ import annotations

import argparse
import itertools
import random

NAV = ["Home | About | Contact | Blog", "Skip to content", "Menu", "Search this site",
       "Sign in | Register", "Share on Facebook Twitter Email"]
FOOT = ["Copyright 2024 Example Media. All rights reserved.", "Privacy Policy | Terms of Use",
        "We use cookies to improve your experience. Accept", "Follow us on social media"]
WORDS = ("river valley town market history people water season light winter harvest "
         "school music road bridge garden story family letter museum station paper "
         "science energy forest mountain coast island village festival recipe bread").split()


SYLLABLES = ("ka to ri men sa lo ve na tur pi gel or an es ith qu bra dem fol "
             "hy str ow ix el um pa ro ne si").split()
PUNCT = ["", "", "", "", ",", ".", ";", ":", "!", "?", ")", "'s"]


def _vocabulary(size: int = 30000, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = list(WORDS)
    while len(words) < size:
        words.append("".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))))
    return words


VOCABULARY = _vocabulary()
# Zipf-like word frequencies, as in natural text.
ZIPF = [1.0 / (rank + 1) for rank in range(len(VOCABULARY))]
# Cumulative once: `choices(weights=...)` would rebuild it on every call (same draws).
ZIPF_CUMULATIVE = list(itertools.accumulate(ZIPF))


def sentence(rng: random.Random) -> str:
    words = rng.choices(VOCABULARY, cum_weights=ZIPF_CUMULATIVE, k=rng.randint(8, 22))
    words = [w.capitalize() if rng.random() < 0.08 else w for w in words]
    words = [w + rng.choice(PUNCT) for w in words]
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), str(rng.randint(0, 100000)))
    return " ".join(words).capitalize() + "."


def document(rng: random.Random) -> tuple[str, str]:
    """A document of tens of lines and a program of a handful of calls for it."""
    head = rng.sample(NAV, rng.randint(1, 4))
    body = [" ".join(sentence(rng) for _ in range(rng.randint(1, 5)))
            for _ in range(rng.randint(15, 60))]
    url = f"http://example.com/page?id={rng.randint(1, 10**6)}, ref=home"
    body[rng.randrange(len(body))] += f" Source: {url}"
    foot = rng.sample(FOOT, rng.randint(1, 3))
    lines = head + body + foot
    n = len(lines)
    calls = [f"remove_lines(line_start=0, line_end={len(head) - 1})",
             f'normalize(source_str=" Source: {url}", target_str="")',
             f"remove_lines(line_start={n - len(foot)}, line_end={n - 1})"]
    if rng.random() < 0.5:
        calls.append('normalize(source_str="Click here", target_str="")')
    if rng.random() < 0.3:
        calls.append("keep_chunk()")
    return "\n".join(lines), "\n".join(calls)


def corpus(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [document(rng) for _ in range(n)]


def int_options(description: str | None, **defaults: int) -> argparse.Namespace:
    """Parse `--name N` command-line options, one per keyword, with its default
    (a benchmark's sizes: documents, repeats, cores)."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    return parser.parse_args()
