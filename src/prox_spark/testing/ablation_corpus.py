"""A corpus made on the spot for ablation tests and benchmarks: clean prose
documents, and the same documents with web boilerplate injected (navigation
lines, cookie banners, "click here" lines, share bars), deterministic by seed.

    >>> clean = prose_documents(2, seed=1)
    >>> noisy = with_boilerplate(clean, share=0.4, seed=1)
    >>> len(noisy[0]["text"].splitlines()) > len(clean[0]["text"].splitlines())
    True
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

_SUBJECTS = ("The farmer", "A young engineer", "The old captain", "Our neighbour", "The teacher",
             "A travelling merchant", "The village doctor", "The baker", "A curious child",
             "The librarian", "The mayor", "A retired sailor")
_VERBS = ("repaired", "described", "carried", "painted", "studied", "measured", "planted",
          "visited", "remembered", "explained", "discovered", "collected")
_OBJECTS = ("the wooden bridge", "a small garden", "the river bank", "an old map",
            "the stone tower", "a basket of apples", "the winter road", "a quiet harbour",
            "the northern forest", "a broken clock", "the market square", "a field of barley")
_TAILS = ("before the first snow", "after a long journey", "with great care",
          "during the summer fair", "while the bells rang", "under a grey sky",
          "for the whole village", "in the early morning", "without any help",
          "as the tide turned")
_JOINS = ("Later,", "Because of this,", "Many years ago,", "In the evening,", "Even so,",
          "At first,")
BOILERPLATE = (
    "Home | About | Contact | Blog | Shop",
    "Skip to main content",
    "We use cookies to improve your experience. Accept all | Settings",
    "Click here to subscribe to our newsletter!",
    "Share: Facebook Twitter LinkedIn Email",
    "Sign in | Register | Forgot password",
    "Click here for more offers >>>",
    "© 2024 Example Media. All rights reserved. Privacy | Terms",
    "Menu Search Login Cart (0)",
    "Related posts: 10 tips | Why it matters | Read more",
)


def _sentence(rng: random.Random) -> str:
    sentence = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} " \
               f"{rng.choice(_TAILS)}."
    if rng.random() < 0.3:
        sentence = f"{rng.choice(_JOINS)} {sentence[0].lower()}{sentence[1:]}"
    return sentence


def prose_documents(count: int, *, seed: int = 0, lines: tuple[int, int] = (4, 9),
                    prefix: str = "doc") -> list[dict[str, str]]:
    """`count` documents {"id", "text"} of plain prose, `lines` sentences-lines each."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        body = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 4)))
                for _ in range(rng.randint(*lines))]
        docs.append({"id": f"{prefix}-{seed}-{i:05d}", "text": "\n".join(body)})
    return docs


def with_boilerplate(docs: Sequence[dict[str, str]], *, share: float = 0.4,
                     seed: int = 0) -> list[dict[str, str]]:
    """The same documents (same ids) with boilerplate lines injected until
    about `share` of each document's lines are boilerplate."""
    rng = random.Random(seed)
    out = []
    for doc in docs:
        lines = doc["text"].splitlines()
        extra = max(1, round(len(lines) * share / (1 - share)))
        for _ in range(extra):
            lines.insert(rng.randint(0, len(lines)), rng.choice(BOILERPLATE))
        out.append({**doc, "text": "\n".join(lines)})
    return out


def write_jsonl(docs: Sequence[dict[str, object]], path: str | Path) -> Path:
    """Write documents as JSON lines; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def multiple_choice(count: int, *, seed: int = 0) -> list[dict[str, object]]:
    """`count` multiple-choice items {"query", "choices", "gold"} in the
    corpus's own prose (a sentence's opening; the true ending vs others)."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        subject, verb = rng.choice(_SUBJECTS), rng.choice(_VERBS)
        right = f"{rng.choice(_OBJECTS)} {rng.choice(_TAILS)}."
        wrong = [rng.choice(BOILERPLATE), "bonus casino win win free spins now",
                 "Loading... please enable JavaScript"]
        choices = [right, *rng.sample(wrong, 2)]
        rng.shuffle(choices)
        items.append({"query": f"{subject} {verb}", "choices": choices,
                      "gold": choices.index(right)})
    return items
